// Package ratelimit paces requests to RevCent: one token bucket shared by
// every worker (golang.org/x/time/rate) that adapts to what the server
// accepts. A 429 pauses every worker for its Retry-After and sets the rate
// to what the server actually accepted since the previous 429; while
// answers are good, the rate probes back up toward the configured one.
// Callers take a token with Wait, do what must precede the request, then
// call Start just before sending it: Start keeps any second (as the server
// sees it, allowing for delivery jitter) to the configured rate + burst.
package ratelimit

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/revcent-import/revcent-import/revcent"
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
	until      time.Time     // no request starts before this
	pausedAt   time.Time     // when the current or last pause began
	windowFrom time.Time     // start of the measurement window: the last 429, or the start
	changed    time.Time     // the rate's last change
	lastGood   float64       // the rate before the last probe: it ran ProbeEvery without a 429
	lastBad    float64       // the last rate a 429 cut: probes go half way back toward it
	every      time.Duration // between probes: ProbeEvery, longer after probes that failed near the limit
	// headerRate is the rate the server's rate-limit headers give (see
	// Quota), 0 while none came: with it, 429s pause but do not cut, and
	// nothing probes. maxReset is the longest reset seen, the window's
	// length when the headers do not say it.
	headerRate float64
	maxReset   time.Duration
	sendFrom   time.Time // when the last pause ended: the window's sending time starts here
	step       float64   // the next probe's factor: doubles its increase while probes succeed
	n429       int64
	cuts       int64
	// win is the log of the last starts, for the one-second cap. It is
	// sized once, in New: empty when the configured rate is unlimited.
	win window

	// Read without l.mu, on every request:
	accepted atomic.Int64  // answers that were not 429, since windowFrom
	fromHdr  atomic.Bool   // headerRate is set
	pauseEnd atomic.Int64  // l.until in Unix nanoseconds
	current  atomic.Uint64 // the bucket's rate as float64 bits, +Inf for none
}

// window is a ring of the most recent start times, as many as one second
// may hold at the configured rate (rate + burst). The bucket alone does not
// bound what happens in a second: rate.Limiter times each reservation in
// advance, and a worker whose timer fires late then starts right next to
// the on-time one after it. The ring checks starts as they happen, at the
// real clock. It is sized for the configured rate, not the adapted one: it
// is the user's promise to keep, and a ring that cut an adapted rate by its
// Allowance would lower what the next 429 measures, and so the rate after
// it, cut after cut.
type window struct {
	at   []time.Time
	next int // the oldest entry, and where the next goes
}

// Allowance widens the one-second window the ring checks, for the delay
// between a request starting here and it reaching RevCent, which varies by
// a few milliseconds on a busy machine: starts that are a second apart
// here may arrive closer. Any 1 s + Allowance holds at most rate + burst
// starts, so any second at the server does while delivery varies by less.
// It costs Allowance/(1 s) of the rate.
const Allowance = 10 * time.Millisecond

// maxWindow bounds the ring; above that many requests a second the
// one-second cap is left to the bucket.
const maxWindow = 1 << 20

// newWindow returns the ring for the configured rate r.
func newWindow(r float64, burst int) window {
	if math.IsInf(r, 1) || r >= maxWindow {
		return window{}
	}
	return window{at: make([]time.Time, int(math.Floor(r))+burst)}
}

