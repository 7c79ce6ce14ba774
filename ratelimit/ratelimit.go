// Package ratelimit paces requests to RevCent: one token bucket shared by
// every worker (golang.org/x/time/rate) that adapts to what the server
// accepts. A 429 pauses every worker for its Retry-After and sets the rate
// to what the server actually accepted since the previous 429; while
// answers are good, the rate probes back up toward the configured one.
package ratelimit

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultPause is how long everyone waits after a 429 without Retry-After.
const DefaultPause = time.Second

// ProbeEvery is how long the rate must go without a 429 before it is
// raised, by ProbeStep, toward the configured rate. Rare probes keep the
// 429s rare: each one costs a paused second.
const (
	ProbeEvery = 10 * time.Second
	ProbeStep  = 1.05
)

// minRate is the floor of the adapted rate, in requests a second.
const minRate = 0.2

// noMeasureRate is the rate after a 429 when there was no limit and
// nothing had been accepted yet.
const noMeasureRate = 10

// Limiter is a shared, adaptive token bucket with a global pause. It is
// safe for concurrent use.
type Limiter struct {
	target float64 // the configured rate; +Inf for none
	burst  int

	mu sync.Mutex
	// lim is replaced at each 429 that cuts the rate: reservations taken
	// on the old one were spaced for the old rate. gen is cancelled then,
	// to wake its waiters, which queue again on the new one.
	lim        *rate.Limiter
	gen        context.Context
	endGen     context.CancelFunc
	until      time.Time // no request starts before this
	pausedAt   time.Time // when the current or last pause began
	windowFrom time.Time // start of the measurement window: the last 429, or the start
	accepted   int64     // answers that were not 429, since windowFrom
	changed    time.Time // the rate's last change
	lastGood   float64   // the rate before the last probe: it ran ProbeEvery without a 429
	step       float64   // the next probe's factor: doubles its increase while probes succeed
	n429       int64
	cuts       int64
}

// New returns a Limiter allowing perSecond requests with bursts of burst.
// perSecond 0 means no limit until RevCent answers 429. burst below 1
// becomes 1.
func New(perSecond float64, burst int) *Limiter {
	target := perSecond
	if perSecond <= 0 {
		target = math.Inf(1)
	}
	now := time.Now()
	gen, end := context.WithCancel(context.Background())
	return &Limiter{lim: rate.NewLimiter(limit(target), max(burst, 1)), gen: gen, endGen: end, burst: max(burst, 1),
		target: target, windowFrom: now, changed: now, step: ProbeStep}
}

func limit(r float64) rate.Limit {
	if math.IsInf(r, 1) {
		return rate.Inf
	}
	return rate.Limit(r)
}

// Wait blocks until a request may start: when the bucket has a token and
// no pause holds. It returns ctx's error if ctx ends first.
func (l *Limiter) Wait(ctx context.Context) error {
	l.mu.Lock()
	free := l.lim.Limit() == rate.Inf && !time.Now().Before(l.until)
	l.mu.Unlock()
	if free {
		return ctx.Err() // no limit and no pause: nothing to wait for
	}
	for {
		if err := l.waitPause(ctx); err != nil {
			return err
		}
		l.mu.Lock()
		lim, gen := l.lim, l.gen
		l.mu.Unlock()
		wctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(gen, cancel)
		err := lim.Wait(wctx)
		stop()
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.mu.Lock()
		ok := err == nil && gen == l.gen && !time.Now().Before(l.until)
		l.mu.Unlock()
		// Otherwise a 429 cut the rate while this worker queued: its
		// token, spaced for the old rate, is forfeit; queue again.
		if ok {
			return nil
		}
	}
}

func (l *Limiter) waitPause(ctx context.Context) error {
	for {
		l.mu.Lock()
		d := time.Until(l.until)
		l.mu.Unlock()
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Accepted records an answer that was not a 429, and probes the rate up
// when it has gone ProbeEvery without one.
func (l *Limiter) Accepted() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.accepted++
	cur := float64(l.lim.Limit())
	if l.lim.Limit() == rate.Inf || cur >= l.target {
		return
	}
	if now := time.Now(); now.Sub(l.changed) >= ProbeEvery {
		l.lastGood = cur
		l.reset(min(l.target, cur*l.step), now)
		l.step = min(2, 1+2*(l.step-1))
		l.changed = now
	}
}

// Throttled records a 429 for a request sent at sent. Every worker pauses
// for pause (callers pass DefaultPause when the answer had no
// Retry-After); overlapping pauses extend, never shorten. A 429 for a
// request sent after the last pause began sets the rate to what the server
// accepted since the previous 429: the window includes the pause, during
// which the server's own bucket refilled, so it measures the server's rate
// rather than its burst. 429s for requests sent before the pause are the
// same overload seen again and change nothing more.
func (l *Limiter) Throttled(pause time.Duration, sent time.Time) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n429++
	if !sent.After(l.pausedAt) {
		return
	}
	if secs := now.Sub(l.windowFrom).Seconds(); secs > 0 {
		measured := float64(l.accepted) / secs
		cur := float64(l.lim.Limit())
		if l.lim.Limit() == rate.Inf {
			cur = math.Inf(1)
		}
		var next float64
		switch {
		case l.accepted == 0 && math.IsInf(cur, 1):
			next = noMeasureRate
		case l.accepted == 0:
			// Nothing accepted since the last 429: no measurement, only
			// the news that the rate is too high.
			next = cur / 2
		case math.IsInf(cur, 1):
			next = measured
		default:
			// A server that banks its unused rate during the pause is
			// measured well; one that does not (a burst of 1) reads low,
			// but then the rate that last ran a whole probe interval
			// without a 429 is known to be good. Never cut by more than
			// half, nor by less than 5%, at once.
			next = min(max(measured, l.lastGood), cur*0.95)
			next = max(next, cur/2)
		}
		next = max(minRate, min(next, l.target))
		l.lastGood, l.step = 0, ProbeStep
		l.cuts++
		l.windowFrom, l.accepted, l.changed, l.pausedAt = now, 0, now, now
		if until := now.Add(max(pause, 0)); until.After(l.until) {
			l.until = until
		}
		l.reset(next, l.until)
		return
	}
	if until := now.Add(max(pause, 0)); until.After(l.until) {
		l.until = until
	}
}

// reset starts a new generation: a bucket at rate r, empty at start, and
// every waiter woken to queue on it. Changing the rate of a bucket with
// waiters queued (SetLimit) would let new reservations land among the old
// ones, spaced for the old rate: requests closer together than either rate
// allows. l.mu is held.
func (l *Limiter) reset(r float64, start time.Time) {
	l.endGen()
	l.gen, l.endGen = context.WithCancel(context.Background())
	l.lim = rate.NewLimiter(limit(r), l.burst)
	if !math.IsInf(r, 1) {
		l.lim.ReserveN(start, l.burst)
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
