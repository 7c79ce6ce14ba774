package revcent

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Quota is what an answer's rate-limit headers say, when it has them:
// the IETF draft's RateLimit-Limit, -Remaining and -Reset (and its later
// RateLimit-Policy and combined RateLimit fields), or the X-RateLimit-*
// ones many APIs send. RevCent documents none; a proxy in front of it,
// or a later version, may send them.
type Quota struct {
	Limit     int           // requests allowed per window
	Remaining int           // left in this window; -1 when not said
	Reset     time.Duration // until the window resets; 0 when not said
	Window    time.Duration // the window's length (RateLimit-Policy's w); 0 when not said
}

// ParseQuota reads the rate-limit headers of h, at now (for an
// X-RateLimit-Reset given as a Unix time). ok is false without a limit.
func ParseQuota(h http.Header, now time.Time) (q Quota, ok bool) {
	q.Remaining = -1
	// Every answer is asked, and RevCent sends none of these: four
	// lookups say so before anything is parsed.
	if len(h["Ratelimit-Limit"]) == 0 && len(h["X-Ratelimit-Limit"]) == 0 && len(h["Ratelimit-Policy"]) == 0 && len(h["Ratelimit"]) == 0 {
		return q, false
	}
	first := func(names ...string) string {
		for _, n := range names {
			if v := strings.TrimSpace(h.Get(n)); v != "" {
				return v
			}
		}
		return ""
	}
	// draft-ietf-httpapi-ratelimit-headers-07 and later: RateLimit-Policy:
	// 40;w=1 and RateLimit: limit=40, remaining=12, reset=1.
	if v := first("RateLimit-Policy"); v != "" {
		q.Limit, q.Window = policy(v)
	}
	if v := first("RateLimit"); v != "" {
		for _, part := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
			n, err := strconv.Atoi(strings.TrimSpace(val))
			if err != nil {
				continue
			}
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "limit":
				q.Limit = n
			case "remaining", "r":
				q.Remaining = n
			case "reset", "t":
				q.Reset = time.Duration(max(n, 0)) * time.Second
			}
		}
	}
	// Earlier drafts and the X- headers: RateLimit-Limit: 40 (or "40,
	// 40;w=1"), RateLimit-Remaining: 12, RateLimit-Reset: 1.
	if v := first("RateLimit-Limit", "X-RateLimit-Limit"); v != "" && q.Limit == 0 {
		n, w := policy(v)
		q.Limit = n
		if q.Window == 0 {
			q.Window = w
		}
	}
	if v := first("RateLimit-Remaining", "X-RateLimit-Remaining"); v != "" && q.Remaining < 0 {
		if n, err := strconv.Atoi(v); err == nil {
			q.Remaining = max(n, 0)
		}
	}
	if v := first("RateLimit-Reset", "X-RateLimit-Reset"); v != "" && q.Reset == 0 {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			if f > 1e9 { // a Unix time (GitHub's, Twitter's)
				q.Reset = max(time.Unix(int64(f), 0).Sub(now), 0)
			} else {
				q.Reset = time.Duration(max(f, 0) * float64(time.Second))
			}
		} else if t, err := http.ParseTime(v); err == nil {
			q.Reset = max(t.Sub(now), 0)
		}
	}
	return q, q.Limit > 0
}

// policy reads "40" or "40, 40;w=1" (a limit, then a policy with its
// window in seconds) or "40;w=1".
func policy(v string) (limit int, window time.Duration) {
	head, rest, _ := strings.Cut(v, ",")
	lim, params, _ := strings.Cut(strings.TrimSpace(head), ";")
	if n, err := strconv.Atoi(strings.TrimSpace(lim)); err == nil {
		limit = n
	}
	for _, s := range []string{params, rest} {
		for _, p := range strings.Split(s, ";") {
			if k, val, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.TrimSpace(k) == "w" {
				if n, err := strconv.Atoi(strings.TrimSpace(val)); err == nil && n > 0 {
					window = time.Duration(n) * time.Second
				}
			}
		}
	}
	return limit, window
}