// admit records a start at now if the second before it holds fewer than
// len(at) starts; otherwise it returns how long to wait.
func (w *window) admit(now time.Time) time.Duration {
	if len(w.at) == 0 {
		return 0
	}
	oldest := w.at[w.next]
	if !oldest.IsZero() {
		if d := oldest.Add(time.Second + Allowance).Sub(now); d > 0 {
			return d
		}
	}
	w.at[w.next] = now
	w.next = (w.next + 1) % len(w.at)
	return 0
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
	l := &Limiter{lim: rate.NewLimiter(limit(target), max(burst, 1)), gen: gen, endGen: end, burst: max(burst, 1),
		target: target, windowFrom: now, sendFrom: now, changed: now, step: ProbeStep, every: ProbeEvery, win: newWindow(target, max(burst, 1))}
	l.publish()
	return l
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
	if math.IsInf(l.rate(), 1) && time.Now().UnixNano() >= l.pauseEnd.Load() {
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

// Start is called after Wait, at the moment the request is about to be
// written: it records the start, first waiting while the last second
// (plus Allowance) already holds rate + burst starts. Work done between
// Wait and Start (the pending line) cannot bunch requests that way.
func (l *Limiter) Start(ctx context.Context) error {
	if len(l.win.at) == 0 { // set in New, never resized
		return nil
	}
	for {
		l.mu.Lock()
		d := l.win.admit(time.Now())
		l.mu.Unlock()
		if d == 0 {
			return nil
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
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
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

// Accepted records an answer that was not a 429, and probes the rate up
// when it has gone ProbeEvery without one.
func (l *Limiter) Accepted() {
	l.accepted.Add(1)
	if l.rate() >= l.target || l.fromHdr.Load() { // +Inf when unlimited
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := l.rate()
	if cur >= l.target {
		return
	}
	now := time.Now()
	// Far under the rate a 429 last cut (a halving overshot), the next
	// probe comes sooner, and goes half way back.
	every := l.every
	if l.lastBad > cur*1.25 {
		every = ProbeEvery / 5
	}
	if now.Sub(l.changed) >= every {
		l.lastGood = cur
		next := min(l.target, cur*l.step)
		if l.lastBad > cur {
			next = min(l.target, max((cur+l.lastBad)/2, cur*ProbeStep))
		} else {
			l.lastBad = 0 // a rate above it ran a whole interval: the server's limit rose
		}
		l.reset(next, now)
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
	if l.headerRate > 0 {
		// The server said its rate: a 429 is a pause, not news of it.
		if until := now.Add(max(pause, 0)); until.After(l.until) {
			l.until, l.pausedAt = until, now
			l.publish()
		}
		return
	}
	if secs := now.Sub(l.windowFrom).Seconds(); secs > 0 {
		accepted := l.accepted.Load()
		cur := l.rate()
		// What the server accepted since the last 429 tells its rate two
		// ways. Over the whole window, pause included (during which the
		// server's bucket refilled), it is right for a server that banks a
		// pause's worth, and low for one that banks less (a burst of 5
		// read 25/s for 40/s). Over the sending time only, it is what was
		// sent, which was all accepted until this 429: high by the burst.
		// The server's rate is between the two.
		sending := now.Sub(l.sendFrom).Seconds()
		whole := float64(accepted) / secs
		sent := float64(accepted) / max(sending, 1e-3)
		var next float64
		switch {
		case accepted == 0 && math.IsInf(cur, 1):
			next = noMeasureRate
		case accepted == 0:
			// Nothing accepted since the last 429: no measurement, only
			// the news that the rate is too high.
			next = cur / 2
		case math.IsInf(cur, 1):
			next = whole
		case sending < 1:
			// A 429 within a second of sending: what was accepted was
			// the server's burst, not its rate. Halve.
			next = cur / 2
		default:
			// Never cut by more than half, nor by less than 5%, at once.
			next = min(max(whole, sent*0.85, l.lastGood), cur*0.95)
			next = max(next, cur/2)
		}
		next = max(minRate, min(next, l.target))
		if !math.IsInf(cur, 1) {
			l.lastBad = cur
		}
		// A probe that failed within 15% of the rate that ran before it
		// found the limit: the next probe waits twice as long (each one
		// costs a pause), up to 8 intervals.
		if l.lastGood > 0 && cur < l.lastGood*1.15 {
			l.every = min(2*l.every, 8*ProbeEvery)
		}
		l.lastGood, l.step = 0, ProbeStep
		l.cuts++
		l.windowFrom, l.changed, l.pausedAt = now, now, now
		l.accepted.Store(0)
		if until := now.Add(max(pause, 0)); until.After(l.until) {
			l.until = until
		}
		l.sendFrom = l.until
		l.reset(next, l.until)
		return
	}
	if until := now.Add(max(pause, 0)); until.After(l.until) {
		l.until = until
		l.sendFrom = until
		l.publish()
	}
}

// Quota sets the rate from an answer's rate-limit headers: the limit
// over the window (RateLimit-Policy's, or else the longest reset seen,
// in whole seconds, at least one), never above the configured rate. A
// window with nothing left pauses everyone until it resets.
func (l *Limiter) Quota(q revcent.Quota) {
	if q.Limit <= 0 {
		return
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	window := q.Window
	if window <= 0 {
		l.maxReset = max(l.maxReset, q.Reset)
		window = max(time.Second, l.maxReset.Round(time.Second))
		if window < l.maxReset {
			window += time.Second
		}
	}
	r := min(float64(q.Limit)/window.Seconds(), l.target)
	if q.Remaining == 0 && q.Reset > 0 {
		if until := now.Add(q.Reset); until.After(l.until) {
			l.until, l.pausedAt = until, now
			l.publish()
		}
	}
	if math.Abs(r-l.headerRate) <= l.headerRate*0.01 {
		return
	}
	l.headerRate = r
	l.fromHdr.Store(true)
	l.changed = now
	start := now
	if l.until.After(now) {
		start = l.until
	}
	l.reset(r, start)
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
	l.publish()
}

// publish copies what every request reads into the atomics. l.mu is
// held, or l is new.
func (l *Limiter) publish() {
	r := float64(l.lim.Limit())
	if l.lim.Limit() == rate.Inf {
		r = math.Inf(1)
	}
	l.current.Store(math.Float64bits(r))
	var end int64 // no pause yet
	if !l.until.IsZero() {
		end = l.until.UnixNano()
	}
	l.pauseEnd.Store(end)
}

// Throttles returns how many 429s were recorded.
func (l *Limiter) Throttles() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n429
}

// Limit returns the current rate in requests per second; 0 means none.
func (l *Limiter) Limit() float64 {
	r := l.rate()
	if math.IsInf(r, 1) {
		return 0
	}
	return r
}

// rate returns the bucket's current rate, +Inf for none.
func (l *Limiter) rate() float64 { return math.Float64frombits(l.current.Load()) }
