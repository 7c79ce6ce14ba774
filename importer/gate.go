package importer

import (
	"context"
	"math"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"
)

// gate admits at most limit workers at once; the limit may change while
// workers wait. It is safe for concurrent use.
type gate struct {
	mu     sync.Mutex
	cond   *sync.Cond
	limit  int
	active int
}

func newGate(limit int) *gate {
	g := &gate{limit: limit}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// acquire waits for a place; it fails when ctx ends first.
func (g *gate) acquire(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		g.mu.Lock()
		g.cond.Broadcast()
		g.mu.Unlock()
	})
	defer stop()
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.active >= g.limit {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		g.cond.Wait()
	}
	g.active++
	return nil
}

func (g *gate) release() {
	g.mu.Lock()
	g.active--
	g.mu.Unlock()
	g.cond.Signal()
}

func (g *gate) set(n int) {
	g.mu.Lock()
	g.limit = n
	g.mu.Unlock()
	g.cond.Broadcast()
}

func (g *gate) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limit
}

// latencies accumulates request durations between samples.
type latencies struct {
	sum, n atomic.Int64
}

func (l *latencies) add(d time.Duration) {
	l.sum.Add(int64(d))
	l.n.Add(1)
}

// take returns the mean since the last take, and whether there was any.
func (l *latencies) take() (time.Duration, bool) {
	n := l.n.Swap(0)
	s := l.sum.Swap(0)
	if n == 0 {
		return 0, false
	}
	return time.Duration(s / n), true
}

// AutoMaxWorkers is the most workers --concurrency auto uses; the HTTP
// transport needs as many connections.
const AutoMaxWorkers = autoMax

// Bounds of --concurrency auto.
const (
	autoMin          = 4
	autoMax          = 512
	autoUnlimited    = 32                     // with no rate: more only contend on 2 cores
	autoGuessLatency = 250 * time.Millisecond // before any request has been timed
	ceilingFor       = 30 * time.Second       // how long a useless size caps growth
	// autoStartMax caps the first guess. The guess is made before any
	// request is timed, and a pool too big is a latency of its own
	// making: at --rate 4000 with the ledger on, 512 workers (the guess
	// at 250 ms) and their connections kept the 2 cores and the
	// collector busy enough to read 100-144 ms, which asked for 512
	// again, and made 2,500 rows a second where 16-128 made 4,000. The
	// first answers size a slow API's pool up in one step (firstSize).
	autoStartMax = 128
)

// workersFor is Little's law with headroom: enough requests in flight to
// hold rate at latency, within autoMin-autoMax.
func workersFor(rate float64, latency time.Duration) int {
	if rate <= 0 || math.IsInf(rate, 1) {
		return autoUnlimited
	}
	n := int(math.Ceil(rate*latency.Seconds()*1.25)) + 2
	return min(autoMax, max(autoMin, n))
}

// firstGuess is the pool's size before any request is timed: Little's
// law at autoGuessLatency, at most autoStartMax.
func firstGuess(rate float64) int {
	return min(workersFor(rate, autoGuessLatency), autoStartMax)
}

// firstAnswers is how many timed answers size the pool the first time,
// or whatever came firstWait after the first: the first answers are the
// fastest of those in flight, and fewer would read the latency low.
const (
	firstAnswers = 16
	firstWait    = 250 * time.Millisecond
	firstPoll    = 25 * time.Millisecond
)

// firstSize sizes the gate from the first answers' latency as soon as they
// come, in one step: the size it started at was a guess made before any
// request was timed, and doubling toward the size the rate needs took a
// second a step (4 s from 65 workers to 512 at 2 s answers). It only
// grows the pool here (the fastest answers come first); autoSize's
// seconds then follow the latency either way. It returns the latency read,
// and false when done closed first.
func (r *run) firstSize(done <-chan struct{}) (time.Duration, bool) {
	t := time.NewTicker(firstPoll)
	defer t.Stop()
	var firstAt time.Time
	for {
		select {
		case <-done:
			return 0, false
		case <-t.C:
		}
		n := r.lat.n.Load()
		if n == 0 {
			continue
		}
		if firstAt.IsZero() {
			firstAt = time.Now()
		}
		if n < firstAnswers && time.Since(firstAt) < firstWait {
			continue
		}
		mean, _ := r.lat.take()
		rate := r.cfg.Limiter.Limit()
		if rate == 0 {
			rate = math.Inf(1)
		}
		if want, cur := workersFor(rate, mean), r.gate.size(); want > cur {
			r.gate.set(want)
			r.cfg.Log.Debug("concurrency", "workers", want, "latency", mean.Round(time.Millisecond), "rate", rate, "from", "the first answers")
		}
		return mean, true
	}
}

