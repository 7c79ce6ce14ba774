// Package ratelimit paces requests to RevCent: one token bucket shared by
// every worker (golang.org/x/time/rate), and a pause that holds every
// worker when RevCent answers 429.
package ratelimit

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultPause is how long everyone waits after a 429 without Retry-After.
const DefaultPause = time.Second

// Limiter is a shared token bucket with a global pause. It is safe for
// concurrent use.
type Limiter struct {
	lim *rate.Limiter

	mu    sync.Mutex
	until time.Time // no request starts before this
	n429  int64
}

// New returns a Limiter allowing perSecond requests with bursts of burst.
// perSecond 0 means no limit. burst below 1 becomes 1.
func New(perSecond float64, burst int) *Limiter {
	limit := rate.Limit(perSecond)
	if perSecond <= 0 {
		limit = rate.Inf
	}
	return &Limiter{lim: rate.NewLimiter(limit, max(burst, 1))}
}

// Wait blocks until a request may start: after any pause, and when the
// bucket has a token. It returns ctx's error if ctx ends first.
func (l *Limiter) Wait(ctx context.Context) error {
	for {
		l.mu.Lock()
		d := time.Until(l.until)
		l.mu.Unlock()
		if d <= 0 {
			break
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return l.lim.Wait(ctx)
}

// Throttled records a 429: no worker starts a request for pause.
// Overlapping pauses extend, never shorten. Callers pass DefaultPause when
// the answer had no Retry-After.
func (l *Limiter) Throttled(pause time.Duration) {
	retryAfter := max(pause, 0)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n429++
	if until := time.Now().Add(retryAfter); until.After(l.until) {
		l.until = until
	}
}

// Throttles returns how many 429s were recorded.
func (l *Limiter) Throttles() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n429
}

// Limit returns the current rate in requests per second; 0 means none.
func (l *Limiter) Limit() float64 {
	if l.lim.Limit() == rate.Inf {
		return 0
	}
	return float64(l.lim.Limit())
}
