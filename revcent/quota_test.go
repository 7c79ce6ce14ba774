package revcent

import (
	"net/http"
	"testing"
	"time"
)

func TestParseQuota(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, c := range []struct {
		name string
		h    map[string]string
		want Quota
		ok   bool
	}{
		{"none", nil, Quota{Remaining: -1}, false},
		{"draft 03", map[string]string{"RateLimit-Limit": "40", "RateLimit-Remaining": "12", "RateLimit-Reset": "1"}, Quota{40, 12, time.Second, 0}, true},
		{"draft 03 with a policy", map[string]string{"RateLimit-Limit": "40, 40;w=1", "RateLimit-Remaining": "0", "RateLimit-Reset": "1"}, Quota{40, 0, time.Second, time.Second}, true},
		{"draft 07", map[string]string{"RateLimit-Policy": "2400;w=60", "RateLimit": "limit=2400, remaining=100, reset=30"}, Quota{2400, 100, 30 * time.Second, time.Minute}, true},
		{"X- with a Unix reset", map[string]string{"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4999", "X-RateLimit-Reset": "1800000060"}, Quota{5000, 4999, time.Minute, 0}, true},
		{"X- with fractional seconds", map[string]string{"X-RateLimit-Limit": "10", "X-RateLimit-Reset": "0.5"}, Quota{10, -1, 500 * time.Millisecond, 0}, true},
		{"unreadable", map[string]string{"RateLimit-Limit": "lots"}, Quota{Remaining: -1}, false},
	} {
		h := http.Header{}
		for k, v := range c.h {
			h.Set(k, v)
		}
		got, ok := ParseQuota(h, now)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: %+v %v, want %+v %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