// autoSize resizes the gate every second to what the current rate needs at
// the latency observed over the last second (an average weighted toward
// the recent). It grows at most twofold a second, and stops growing when
// the last growth did not raise throughput: a server that slows down as
// more requests arrive would otherwise be answered with ever more workers.
// It returns when done closes.
func (r *run) autoSize(done <-chan struct{}) {
	ewma, ok := r.firstSize(done)
	if !ok {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastRate float64
	grew := false
	prev := 0    // the size before the last growth
	ceiling := 0 // a size that more workers did not beat; 0: none
	var ceilingAt time.Time
	last := time.Now()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		n := r.lat.n.Load()
		mean, ok := r.lat.take()
		now := time.Now()
		achieved := float64(n) / now.Sub(last).Seconds()
		last = now
		if !ok {
			continue
		}
		ewma = (ewma*2 + mean) / 3
		rate := r.cfg.Limiter.Limit()
		if rate == 0 {
			rate = math.Inf(1)
		}
		cur := r.gate.size()
		want := workersFor(rate, ewma)
		if ceiling > 0 && now.Sub(ceilingAt) < ceilingFor {
			want = min(want, ceiling)
		}
		switch {
		case grew && achieved < lastRate*1.05:
			// The last growth did not raise throughput: the server, not
			// the worker count, is the limit. Go back, and stay there
			// for a while.
			want, ceiling, ceilingAt, grew = prev, prev, now, false
		case want > cur:
			prev, want, grew = cur, min(want, 2*cur), true
		default:
			grew = false
		}
		lastRate = achieved
		if want != cur {
			r.gate.set(want)
			r.cfg.Log.Debug("concurrency", "workers", want, "latency", ewma.Round(time.Millisecond), "rate", rate, "achieved", math.Round(achieved))
		}
	}
}

// firstGrace is how long, beyond two round trips, the first request's
// answer is awaited before the other workers may send.
const firstGrace = 25 * time.Millisecond

// firstRequest prepares the run's first create request, sent while
// firstMu holds every other worker back. The others used to wait for its
// answer, which cost one latency at the start of every run (0.25 s, 2.5%
// of a 10 s run at 200-300 ms answers). What that wait guards against is
// known sooner:
//   - no connection (a closed port, a wrong host, TLS refused): the
//     request is never written, and its error comes first;
//   - a refusal (a wrong key, a wrong path's 404): it costs the server
//     no work, so it comes back about one round trip after the request
//     was written. The TCP handshake measured that round trip.
//
// So the others go once the request has been written and two round trips
// plus firstGrace have passed with no answer, or at the answer, whichever
// comes first. The returned context carries the trace; release, called
// after the answer (and after halt is set), lets the others go if they
// have not.
func (r *run) firstRequest(ctx context.Context) (context.Context, func()) {
	var once sync.Once
	open := func() {
		once.Do(func() {
			r.opened.Store(true)
			r.firstMu.Unlock()
		})
	}
	var connStart, rtt atomic.Int64 // unix ns; ns
	var timer atomic.Pointer[time.Timer]
	trace := &httptrace.ClientTrace{
		ConnectStart: func(string, string) { connStart.Store(time.Now().UnixNano()) },
		ConnectDone: func(_, _ string, err error) {
			if err == nil {
				rtt.Store(time.Now().UnixNano() - connStart.Load())
			}
		},
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			r.firstDone()
			if i.Err == nil {
				wait := 2*time.Duration(rtt.Load()) + firstGrace
				if old := timer.Swap(time.AfterFunc(wait, open)); old != nil {
					old.Stop()
				}
			}
		},
	}
	release := func() {
		if t := timer.Load(); t != nil {
			t.Stop()
		}
		open()
	}
	return httptrace.WithClientTrace(ctx, trace), release
}
