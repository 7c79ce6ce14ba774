// Package ratelimit paces requests to RevCent: one token bucket shared by
// every worker (golang.org/x/time/rate) that adapts to what the server
// accepts. A 429 pauses every worker for its Retry-After and sets the rate
// to what the server actually accepted since the previous 429 (or, with
// nothing to measure, halves it and ramps up to it: see RampSpan); while
// answers are good, the rate probes back up toward the configured one.
// Callers take a token with Wait, do what must precede the request, then
// call Start just before sending it: Start keeps any second (as the server
// sees it, allowing for delivery jitter) to the configured rate + burst.
package ratelimit

import (
	"context"
	"math"
	"runtime"
	"slices"
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

// bisectWithin: a probe near the last rate a 429 cut (within 25%) goes
// half way to it, until it is this close.
const bisectWithin = 1.01

// burstSpan: requests sent this close after the one the first 429
// refused went with it, in one burst. The workers start a burst within a
// millisecond or two, and the server sees them in any order: counting
// only those sent before the refused one read a server taking 5 at once
// as taking 2 (a real run, 1.20x the ideal time). A server allowing no
// burst takes at most one more in that time at a rate under 200/s.
const burstSpan = 5 * time.Millisecond

// minRate is the floor of the adapted rate, in requests a second.
const minRate = 0.2

// noMeasureRate is the rate after a 429 when there was no limit and
// nothing had been accepted yet.
const noMeasureRate = 10

// AutoBurst, passed to New as the burst, sizes the burst to the rate:
// StartBurst until the first pause (a 429, or rate-limit headers saying
// nothing is left), then 1; never more than the server's rate-limit
// headers say it takes now.
//
// Why a burst at all: a run's whole time includes what comes before its
// first request (starting, reading, the first request's wait; about 50 ms)
// and its last answer (a whole latency after the last request). With a
// burst of 1, 2,000 requests at 200/s and 200-300 ms answers take 10.37 s,
// 0.964 of the rate; a tenth of a second's burst sends that much ahead and
// takes 10.23 s, 0.978. Why it ends at the first pause: RevCent has then
// shown a limit, and requests sent at once beyond its own burst are only
// more 429s. A server that takes fewer at once than StartBurst answers the
// difference 429 once, at the start.
const AutoBurst = 0

// StartBurst is the burst AutoBurst starts with at rate r requests a
// second: a tenth of a second's requests, at least 1 (1 with no rate).
func StartBurst(r float64) int {
	if r <= 0 || math.IsInf(r, 1) || math.IsNaN(r) {
		return 1
	}
	return max(1, int(math.Ceil(min(r, maxWindow)/10)))
}

// Limiter is a shared, adaptive token bucket with a global pause. It is
// safe for concurrent use.
type Limiter struct {
	target float64 // the configured rate; +Inf for none
	// burst is the bucket's: as configured, or with autoBurst StartBurst
	// until the first pause and 1 after it (see follow). Read under mu.
	burst     int
	autoBurst bool

	mu sync.Mutex
	// lim is replaced whenever st.Gen changes: reservations taken on the
	// old one were spaced for the old rate. gen is cancelled then, to wake
	// its waiters, which queue again on the new one.
	lim    *rate.Limiter
	gen    context.Context
	endGen context.CancelFunc
	st     State // what 429s, probes and headers decide; see State
	n429   int64
	// win is the log of the last starts, for the one-second cap. It is
	// sized once, in New: empty when the configured rate is unlimited.
	win       window
	lastStart time.Time // the last start Start let go (see spacing)
	// lastLate is lastStart plus how much later than usual its answer
	// came, once it came (see answered); recent holds the answer times
	// of the latest last starts, whose median is the usual one.
	lastLate time.Time
	recent   [recentAnswers]time.Duration
	nRecent  int
	// shared is set while the limit is kept with other importers (Share).
	shared *sharing

	// Read without l.mu, on every request:
	accepted atomic.Int64 // answers that were not 429, since st.WindowFrom
	// countFirst: answers are still counted toward st.FirstAccepted (a
	// configured rate, until the first pause ends; see AcceptedFor).
	countFirst atomic.Bool
	fromHdr    atomic.Bool   // st.HeaderRate is set
	pauseEnd   atomic.Int64  // st.Until in Unix nanoseconds
	current    atomic.Uint64 // the bucket's rate as float64 bits, +Inf for none
	isShared   atomic.Bool   // shared is set
	unsynced   atomic.Int64  // accepted answers not yet added to the shared count
}

// State is the adaptive part of a limit: its rate and pause, and what the
// next 429 or probe decides from. A Limiter keeps its own; importers that
// share a limit keep one State in a Shared store, and each follows it.
// Rates are requests a second, +Inf for none (-1 in JSON).
type State struct {
	Rate float64   `json:"rate"`
	From time.Time `json:"from"` // the bucket at Rate starts empty here
	// Gen changes with Rate or From; Window with each cut, when the count
	// of accepted answers starts again.
	Gen        int64     `json:"gen"`
	Window     int64     `json:"window"`
	Until      time.Time `json:"until"`       // no request starts before this
	PausedAt   time.Time `json:"paused_at"`   // when the current or last pause began
	WindowFrom time.Time `json:"window_from"` // start of the measurement window: the last 429, or the start
	Changed    time.Time `json:"changed"`     // the rate's last change
	SendFrom   time.Time `json:"send_from"`   // when the last pause ended: the window's sending time starts here
	LastGood   float64   `json:"last_good"`   // the rate before the last probe: it ran ProbeEvery without a 429
	LastBad    float64   `json:"last_bad"`    // the last rate a 429 cut: probes go half way back toward it
	// Every is the time between probes: ProbeEvery, longer after probes
	// that failed near the limit. Step is the next probe's factor: it
	// doubles its increase while probes succeed.
	Every time.Duration `json:"every"`
	Step  float64       `json:"step"`
	// HeaderRate is the rate the server's rate-limit headers give (see
	// Quota), 0 while none came: with it, 429s pause but do not cut, and
	// nothing probes. MaxReset is the longest reset seen, the window's
	// length when the headers do not say it.
	HeaderRate float64       `json:"header_rate"`
	MaxReset   time.Duration `json:"max_reset"`
	Cuts       int64         `json:"cuts"`
	// FirstAccepted is what the server accepted before its first 429 of
	// the run: at most its burst and what its rate added meanwhile (1 or 2
	// for a server allowing no burst). Taken off what it accepted in a
	// later window, it reads that window's rate. FirstSeen says it is
	// set (false in a state an older importer shared).
	FirstAccepted int64 `json:"first_accepted"`
	FirstSeen     bool  `json:"first_seen"`
	// FirstRefused is when the request the first 429 refused was sent.
	FirstRefused time.Time `json:"first_refused"`
	// RampFrom and RampAt: after a cut that measured nothing (see RampSpan),
	// starts climb from RampFrom at RampAt (the pause's end) to Rate.
	// RampAt is zero when no ramp follows the last cut.
	RampFrom float64   `json:"ramp_from"`
	RampAt   time.Time `json:"ramp_at"`
	// LadderTop and Rungs: the rates tried after lone 429s (see lone).
	LadderTop float64 `json:"ladder_top,omitempty"`
	Rungs     []Rung  `json:"rungs,omitempty"`
}

// A cut that measured nothing (a 429 within a second of sending, or
// with nothing accepted) halves the rate: a guess. Against a server that
// allows no burst, each such guess costs a pause, and the halvings from
// 200/s to a server allowing 40/s ended at 25/s, three pauses in, far
// under it. So after a guess, starts do not go at the new rate at once:
// they ramp from RampSpan times less, RampGrowth-fold a second (a second
// to reach it). Such a server refuses the first request that comes
// sooner after the last than its rate allows, so a 429 on the ramp reads
// its rate: the ramp's rate when the refused request went, within the
// few percent the ramp climbs between two requests. Against such a
// server, a 429 soon after a pause at a rate read that way (delivery
// jitter let the request before the refused one through a little early)
// ramps again from 2*RampSpan times less, up to RampMargin of the rate,
// rather than halving. The ramp is kept by a limiter whose burst is 1 (an
// automatic burst after its first pause) and not shared: it paces each
// start (see spacing).
const (
	RampSpan   = 4
	RampGrowth = 4
	// RampMargin: the rate after a 429 on the ramp is this share of the
	// ramp's rate at the request before the refused one (the server took
	// that one, but delivery varies by a millisecond or two).
	RampMargin = 0.95
)

// rampRate is the rate starts keep at t: Rate, or less on a ramp.
func (st *State) rampRate(t time.Time) float64 {
	if st.RampAt.IsZero() || st.RampFrom <= 0 || t.Before(st.RampAt) {
		return st.Rate
	}
	return min(st.Rate, st.RampFrom*math.Pow(RampGrowth, t.Sub(st.RampAt).Seconds()))
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
// perSecond 0 means no limit until RevCent answers 429. burst AutoBurst
// (or below) sizes it to the rate; see AutoBurst.
func New(perSecond float64, burst int) *Limiter {
	target := perSecond
	if perSecond <= 0 {
		target = math.Inf(1)
	}
	auto := burst <= AutoBurst
	if auto {
		burst = StartBurst(target)
	}
	now := time.Now()
	gen, end := context.WithCancel(context.Background())
	l := &Limiter{lim: rate.NewLimiter(limit(target), burst), gen: gen, endGen: end, burst: burst, autoBurst: auto,
		target: target, win: newWindow(target, burst),
		st: State{Rate: target, WindowFrom: now, SendFrom: now, Changed: now, Step: ProbeStep, Every: ProbeEvery}}
	l.countFirst.Store(!math.IsInf(target, 1))
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
// no pause holds (and, with a shared limit, the shared bucket has one
// too). It returns ctx's error if ctx ends first.
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
		if err == nil && l.isShared.Load() {
			err = l.takeShared(wctx)
		}
		stop()
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.mu.Lock()
		ok := err == nil && gen == l.gen && !time.Now().Before(l.st.Until)
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
// Wait and Start (the pending line) cannot bunch requests that way. A
// pause that began since Wait (a 429 answered meanwhile) holds the start
// too: the server said when to come back.
func (l *Limiter) Start(ctx context.Context) error {
	if len(l.win.at) == 0 && math.IsInf(l.rate(), 1) && time.Now().UnixNano() >= l.pauseEnd.Load() {
		return nil // no rate to keep: no lock on each request (--rate 0)
	}
	for {
		l.mu.Lock()
		now := time.Now()
		d := l.st.Until.Sub(now)
		precise := false
		if d <= 0 {
			d = l.spacing(now)
			precise = d > 0 && l.rate() <= maxPreciseRate
		}
		if d == 0 {
			d = l.win.admit(now) // records the start when it returns 0
		}
		if d == 0 {
			l.lastStart = now
		}
		l.mu.Unlock()
		if d == 0 {
			return nil
		}
		wait := sleep
		if precise {
			wait = preciseSleep
		}
		if err := wait(ctx, d); err != nil {
			return err
		}
	}
}

// Go's timers fire late, here by 0.9 ms on an idle machine: a start
// spaced a token's time after the last by a timer alone came 0.6 ms late
// on average (a server's arrival gaps at --rate 38 --burst 1: 26.9 ms for
// 26.3), 2% under the rate, and late by a varying amount, which a server
// allowing no burst counts against the next gap. preciseSleep sleeps to
// within spinWithin of the time, then yields until it comes. It serves
// spacing only, at rates up to maxPreciseRate, where the yielding costs
// little (about half a millisecond a start).
const (
	spinWithin     = 1500 * time.Microsecond
	maxPreciseRate = 250
)

// preciseSleep waits d, to within a few microseconds (see spinWithin). A
// clock that stands still while it yields (a test's fake time, or a
// coarse clock) gets a timer for the rest.
func preciseSleep(ctx context.Context, d time.Duration) error {
	until := time.Now().Add(d)
	if d > spinWithin {
		if err := sleep(ctx, d-spinWithin); err != nil {
			return err
		}
	}
	last := time.Now()
	for i := 1; last.Before(until); i++ {
		runtime.Gosched()
		now := time.Now()
		if now.Equal(last) {
			return sleep(ctx, until.Sub(now))
		}
		if i%16 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		last = now
	}
	return nil
}

// spacing returns how long a start must wait to come a whole token's time
// (1/rate) after the last, while the burst is 1. The bucket spaces
// reservations that far, but a worker whose timer fired late starts right
// before the on-time one after it; a server that allows no burst (or
// only its rate, each request a token's time after the last) answers the
// second 429. l.mu is held.
func (l *Limiter) spacing(now time.Time) time.Duration {
	if l.burst != 1 || l.lastStart.IsZero() {
		return 0
	}
	r := l.rate()
	if math.IsInf(r, 1) || r <= 0 {
		return 0
	}
	if !l.isShared.Load() {
		r = min(r, l.st.rampRate(now))
	}
	from := l.lastStart
	if l.lastLate.After(from) {
		from = l.lastLate
	}
	return max(0, from.Add(time.Duration(float64(time.Second)/r)).Sub(now))
}

// Spacing from the last request's arrival. A request that reaches a
// server allowing no burst late (by 3-17 ms, on this project's shared
// test machine, once in a few hundred: a process not scheduled) leaves
// the next one, sent on time, too soon after it; that one is refused, and
// the run pauses for a second. Where answers come back before the next
// start is due (a server close by, or a low rate), the last request's
// answer tells how late it got there, at the most: as much later than
// the usual answer (the median of the last recentAnswers) as it came.
// The next start is spaced from there (see spacing). An answer late for
// another reason (the server slow to answer, not slow to get the request)
// costs that one start as much, once. Where answers come after the next
// start (a distant server's, at a high rate), nothing changes.
const (
	recentAnswers = 32
	// lateFrom is the least lateness that moves the next start: less
	// is an answer's usual jitter, which the rate's margin under the
	// server's takes up.
	lateFrom = 500 * time.Microsecond
)

// answered records the answer, at now, to a request sent at sent, when it
// is the last one started and starts are spaced one by one. l.mu is held.
func (l *Limiter) answered(sent, now time.Time) {
	if l.burst != 1 || l.lastStart.IsZero() || sent.Before(l.lastStart) {
		return
	}
	took := now.Sub(sent)
	l.recent[l.nRecent%recentAnswers] = took
	l.nRecent++
	times := l.recent
	recent := times[:min(l.nRecent, recentAnswers)]
	slices.Sort(recent)
	if late := took - recent[len(recent)/2]; late >= lateFrom {
		l.lastLate = l.lastStart.Add(late)
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
		d := time.Until(l.st.Until)
		l.mu.Unlock()
		if d <= 0 {
			return nil
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

// AcceptedFor records an answer that was not a 429, to a request sent at
// sent (zero: unknown), and probes the rate up when it has gone
// ProbeEvery without one. With a shared limit, the answer joins the
// shared count, and probes are the sharing's to make. An answer that
// comes after the run's first 429, to a request sent no later than
// burstSpan after the one it refused, joins what the server took at once
// (see State.FirstAccepted).
func (l *Limiter) AcceptedFor(sent time.Time) {
	// The answer's time moves the next start (see answered), unless the
	// limit is shared or headers set the rate. It is read only where
	// l.mu is taken anyway: --rate 0 takes neither.
	watched := false
	if !sent.IsZero() && l.countFirst.Load() {
		now := time.Now()
		// Counted under l.mu, as Throttled reads the count: an answer is
		// in the first window's count, or comes after its 429 and is
		// counted here, never lost between the two.
		l.mu.Lock()
		l.accepted.Add(1)
		if l.st.Cuts == 1 && !sent.After(l.st.FirstRefused.Add(burstSpan)) {
			// The server took it with the request its first 429
			// refused, though its answer came after that 429's
			// (answers come in any order).
			l.st.FirstAccepted++
		}
		if l.st.Cuts > 1 || (l.st.Cuts == 1 && !now.Before(l.st.Until)) {
			l.countFirst.Store(false)
		}
		if !l.isShared.Load() && !l.fromHdr.Load() {
			l.answered(sent, now)
			watched = true
		}
		l.mu.Unlock()
	} else {
		l.accepted.Add(1)
	}
	if l.isShared.Load() {
		l.unsynced.Add(1)
		return
	}
	// Back at --rate after 429s, the answer still moves the next start,
	// as it did before the first 429; below it, the rate may probe up.
	watch := !sent.IsZero() && !watched && !l.fromHdr.Load() && !math.IsInf(l.target, 1)
	probe := l.rate() < l.target && !l.fromHdr.Load() // +Inf when unlimited
	if !watch && !probe {
		return
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if watch {
		l.answered(sent, now)
	}
	if !probe {
		return
	}
	st := l.st
	if st.probe(now, l.target) {
		l.follow(st)
	}
}

// probe raises the rate toward target when it has gone its interval
// without a 429, and says whether it did.
func (st *State) probe(now time.Time, target float64) bool {
	cur := st.Rate
	if cur >= target || st.HeaderRate > 0 {
		return false
	}
	// Far under the rate a 429 last cut (a halving overshot), the next
	// probe comes sooner, and goes half way back.
	every := st.Every
	if st.LastBad > cur*1.25 {
		every = ProbeEvery / 5
	}
	if now.Sub(st.Changed) < every {
		return false
	}
	st.LastGood = cur
	next := min(target, cur*st.Step)
	switch {
	case st.LastBad > cur*1.25:
		next = min(target, max((cur+st.LastBad)/2, cur*ProbeStep))
	case st.LastBad > cur*bisectWithin:
		// Near the rate a 429 cut: half way to it, as a bisection goes,
		// where a whole step would only repeat the 429.
		next = min(target, (cur+st.LastBad)/2)
	case st.LastBad > cur:
		// At it: a step past it finds out if the server's limit rose.
		next = min(target, cur*ProbeStep)
	default:
		st.LastBad = 0 // a rate above it ran a whole interval: the server's limit rose
	}
	st.setRate(next, now)
	st.Step = min(2, 1+2*(st.Step-1))
	st.Changed = now
	return true
}

// setRate starts a bucket at rate r, empty at from.
func (st *State) setRate(r float64, from time.Time) {
	st.Rate, st.From = r, from
	st.Gen++
}

// Throttled records a 429 for a request sent at sent. Every worker pauses
// for pause (callers pass DefaultPause when the answer had no
// Retry-After); overlapping pauses extend, never shorten. A 429 for a
// request sent after the last pause began sets the rate to what the server
// accepted since the previous 429: the window includes the pause, during
// which the server's own bucket refilled, so it measures the server's rate
// rather than its burst. 429s for requests sent before the pause are the
// same overload seen again and change nothing more. With a shared limit,
// the shared state is changed, and what the server accepted is what every
// importer sharing it was answered.
func (l *Limiter) Throttled(pause time.Duration, sent time.Time) {
	now := time.Now()
	l.mu.Lock()
	l.n429++
	shared := l.isShared.Load()
	l.mu.Unlock()
	if shared && l.updateShared(func(st *State, accepted int64) bool {
		return st.throttled(now, pause, sent.Add(-sharedLag), accepted, l.target, false)
	}) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.st
	// The ramp was kept if starts were paced one by one (see spacing).
	ramped := l.burst == 1
	if st.throttled(now, pause, sent, l.accepted.Load(), l.target, ramped) {
		l.follow(st)
	}
}

// tooHighWithin: against a server allowing no burst, a rate over its own
// is refused within the first few requests after a pause (the second, but
// for delivery jitter): a 429 for one of the first tooHighWithin requests
// says the rate is too high; one later is a lone 429 (see lone).
const tooHighWithin = 8

// Lone 429s. Against a server allowing no burst, a 429 later than the
// first few requests at one rate is a request delivered late (the next one
// then came too soon), or a rate at the server's very limit. A cut of
// RungStep helps if the deliveries are late by less than it adds between
// two requests, and it costs 5% of all the time ahead. A machine that
// delivers one request in 200 3-13 ms late does so at any rate near the
// limit: there, a cut for each lone 429 took a simulated run from 38/s to
// 27/s (1.43-1.48x the ideal time), where a fixed rate near the limit
// takes about 1.25x. So the rates a run has tried are rungs of a ladder
// down from the first rate a lone 429 met, each with the requests sent at
// it and the lone 429s that met it; at each lone 429 the run goes to the
// rung where a request costs least time, its spacing plus its share of the
// pauses. The untried rung below the lowest tried counts half the pauses
// of the one above it: a cut is tried when the pauses cost more than about
// twice what it takes off (at 38/s, a lone 429 within about 10 s of the
// last pause), and undone when the rung it led to pauses as often.
const RungStep = 0.95

// Rung is a rate tried after lone 429s: requests the server accepted at
// it, and lone 429s that met it.
type Rung struct {
	Sent  int64   `json:"sent"`
	Lone  int64   `json:"lone"`
	Pause float64 `json:"pause"` // seconds paused for them
}

// lone returns the rate after a lone 429 at cur, with sent requests
// accepted at cur since the last 429, and the pause it asks for.
func (st *State) lone(cur float64, sent int64, pause time.Duration) float64 {
	if st.LadderTop <= 0 || cur > st.LadderTop*1.001 {
		// The first lone 429, or one above the ladder (probes went
		// past it): a new ladder from here.
		st.LadderTop, st.Rungs = cur, nil
	}
	k := int(math.Round(math.Log(cur/st.LadderTop) / math.Log(RungStep)))
	rungs := slices.Clone(st.Rungs) // st's copies share it
	for len(rungs) <= k+1 {
		rungs = append(rungs, Rung{})
	}
	rungs[k].Sent += max(sent, 0)
	rungs[k].Lone++
	rungs[k].Pause += max(pause, DefaultPause).Seconds()
	st.Rungs = rungs
	cost := func(i int) float64 {
		r := st.LadderTop * math.Pow(RungStep, float64(i))
		g := rungs[i]
		if g.Lone == 0 && i > 0 {
			// Untried: half the pauses of the rung above.
			g = rungs[i-1]
			g.Pause /= 2
		}
		return 1/r + g.Pause/float64(g.Sent+1)
	}
	best := k
	for i := range rungs {
		tried := rungs[i].Lone > 0
		untriedBelow := !tried && i > 0 && rungs[i-1].Lone > 0 && (i == len(rungs)-1 || rungs[i+1].Lone == 0)
		if (tried || untriedBelow) && cost(i) < cost(best) {
			best = i
		}
	}
	return st.LadderTop * math.Pow(RungStep, float64(best))
}

// sharedLag is how late a pause reaches the other importers sharing a
// limit (they read the shared state every SyncEvery): a request one of
// them sent that long after a pause began was sent before it knew, and
// its 429 is the same overload, not news of a lower rate.
const sharedLag = 2 * SyncEvery

// throttled is Throttled's decision on st, given the answers accepted
// since st.WindowFrom; it says whether st changed. ramped says that the
// limiter kept st's ramp (see RampSpan), so that a 429 on it reads the rate.
func (st *State) throttled(now time.Time, pause time.Duration, sent time.Time, accepted int64, target float64, ramped bool) bool {
	if !sent.After(st.PausedAt) {
		return false
	}
	if st.HeaderRate > 0 {
		// The server said its rate: a 429 is a pause, not news of it.
		if until := now.Add(max(pause, 0)); until.After(st.Until) {
			st.Until, st.PausedAt = until, now
			return true
		}
		return false
	}
	if secs := now.Sub(st.WindowFrom).Seconds(); secs > 0 {
		cur := st.Rate
		// What the server accepted since the last 429 tells its rate two
		// ways. Over the whole window, pause included (during which the
		// server's bucket refilled), it is right for a server that banks a
		// pause's worth, and low for one that banks less (a burst of 5
		// read 25/s for 40/s). Over the sending time only, it is what was
		// sent, which was all accepted until this 429: high by the burst.
		// The server's rate is between the two.
		sending := now.Sub(st.SendFrom).Seconds()
		whole := float64(accepted) / secs
		sentRate := float64(accepted) / max(sending, 1e-3)
		var next float64
		bad := cur                  // the rate the server refused
		guess := false              // next is a guess: a ramp follows
		rampFrom := 0.0             // where it starts, if not next/RampSpan
		onRamp := st.rampRate(sent) // the rate the refused request went at
		// A server that took at most two at once allows no burst: it
		// refuses a request that comes sooner after the last than its
		// rate allows (see RampSpan).
		noBurst := ramped && st.FirstSeen && st.FirstAccepted <= 2
		switch {
		case accepted == 0 && math.IsInf(cur, 1):
			next = noMeasureRate
		case noBurst && onRamp < cur:
			// Refused on the ramp: the server's rate is under the ramp's
			// then, and about the ramp's at the request before, a step
			// lower.
			next, bad = onRamp/math.Pow(RampGrowth, 1/onRamp)*RampMargin, onRamp
		case noBurst && (accepted == 0 || sent.Sub(st.SendFrom).Seconds() < tooHighWithin/cur):
			// Refused right after a pause, at a rate that was not on a
			// ramp (a reading the server's delivery jitter made a little
			// high): its rate is under this one, by an unknown amount.
			// Halving would guess far under it; a ramp from low up to
			// just under this rate reads it again if it is lower.
			next, guess, rampFrom = cur*RampMargin, true, cur/(2*RampSpan)
		case accepted == 0:
			// Nothing accepted since the last 429: no measurement, only
			// the news that the rate is too high.
			next, guess = cur/2, true
		case math.IsInf(cur, 1):
			next = whole
		case sending < 1 && !noBurst:
			// A 429 within a second of sending: what was accepted was
			// the server's burst, not its rate. Halve.
			next, guess = cur/2, true
		case noBurst:
			// A 429 past the first requests at this rate: a server that
			// allows no burst refuses a rate over its own at once, so
			// this is a request delivered late (the next then came too
			// soon) or a rate at its very limit. Not a reading: the
			// window's would count the ramp in it (a 429 3.7 s after a
			// ramp to 37.6/s read 28.6/s). Whether to cut 5%, keep the
			// rate or go back up is lone's choice, by what each rate
			// has cost.
			next = cur * 0.95
			if st.LastGood <= 0 || st.LastGood >= cur {
				// Not a probe that failed (that goes back, below): the
				// requests sent at this rate, not at those before it
				// in this window.
				atRate := now.Sub(later(st.SendFrom, st.Changed)).Seconds()
				next = st.lone(cur, min(accepted, int64(math.Ceil(cur*atRate))), pause)
			}
		default:
			// A third reading: what was accepted beyond the server's
			// burst, at most what it accepted before its first 429, over
			// the sending time. Against a server with a small burst it is
			// its rate, where the whole window reads low by the pause:
			// a lone 429 after seconds at a rate the server took (a
			// request delivered a little early) cut 37.5/s to 32.2/s.
			beyond := 0.0
			if st.FirstSeen && accepted > st.FirstAccepted {
				beyond = float64(accepted-st.FirstAccepted) / sending
			}
			// Never cut by more than half, nor by less than 5%, at once.
			next = min(max(whole, sentRate*0.85, beyond, st.LastGood), cur*0.95)
			next = max(next, cur/2)
		}
		if !guess && sending >= 1 && st.LastGood > 0 && st.LastGood < cur {
			// A probe failed: back to the rate that ran a whole interval
			// before it, which may be within 5%.
			next = max(next, st.LastGood)
		}
		if st.Cuts == 0 {
			st.FirstAccepted, st.FirstSeen, st.FirstRefused = accepted, true, sent
		}
		next = max(minRate, min(next, target))
		if !math.IsInf(bad, 1) {
			st.LastBad = bad
		}
		// A probe that failed within 15% of the rate that ran before it
		// found the limit: the next probe waits twice as long (each one
		// costs a pause), up to 8 intervals.
		if st.LastGood > 0 && cur < st.LastGood*1.15 {
			st.Every = min(2*st.Every, 8*ProbeEvery)
		}
		st.LastGood, st.Step = 0, ProbeStep
		st.Cuts++
		st.WindowFrom, st.Changed, st.PausedAt = now, now, now
		st.Window++
		if until := now.Add(max(pause, 0)); until.After(st.Until) {
			st.Until = until
		}
		st.SendFrom = st.Until
		st.setRate(next, st.Until)
		st.RampFrom, st.RampAt = 0, time.Time{}
		if guess {
			if rampFrom <= 0 {
				rampFrom = next / RampSpan
			}
			st.RampFrom, st.RampAt = min(rampFrom, next), st.Until
		}
		return true
	}
	if until := now.Add(max(pause, 0)); until.After(st.Until) {
		st.Until = until
		st.SendFrom = until
		return true
	}
	return false
}

// Quota sets the rate from an answer's rate-limit headers: the limit
// over the window (RateLimit-Policy's, or else the longest reset seen,
// in whole seconds, at least one), never above the configured rate. A
// window with nothing left pauses everyone until it resets.
func (l *Limiter) Quota(q revcent.Quota) {
	if q.Limit <= 0 {
		return
	}
	l.capBurst(q.Remaining)
	now := time.Now()
	if l.isShared.Load() && l.updateShared(func(st *State, _ int64) bool { return st.quota(now, q, l.target) }) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.st
	if st.quota(now, q, l.target) {
		l.follow(st)
	}
}

// capBurst lowers an automatic burst to the requests the server says it
// takes now (its RateLimit-Remaining): more at once would be refused.
// remaining below 0 means the server did not say.
func (l *Limiter) capBurst(remaining int) {
	if !l.autoBurst || remaining < 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := max(1, remaining); b < l.burst {
		// The bucket keeps what it holds, up to b (see follow).
		l.burst = b
		l.lim.SetBurst(b)
	}
}

// quota is Quota's decision on st; it says whether st changed.
func (st *State) quota(now time.Time, q revcent.Quota, target float64) bool {
	changed := false
	window := q.Window
	if window <= 0 {
		if q.Reset > st.MaxReset {
			st.MaxReset, changed = q.Reset, true
		}
		window = max(time.Second, st.MaxReset.Round(time.Second))
		if window < st.MaxReset {
			window += time.Second
		}
	}
	r := min(float64(q.Limit)/window.Seconds(), target)
	if q.Remaining == 0 && q.Reset > 0 {
		if until := now.Add(q.Reset); until.After(st.Until) {
			st.Until, st.PausedAt, changed = until, now, true
		}
	}
	if math.Abs(r-st.HeaderRate) <= st.HeaderRate*0.01 {
		return changed
	}
	st.HeaderRate = r
	st.Changed = now
	from := now
	if st.Until.After(now) {
		from = st.Until
	}
	st.setRate(r, from)
	return true
}

// follow makes st the limiter's state: a new bucket when its rate or
// start changed, a new burst when only that did, a new count of accepted
// answers when its window did. An automatic burst ends with the first
// pause, here or (sharing a limit) at another importer. l.mu is held.
func (l *Limiter) follow(st State) {
	if l.autoBurst && !st.Until.IsZero() {
		l.burst = 1
	}
	// Gen alone could match by chance when the state comes from a shared
	// store (two importers' first states are both 0).
	if st.Gen != l.st.Gen || st.Rate != l.st.Rate || !st.From.Equal(l.st.From) {
		l.endGen()
		l.gen, l.endGen = context.WithCancel(context.Background())
		// Reset, not SetLimit: changing the rate of a bucket with waiters
		// queued would let new reservations land among the old ones,
		// spaced for the old rate: requests closer together than either
		// rate allows.
		l.lim = rate.NewLimiter(limit(st.Rate), l.burst)
		if !math.IsInf(st.Rate, 1) {
			l.lim.ReserveN(st.From, l.burst)
		}
	} else if l.lim.Burst() != l.burst {
		// Only the burst changed: the bucket keeps what it holds, up to
		// the new burst. A new one, empty at st.From, would be full again
		// by now, and send its burst at once.
		l.lim.SetBurst(l.burst)
	}
	if st.Window != l.st.Window {
		l.accepted.Store(0)
	}
	l.st = st
	l.fromHdr.Store(st.HeaderRate > 0)
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
	if !l.st.Until.IsZero() {
		end = l.st.Until.UnixNano()
	}
	l.pauseEnd.Store(end)
}

// Throttles returns how many 429s were recorded.
func (l *Limiter) Throttles() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n429
}

// Burst returns the bucket's current burst.
func (l *Limiter) Burst() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.burst
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

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
