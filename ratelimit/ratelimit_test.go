package ratelimit

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/revcent-import/revcent-import/revcent"
)

func TestRateHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(100, 1)
		start := time.Now()
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 25 {
					if err := l.Wait(context.Background()); err != nil {
						t.Error(err)
					}
					l.AcceptedFor(time.Time{})
				}
			})
		}
		wg.Wait()
		// 200 requests at 100/s with a burst of 1: the first is free.
		if got := time.Since(start); got != 1990*time.Millisecond {
			t.Errorf("200 requests took %v, want 1.99s", got)
		}
	})
}

func TestUnlimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(0, 0)
		start := time.Now()
		for range 1000 {
			l.Wait(context.Background())
		}
		if time.Since(start) != 0 || l.Limit() != 0 {
			t.Errorf("rate 0 waited %v, limit %v", time.Since(start), l.Limit())
		}
	})
}

func TestThrottledPausesEveryone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(0, 1)
		for range 1000 {
			l.AcceptedFor(time.Time{})
		}
		time.Sleep(time.Second)
		l.Throttled(3*time.Second, time.Now()) // 1000/s accepted: the rate becomes 1000/s
		l.Throttled(time.Second, time.Now())   // a shorter pause never shortens the current one
		start := time.Now()
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() { l.Wait(context.Background()) })
		}
		wg.Wait()
		if got := time.Since(start); got < 3*time.Second || got > 3*time.Second+5*time.Millisecond {
			t.Errorf("waited %v, want 3s (and 1ms a worker at 1000/s)", got)
		}
		if l.Throttles() != 2 {
			t.Errorf("throttles %d", l.Throttles())
		}
	})
}

func TestRateFollowsWhatTheServerAccepted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(50, 1)
		sentBefore := time.Now()
		// 120 answers accepted in 4 s, then a 429: 30/s.
		for range 120 {
			l.AcceptedFor(time.Time{})
		}
		time.Sleep(4 * time.Second)
		l.Throttled(time.Second, time.Now())
		if got := l.Limit(); got != 30 {
			t.Errorf("rate after the 429: %v, want the 30/s accepted", got)
		}
		// A 429 for a request sent before that pause changes nothing.
		l.Throttled(time.Second, sentBefore)
		if got := l.Limit(); got != 30 {
			t.Errorf("a stale 429 moved the rate to %v", got)
		}
		// Quiet periods probe up half way back to the rate the 429 cut
		// (50/s): the first soon, since 30 is far under 50, then once an
		// interval.
		for i, want := range []float64{40, 45, 47.5} {
			wait := ProbeEvery
			if i == 0 {
				wait = ProbeEvery / 5
			}
			time.Sleep(wait)
			l.AcceptedFor(time.Time{})
			l.AcceptedFor(time.Time{})
			if got := l.Limit(); math.Abs(got-want) > 1e-9 {
				t.Errorf("after a quiet %v: %v, want %v", wait, got, want)
			}
		}
		// A 429 now falls back to the last rate that ran a whole interval
		// cleanly, though the window's average reads far lower; and since
		// that probe failed within 15% of it, the next waits twice as long.
		time.Sleep(time.Second)
		l.Throttled(time.Second, time.Now())
		if got, want := l.Limit(), 45.0; math.Abs(got-want) > 1e-9 {
			t.Errorf("after the probe's 429: %v, want the last good %v", got, want)
		}
		time.Sleep(ProbeEvery + time.Second)
		l.AcceptedFor(time.Time{})
		if got := l.Limit(); got != 45 {
			t.Errorf("a probe after one interval (%v), want it after two", got)
		}
		time.Sleep(ProbeEvery)
		l.AcceptedFor(time.Time{})
		if got := l.Limit(); got <= 45 {
			t.Errorf("no probe after two intervals: %v", got)
		}
		// That probe's 429 falls back to the last good rate again, though
		// it is within 5% of the probe; then a cut never more than halves
		// the rate at once (9 s: no probe comes between).
		time.Sleep(time.Second)
		l.Throttled(time.Second, time.Now())
		cur := l.Limit()
		if cur != 45 {
			t.Errorf("after the second probe's 429: %v, want its last good, 45", cur)
		}
		time.Sleep(9 * time.Second)
		l.AcceptedFor(time.Time{})
		l.Throttled(time.Second, time.Now())
		if got, want := l.Limit(), cur/2; math.Abs(got-want) > 1e-9 {
			t.Errorf("after a 429 with 0.1/s accepted: %v, want half, %v", got, want)
		}
	})
}

func TestNoMeasurementHalves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(100, 1)
		time.Sleep(time.Second)
		l.Throttled(time.Second, time.Now())
		if l.Limit() != 50 {
			t.Errorf("a 429 with nothing accepted: rate %v, want 50", l.Limit())
		}
		u := New(0, 1)
		time.Sleep(time.Second)
		u.Throttled(time.Second, time.Now())
		if u.Limit() != noMeasureRate {
			t.Errorf("unlimited, then a 429 with nothing accepted: %v, want %v", u.Limit(), noMeasureRate)
		}
	})
}

func TestTokenWonDuringAPauseIsNotUsed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(1, 1)
		l.Wait(context.Background()) // takes the only token
		done := make(chan time.Time)
		go func() {
			l.Wait(context.Background()) // queues for the next token, due at 1s
			done <- time.Now()
		}()
		synctest.Wait()
		time.Sleep(500 * time.Millisecond)
		for range 10 {
			l.AcceptedFor(time.Time{})
		}
		l.Throttled(2*time.Second, time.Now()) // pause until 2.5s
		start := time.Now().Add(-500 * time.Millisecond)
		if got := (<-done).Sub(start); got < 2500*time.Millisecond {
			t.Errorf("a worker queued before the 429 went at %v, inside the pause", got)
		}
	})
}

func TestWaitCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(1, 1)
		time.Sleep(time.Second)
		l.Throttled(time.Hour, time.Now())
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := l.Wait(ctx); err != context.DeadlineExceeded {
			t.Errorf("Wait = %v, want the context's error", err)
		}
	})
}

// TestAgainstAServerLimit simulates issue 4's case in fake time: 3,000
// rows into a server that accepts 40 requests a second (429 with
// Retry-After: 1 beyond) while the importer asks for 200/s. The ideal is
// 75 s; the target is within 15% of it, with under 5% of requests 429.
func TestAgainstAServerLimit(t *testing.T) {
	// A server allowing "40 a second" banks a second's worth (burst 40):
	// the case, held to its targets. Servers that bank less tell
	// less with each 429; they are held to a looser bound, so that a
	// collapse (seen before waiters were re-queued at each change) fails.
	for _, tc := range []struct {
		name     string
		burst    int
		latency  time.Duration
		deliver  delivery
		maxRatio float64
	}{
		{"burst 40, 5 ms", 40, 5 * time.Millisecond, delivery{}, 1.15},
		{"burst 40, 150 ms", 40, 150 * time.Millisecond, delivery{}, 1.15},
		{"burst 40, 300 ms", 40, 300 * time.Millisecond, delivery{}, 1.15},
		{"burst 10, 50 ms", 10, 50 * time.Millisecond, delivery{}, 1.15},
		{"burst 5, 5 ms", 5, 5 * time.Millisecond, delivery{}, 1.15},
		{"burst 5, 100 ms", 5, 100 * time.Millisecond, delivery{}, 1.15},
		{"burst 5, 300 ms", 5, 300 * time.Millisecond, delivery{}, 1.15},
		{"burst 5, 5 ms, jitter 2 ms", 5, 5 * time.Millisecond, delivery{jitter: 2 * time.Millisecond}, 1.15},
		{"burst 1, 5 ms", 1, 5 * time.Millisecond, delivery{}, 1.15},
		{"burst 1, 250 ms", 1, 250 * time.Millisecond, delivery{}, 1.15},
		// Real processes deliver each request a little late, by a varying
		// amount: a server allowing no burst refuses one that comes
		// sooner after the last than its rate allows. Here, on loopback,
		// 99% of the arrival gaps at --rate 38 --burst 1 were within
		// 0.13 ms of the spacing, the rest within 2.1 ms (BENCHMARKS.md).
		// Up to 2 ms on every request is harsher than that: its bound
		// only catches a collapse.
		{"burst 1, 5 ms, jitter 0.25 ms", 1, 5 * time.Millisecond, delivery{jitter: 250 * time.Microsecond}, 1.15},
		{"burst 1, 5 ms, jitter 1 ms", 1, 5 * time.Millisecond, delivery{jitter: time.Millisecond}, 1.15},
		{"burst 1, 5 ms, jitter 2 ms", 1, 5 * time.Millisecond, delivery{jitter: 2 * time.Millisecond}, 1.20},
		// A machine that delivers one request in 200 3-13 ms late, at any
		// rate (this one does, at times: section 12 of make bench): each
		// late delivery costs a pause whatever the rate near the limit.
		// A fixed rate that knew the noise in advance would take about
		// 1.25x (39.5/s and 15 pauses, with the start's two). A 5% cut for
		// each lone 429 took 1.43-1.48x, ending at 27/s; the rungs (see
		// State.lone) took 1.32-1.40x. Here only the answers to requests
		// more than 2.5 ms late come late (by the rest), and the next
		// start is spaced from them: 1.17-1.35x in 16 runs. The bound
		// catches a collapse; TestLoneThrottles holds the decisions.
		{"burst 1, 5 ms, 0.5% 3-13 ms late", 1, 5 * time.Millisecond, delivery{jitter: 250 * time.Microsecond, tail: 0.005, tailMin: 3 * time.Millisecond, tailMax: 13 * time.Millisecond}, 1.45},
		// A server with a burst takes such late deliveries in its stride
		// (1.108x and 1.004x, as without them).
		{"burst 5, 5 ms, 0.5% 3-13 ms late", 5, 5 * time.Millisecond, delivery{jitter: 250 * time.Microsecond, tail: 0.005, tailMin: 3 * time.Millisecond, tailMax: 13 * time.Millisecond}, 1.15},
		{"burst 40, 5 ms, 0.5% 3-13 ms late", 40, 5 * time.Millisecond, delivery{jitter: 250 * time.Microsecond, tail: 0.005, tailMin: 3 * time.Millisecond, tailMax: 13 * time.Millisecond}, 1.15},
		// The same lateness on the way there, as a trace of a real run
		// showed (BENCHMARKS.md, session 12): the answer comes as late,
		// and the next start is spaced from it (see answered). The
		// issue's bound; before, 1.37-1.40x.
		{"burst 1, 5 ms, 0.5% 3-13 ms late there", 1, 5 * time.Millisecond, delivery{jitter: 250 * time.Microsecond, tail: 0.005, tailMin: 3 * time.Millisecond, tailMax: 13 * time.Millisecond, way: there}, 1.15},
		{"burst 5, 5 ms, 0.5% 3-13 ms late there", 5, 5 * time.Millisecond, delivery{jitter: 250 * time.Microsecond, tail: 0.005, tailMin: 3 * time.Millisecond, tailMax: 13 * time.Millisecond, way: there}, 1.15},
		// A server slow to answer now and then, or by up to 2 ms every
		// time: each late answer delays one start for nothing. 1.071x
		// and 1.076-1.079x (1.070x before); spaced from the quickest
		// recent answer rather than the median, the second took 1.10x.
		{"burst 1, 5 ms, 0.5% answered 3-13 ms late", 1, 5 * time.Millisecond, delivery{jitter: 250 * time.Microsecond, tail: 0.005, tailMin: 3 * time.Millisecond, tailMax: 13 * time.Millisecond, way: back}, 1.09},
		{"burst 1, 5 ms, every answer 0-2 ms late", 1, 5 * time.Millisecond, delivery{jitter: 2 * time.Millisecond, way: back}, 1.09},
	} {
		for _, burst := range importerBursts {
			t.Run(tc.name+", importer "+burst.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					const rows, serverRate = 3000, 40
					server := rate.NewLimiter(serverRate, tc.burst)
					l := New(200, burst.burst)
					start := time.Now()
					requests, throttled := drive(l, rows, tc.latency, tc.deliver, func() (bool, *revcent.Quota) { return server.Allow(), nil })
					elapsed := time.Since(start)
					ideal := time.Duration(rows/serverRate) * time.Second
					share := float64(throttled) / float64(requests)
					t.Logf("%v for 3000 rows (%.3fx the ideal %v), %d requests, %d answered 429 (%.1f%%), final rate %.1f/s",
						elapsed.Round(time.Millisecond), elapsed.Seconds()/ideal.Seconds(), ideal, requests, throttled, 100*share, l.Limit())
					if ratio := elapsed.Seconds() / ideal.Seconds(); ratio > tc.maxRatio || share >= 0.05 {
						t.Errorf("%.2fx the ideal, %.1f%% 429s: want within %.2fx and under 5%%", ratio, 100*share, tc.maxRatio)
					}
				})
			})
		}
	}
}

// importerBursts are the importer's bursts the simulations run with: the
// default, and 1.
var importerBursts = []struct {
	name  string
	burst int
}{{"burst auto", AutoBurst}, {"burst 1", 1}}

// busiest returns the most starts in any window of length w.
func busiest(starts []time.Time, w time.Duration) int {
	slices.SortFunc(starts, time.Time.Compare)
	most, j := 0, 0
	for i := range starts {
		for starts[i].Sub(starts[j]) >= w {
			j++
		}
		most = max(most, i-j+1)
	}
	return most
}

func TestNoSecondAboveRatePlusBurst(t *testing.T) {
	// Workers get their tokens on time, but one in ten starts up to 5 ms
	// late (a pending line to write, a busy scheduler), and delivery to
	// the server varies by up to Allowance. Counted from the tokens, a
	// late start lands next to the on-time one after it: seconds at the
	// server above rate + burst. Start keeps them within.
	for _, tc := range []struct {
		rate  float64
		burst int
	}{{1000, 1}, {100, 1}, {200, 10}} {
		synctest.Test(t, func(t *testing.T) {
			l := New(tc.rate, tc.burst)
			rnd := rand.New(rand.NewPCG(1, 2))
			var mu sync.Mutex
			var withoutStart, withStart []time.Time // as the server sees them
			deliver := func(at time.Time) time.Time {
				return at.Add(time.Duration(rnd.Int64N(int64(Allowance))))
			}
			n := int(tc.rate * 5)
			var next atomic.Int64
			var wg sync.WaitGroup
			begin := time.Now()
			for range 64 {
				wg.Go(func() {
					for next.Add(1) <= int64(n) {
						l.Wait(context.Background())
						mu.Lock()
						var late time.Duration
						if rnd.IntN(10) == 0 {
							late = time.Duration(rnd.Int64N(int64(5 * time.Millisecond)))
						}
						withoutStart = append(withoutStart, deliver(time.Now().Add(late)))
						mu.Unlock()
						time.Sleep(late)
						if err := l.Start(context.Background()); err != nil {
							t.Error(err)
						}
						mu.Lock()
						withStart = append(withStart, deliver(time.Now()))
						mu.Unlock()
						time.Sleep(50 * time.Millisecond)
					}
				})
			}
			wg.Wait()
			achieved := float64(n) / time.Since(begin).Seconds()
			limit := int(tc.rate) + tc.burst
			without, with := busiest(withoutStart, time.Second), busiest(withStart, time.Second)
			t.Logf("rate %v burst %d: busiest second at the server %d without Start, %d with it; %.1f/s", tc.rate, tc.burst, without, with, achieved)
			if with > limit {
				t.Errorf("rate %v burst %d: %d requests in one second at the server, want at most %d", tc.rate, tc.burst, with, limit)
			}
			if tc.rate == 1000 && without <= limit {
				t.Errorf("the case does not bunch without Start (%d): it tests nothing", without)
			}
			if achieved < tc.rate*0.97 || achieved > tc.rate*1.01 { // issue 5: 0.97-1.02
				t.Errorf("rate %v: achieved %.1f/s, want 0.97-1.01 of it", tc.rate, achieved)
			}
		})
	}
}

// windowServer is a server allowing limit requests in each fixed window
// of one second, that says so in its answers' rate-limit headers.
type windowServer struct {
	mu     sync.Mutex
	limit  int
	start  time.Time
	count  int
	policy bool // RateLimit-Policy's w=1 too; else the window is guessed from resets
}

func (s *windowServer) ask() (ok bool, q revcent.Quota) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if now.Sub(s.start) >= time.Second {
		s.start, s.count = now.Truncate(time.Second), 0
	}
	if s.count < s.limit {
		s.count++
		ok = true
	}
	q = revcent.Quota{Limit: s.limit, Remaining: s.limit - s.count, Reset: s.start.Add(time.Second).Sub(now)}
	if s.policy {
		q.Window = time.Second
	}
	return ok, q
}

// TestAgainstAServerWithHeaders: a server that sends rate-limit headers
// (RateLimit-Limit: 40, -Remaining, -Reset, with or without a policy's
// window) is run at the rate they give, 3,000 rows within 5% of the ideal
// 75 s, 429s under 5%.
func TestAgainstAServerWithHeaders(t *testing.T) {
	for _, policy := range []bool{true, false} {
		for _, latency := range []time.Duration{5 * time.Millisecond, 250 * time.Millisecond} {
			for _, burst := range importerBursts {
				t.Run(fmt.Sprintf("policy %v, %v, importer %s", policy, latency, burst.name), func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						const rows = 3000
						srv := &windowServer{limit: 40, start: time.Now(), policy: policy}
						l := New(200, burst.burst)
						start := time.Now()
						requests, throttled := drive(l, rows, latency, delivery{}, func() (bool, *revcent.Quota) { ok, q := srv.ask(); return ok, &q })
						elapsed := time.Since(start)
						share := float64(throttled) / float64(requests)
						ratio := elapsed.Seconds() / 75
						t.Logf("%v for 3000 rows (%.3fx the ideal 75s), %d requests, %d answered 429 (%.1f%%), final rate %.1f/s",
							elapsed.Round(time.Millisecond), ratio, requests, throttled, 100*share, l.Limit())
						if ratio > 1.05 || share >= 0.05 {
							t.Errorf("%.2fx the ideal, %.1f%% 429s: want within 1.05x and under 5%%", ratio, 100*share)
						}
					})
				})
			}
		}
	}
}

// drive sends rows through l with 64 workers, each request taking latency
// and answered half way by ask (a 429 when it says no, with the quota its
// headers carry, if any), sent again until accepted. Each request reaches
// ask up to jitter late, at random (the same draws each run). It returns
// the requests sent and the 429s.
func drive(l *Limiter, rows int, latency time.Duration, deliver delivery, ask func() (bool, *revcent.Quota)) (requests, throttled int64) {
	var next, req, thr atomic.Int64
	var wg sync.WaitGroup
	for w := range 64 {
		rnd := rand.New(rand.NewPCG(1, uint64(w)))
		wg.Go(func() {
			for next.Add(1) <= int64(rows) {
				for {
					l.Wait(context.Background())
					l.Start(context.Background())
					sent := time.Now()
					req.Add(1)
					there, back := deliver.legs(rnd)
					time.Sleep(latency/2 + there)
					ok, q := ask()
					time.Sleep(latency/2 + back)
					if q != nil {
						l.Quota(*q)
					}
					if ok {
						l.AcceptedFor(sent)
						break
					}
					thr.Add(1)
					l.Throttled(time.Second, sent)
				}
			}
		})
	}
	wg.Wait()
	return req.Load(), thr.Load()
}

// delivery is how late each request reaches the server: up to jitter, at
// random; and, with probability tail, tailMin to tailMax more (a process
// or a whole machine not scheduled for a few milliseconds).
type delivery struct {
	jitter           time.Duration
	tail             float64
	tailMin, tailMax time.Duration
	way              way
}

// way is where a delivery's lateness lies.
type way int

const (
	// arrives: the request reaches the server late, and its answer
	// comes back when it would have (the way back as much quicker).
	arrives way = iota
	// there: late on its way there (a process not scheduled before the
	// server reads it), so the answer comes back as late.
	there
	// back: the server has the request on time and answers late.
	back
)

// legs returns how late a request reaches the server, and how much later
// than usual its answer leaves it (negative: sooner).
func (d delivery) legs(rnd *rand.Rand) (time.Duration, time.Duration) {
	var late time.Duration
	if d.jitter > 0 {
		late = time.Duration(rnd.Int64N(int64(d.jitter)))
	}
	if d.tail > 0 && rnd.Float64() < d.tail {
		late += d.tailMin + time.Duration(rnd.Int64N(int64(d.tailMax-d.tailMin)+1))
	}
	switch d.way {
	case there:
		return late, 0
	case back:
		return 0, late
	}
	return late, -late
}

// TestAutoBurst: an automatic burst is a tenth of a second's requests at
// the start, and 1 once RevCent has answered 429: a bucket that refills
// while nobody waits then sends one request at once, not 20. A burst set
// by the user stays.
func TestAutoBurst(t *testing.T) {
	for _, tc := range []struct {
		name         string
		burst        int
		start, after int // requests at once at the start, and after a 429 and an idle second
		rate         float64
	}{
		{"auto", AutoBurst, 20, 1, 200},
		{"set", 20, 20, 20, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := New(tc.rate, tc.burst)
				atOnce := func() int {
					start, n := time.Now(), 0
					for {
						if err := l.Wait(context.Background()); err != nil {
							t.Fatal(err)
						}
						if time.Since(start) > 0 {
							return n
						}
						n++
					}
				}
				if got := atOnce(); got != tc.start {
					t.Errorf("%d requests at once at the start, want %d", got, tc.start)
				}
				l.Throttled(time.Second, time.Now())
				time.Sleep(2 * time.Second) // the pause, then an idle second: the bucket refills
				if got := atOnce(); got != tc.after {
					t.Errorf("%d requests at once after a 429 and an idle second, want %d", got, tc.after)
				}
			})
		})
	}
	for r, want := range map[float64]int{0: 1, 5: 1, 10: 1, 15: 2, 200: 20, 1000: 100, math.MaxFloat64: (maxWindow + 9) / 10} {
		if got := StartBurst(r); got != want {
			t.Errorf("StartBurst(%g) = %d, want %d", r, got, want)
		}
	}
}

// TestAutoBurstEndsAtAHeaderPause: with rate-limit headers a 429 pauses
// without changing the rate, so the bucket is kept: its burst still drops
// to 1 (an idle second then refills it to 1, not 20).
func TestAutoBurstEndsAtAHeaderPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(200, AutoBurst)
		l.Quota(revcent.Quota{Limit: 200, Remaining: -1, Window: time.Second}) // 200/s, from now
		l.Throttled(time.Second, time.Now())
		time.Sleep(2 * time.Second)
		start, n := time.Now(), 0
		for time.Since(start) == 0 {
			l.Wait(context.Background())
			n++
		}
		if n-1 != 1 || l.Burst() != 1 {
			t.Errorf("%d requests at once after a paused 429 and an idle second (burst %d), want 1", n-1, l.Burst())
		}
	})
}

// TestAutoBurstHeldToRemaining: rate-limit headers saying the server takes
// 4 more now cap an automatic burst at 4 (a set one stays).
func TestAutoBurstHeldToRemaining(t *testing.T) {
	q := revcent.Quota{Limit: 40, Remaining: 4, Reset: time.Second}
	auto, set := New(200, AutoBurst), New(200, 20)
	auto.Quota(q)
	set.Quota(q)
	if a, s := auto.Burst(), set.Burst(); a != 4 || s != 20 {
		t.Errorf("bursts %d (auto) and %d (set) after RateLimit-Remaining: 4, want 4 and 20", a, s)
	}
	q.Remaining = -1 // not said
	auto = New(200, AutoBurst)
	auto.Quota(q)
	if b := auto.Burst(); b != 20 {
		t.Errorf("burst %d after headers without a remaining count, want 20", b)
	}
}

// TestBurstLoweredMidRunKeepsTheBucket: a burst lowered while requests
// flow (each answer's RateLimit-Remaining) keeps the bucket as it is: a
// new bucket, started where the rate did, would be full again and send
// its burst at once.
func TestBurstLoweredMidRunKeepsTheBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(200, AutoBurst)
		l.Quota(revcent.Quota{Limit: 40, Remaining: 4, Reset: time.Second}) // 40/s, from now
		for range 20 {                                                      // half a second at 40/s: the bucket stays empty
			l.Wait(context.Background())
		}
		l.Quota(revcent.Quota{Limit: 40, Remaining: 3, Reset: time.Second})
		start, n := time.Now(), 0
		for time.Since(start) == 0 {
			l.Wait(context.Background())
			n++
		}
		if n != 1 || time.Since(start) != 25*time.Millisecond {
			t.Errorf("after the burst was lowered: %d requests at once, then one after %v; want none, then one after 25ms", n-1, time.Since(start))
		}
	})
}

// TestStartsATokenApart: with a burst of 1, a request that started late
// holds the next one back a whole token's time (the bucket had timed it
// from the late one's reservation): a server allowing no burst would
// answer it 429. With a larger burst, starts may come closer.
func TestStartsATokenApart(t *testing.T) {
	for _, tc := range []struct {
		burst int
		want  time.Duration
	}{{1, 10 * time.Millisecond}, {5, 0}} {
		t.Run(fmt.Sprint("burst ", tc.burst), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := New(100, tc.burst)
				for range tc.burst - 1 { // empty the bucket
					l.Wait(context.Background())
				}
				start := time.Now()
				l.Wait(context.Background())
				time.Sleep(3 * time.Millisecond) // this worker is late
				l.Start(context.Background())
				first := time.Now()
				l.Wait(context.Background()) // the next token, on time at 10 ms
				l.Start(context.Background())
				second := time.Now()
				if got := second.Sub(first); tc.want > 0 && got != tc.want {
					t.Errorf("starts %v apart after a late one, want %v", got, tc.want)
				}
				if got := second.Sub(first); tc.want == 0 && got > 8*time.Millisecond {
					t.Errorf("with burst %d the second start came %v after the late one (at %v), want on its token, about 7ms after", tc.burst, got, second.Sub(start))
				}
			})
		})
	}
}

// TestLoneThrottleAtATakenRate: a 429 after seconds at a rate the server
// took (against a server allowing no burst, one request delivered a
// little early) reads the server's rate from what it accepted beyond what
// it took before its first 429: the rate is cut by 5%, not to what the
// whole window, its pause included, reads (32.2/s from 37.5/s).
func TestLoneThrottleAtATakenRate(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 7, 37, 36, 0, time.UTC)
	base := State{Rate: 37.5, Cuts: 5, WindowFrom: t0, PausedAt: t0, SendFrom: t0.Add(time.Second), Step: ProbeStep, Every: 2 * ProbeEvery}
	now := t0.Add(7340 * time.Millisecond) // 1 s paused, 6.34 s sending at 37.5/s: 236 accepted
	for _, tc := range []struct {
		name  string
		first bool
		want  float64
	}{
		{"first 429's count known", true, 37.5 * 0.95},
		{"not known (a state shared by an older importer)", false, 236 / 7.34},
	} {
		st := base
		st.FirstAccepted, st.FirstSeen = 1, tc.first
		if !st.throttled(now, time.Second, now.Add(-10*time.Millisecond), 236, 200, true) {
			t.Fatalf("%s: the 429 changed nothing", tc.name)
		}
		if math.Abs(st.Rate-tc.want) > 0.01 {
			t.Errorf("%s: cut to %.2f/s, want %.2f/s", tc.name, st.Rate, tc.want)
		}
	}
	// The first cut of a run records what was accepted before it.
	st := State{Rate: 200, WindowFrom: t0, SendFrom: t0, Step: ProbeStep, Every: ProbeEvery}
	st.throttled(t0.Add(25*time.Millisecond), time.Second, t0.Add(20*time.Millisecond), 1, 200, true)
	if !st.FirstSeen || st.FirstAccepted != 1 {
		t.Errorf("after the first 429: FirstAccepted %d (seen %v), want 1", st.FirstAccepted, st.FirstSeen)
	}
}

// TestNoStartDuringAPause: a worker that took its token before a 429
// (it was writing its pending line when the answer came) starts after
// the pause, not inside it: the server said when to come back. In real
// processes such starts inside the first pause drew two more 429s and
// two more halvings, to 25/s against a server allowing 40/s.
func TestNoStartDuringAPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(100, 1)
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // the pending line
		l.Throttled(time.Second, time.Now().Add(-time.Millisecond))
		paused := time.Now()
		if err := l.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(paused); got < time.Second {
			t.Errorf("a start waiting when the 429 came went %v into the 1s pause", got)
		}
		ctx, cancel := context.WithCancel(context.Background())
		l.Throttled(time.Hour, time.Now())
		cancel()
		if err := l.Start(ctx); err != context.Canceled {
			t.Errorf("Start in a pause with its context ended = %v, want the context's error", err)
		}
	})
}

// TestRampAfterAGuess: a cut that measured nothing halves the rate and
// starts a ramp at the pause's end; a limiter pacing one start at a time
// climbs it, from a quarter of the new rate to all of it in a second.
func TestRampAfterAGuess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(200, 1)
		l.Wait(context.Background())
		l.Start(context.Background())
		time.Sleep(5 * time.Millisecond)
		l.Throttled(time.Second, time.Now().Add(-time.Millisecond)) // within a second: a guess
		paused := time.Now()
		if l.Limit() != 100 {
			t.Fatalf("after a 429 5ms in: rate %v, want 100 (halved)", l.Limit())
		}
		var starts []time.Time
		for range 60 {
			l.Wait(context.Background())
			l.Start(context.Background())
			starts = append(starts, time.Now())
		}
		pauseEnd := starts[0]
		// The bucket at the new rate starts empty at the pause's end.
		if got := pauseEnd.Sub(paused); got != time.Second+10*time.Millisecond {
			t.Fatalf("the first start came %v after the 429, want 1.01s (its pause, then a token at 100/s)", got)
		}
		// The second start comes at the ramp's first rate, 25/s; a second
		// later the gap is the rate's, 10ms.
		if got := starts[1].Sub(starts[0]); got < 38*time.Millisecond || got > 40*time.Millisecond {
			t.Errorf("the ramp's first gap: %v, want about 40ms (25/s)", got)
		}
		for i := 2; i < len(starts); i++ {
			if starts[i].Sub(starts[i-1]) > starts[i-1].Sub(starts[max(i-2, 0)])+time.Millisecond {
				t.Errorf("gap %d (%v) longer than the one before: the ramp climbs", i, starts[i].Sub(starts[i-1]))
			}
		}
		last := starts[len(starts)-1].Sub(starts[len(starts)-2])
		if starts[len(starts)-1].Sub(pauseEnd) < time.Second || last != 10*time.Millisecond {
			t.Errorf("after %v on the ramp the gap is %v, want 10ms (100/s) past a second", starts[len(starts)-1].Sub(pauseEnd), last)
		}
	})
}

// TestRampReadsANoBurstServer: against a server that took one request
// at once, a 429 for a request sent on the ramp sets the rate just under
// the ramp's then, and remembers that rate as refused. Without the ramp
// kept (a shared limit, or a burst over 1), the same 429 halves.
func TestRampReadsANoBurstServer(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	st := State{Rate: 200, WindowFrom: t0, SendFrom: t0, Step: ProbeStep, Every: ProbeEvery}
	st.throttled(t0.Add(5*time.Millisecond), time.Second, t0, 1, 200, true)
	if st.Rate != 100 || st.RampFrom != 25 || !st.RampAt.Equal(t0.Add(1005*time.Millisecond)) {
		t.Fatalf("after a 429 5ms in: rate %v, ramp from %v at %v; want 100, from 25 at the pause's end", st.Rate, st.RampFrom, st.RampAt.Sub(t0))
	}
	sent := st.RampAt.Add(340 * time.Millisecond) // on the ramp at 25*4^0.34 = 40.2/s
	onRamp := 25 * math.Pow(4, 0.34)
	for _, ramped := range []bool{true, false} {
		got := st
		got.throttled(sent.Add(5*time.Millisecond), time.Second, sent, 10, 200, ramped)
		// 95% of the ramp's rate at the request before, a step lower.
		want, bad := onRamp/math.Pow(4, 1/onRamp)*RampMargin, onRamp
		if !ramped {
			want, bad = 50, 100
		}
		if math.Abs(got.Rate-want) > 0.01 || math.Abs(got.LastBad-bad) > 0.01 {
			t.Errorf("ramp kept %v: rate %.2f, last refused %.2f; want %.2f and %.2f", ramped, got.Rate, got.LastBad, want, bad)
		}
		if ramped && !got.RampAt.IsZero() {
			t.Errorf("a rate read on the ramp starts another ramp at %v", got.RampAt)
		}
	}
	// A server that took more at once (a burst) drains it on the ramp
	// before it refuses: the ramp's rate then is over its own, and no reading.
	burst := st
	burst.FirstAccepted = 5
	burst.throttled(sent.Add(5*time.Millisecond), time.Second, sent, 10, 200, true)
	if burst.Rate != 50 {
		t.Errorf("a server with a burst, refused on the ramp: rate %.2f, want 50 (halved)", burst.Rate)
	}
}

// TestProbeBisects: near the rate a 429 last cut, a probe goes half way
// to it, where a whole step would only repeat the 429; at it, a step
// past it; a failed probe goes back to the rate that ran before it.
func TestProbeBisects(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ rate, bad, want float64 }{
		{38.34, 40.36, 39.35},     // within 25%: half way
		{39.9, 40.1, 39.9 * 1.05}, // within 1%: a step past
		{25, 50, 37.5},            // far: half way
		{30, 31, 30.5},
	} {
		st := State{Rate: tc.rate, LastBad: tc.bad, Changed: t0, Step: ProbeStep, Every: ProbeEvery}
		if !st.probe(t0.Add(ProbeEvery), 200) {
			t.Fatalf("%v under %v: no probe after %v", tc.rate, tc.bad, ProbeEvery)
		}
		if math.Abs(st.Rate-tc.want) > 0.01 {
			t.Errorf("probe from %v with %v refused: %.3f, want %.3f", tc.rate, tc.bad, st.Rate, tc.want)
		}
	}
	st := State{Rate: 39.86, LastBad: 40.36, Changed: t0, WindowFrom: t0, SendFrom: t0, Step: ProbeStep, Every: ProbeEvery, FirstSeen: true, FirstAccepted: 1}
	st.probe(t0.Add(ProbeEvery), 200)
	now := t0.Add(ProbeEvery + 50*time.Millisecond)
	st.throttled(now, time.Second, now.Add(-5*time.Millisecond), 400, 200, true)
	if st.Rate != 39.86 {
		t.Errorf("the probe to 40.11 failed: rate %.2f, want 39.86, the rate before it", st.Rate)
	}
}

// TestPreciseSleepIsNeverEarly runs in real time: the yielding part of
// preciseSleep must not end before the time, and a context that ends
// stops it. (How close to the time it ends is a measurement: see
// BENCHMARKS.md, arrival gaps at --burst 1.)
func TestPreciseSleepIsNeverEarly(t *testing.T) {
	for _, d := range []time.Duration{0, 200 * time.Microsecond, 3 * time.Millisecond} {
		for range 20 {
			start := time.Now()
			if err := preciseSleep(context.Background(), d); err != nil {
				t.Fatal(err)
			}
			if got := time.Since(start); got < d {
				t.Fatalf("preciseSleep(%v) returned after %v", d, got)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, d := range []time.Duration{time.Millisecond, time.Hour} {
		if err := preciseSleep(ctx, d); err != context.Canceled {
			t.Errorf("preciseSleep(%v) with its context ended = %v, want the context's error", d, err)
		}
	}
}

// TestFirstAcceptedCountsLateAnswers: answers come in any order. A
// server that took ten requests of a burst and refused the eleventh may
// answer the 429 first; the ten answers that follow still count as what
// it took at once (a server with a burst), one of them to a request sent
// in the burst after the refused one; an answer to a request sent after
// the burst does not.
func TestFirstAcceptedCountsLateAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(200, AutoBurst)
		sent := time.Now()
		time.Sleep(50 * time.Millisecond)
		l.Throttled(time.Second, sent)
		for range 9 {
			l.AcceptedFor(sent)
		}
		l.AcceptedFor(sent.Add(2 * time.Millisecond))  // in the burst, though sent after the refused one
		l.AcceptedFor(sent.Add(20 * time.Millisecond)) // after the burst
		l.AcceptedFor(time.Time{})                     // sent when, unknown
		l.mu.Lock()
		got := l.st.FirstAccepted
		l.mu.Unlock()
		if got != 10 {
			t.Errorf("FirstAccepted %d after ten late answers to the refused burst, want 10", got)
		}
	})
}

// TestLoneThrottleAfterARamp: against a server allowing no burst, a 429
// seconds after a ramp ended (a late delivery) cuts 5%; the window's
// readings, which count the ramp's slow start, read 28.6/s for 37.6/s.
func TestLoneThrottleAfterARamp(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 9, 44, 17, 14_000_000, time.UTC)
	st := State{Rate: 37.61, Cuts: 4, WindowFrom: t0, PausedAt: t0, Until: t0.Add(time.Second), SendFrom: t0.Add(time.Second),
		RampFrom: 4.95, RampAt: t0.Add(time.Second), Step: ProbeStep, Every: 2 * ProbeEvery, FirstSeen: true, FirstAccepted: 1}
	now := t0.Add(4706 * time.Millisecond) // 3.7 s after the ramp began; it reached 37.61/s at 1.46 s
	for _, ramped := range []bool{true, false} {
		got := st
		got.throttled(now, time.Second, now.Add(-5*time.Millisecond), 107, 200, ramped)
		want := 37.61 * 0.95
		if !ramped {
			want = 106 / 3.706 // what it accepted beyond its first, over the sending time
		}
		if math.Abs(got.Rate-want) > 0.01 {
			t.Errorf("ramp kept %v: cut to %.2f/s, want %.2f/s", ramped, got.Rate, want)
		}
	}
}

// TestRampAgainAfterAReadingTooHigh: against a server allowing no burst,
// a 429 soon after a pause at a rate read on a ramp (delivery jitter let
// the request before the refused one through early) ramps again, from an
// eighth of the rate up to 95% of it, where halving guessed 19/s for a
// server taking about 37.
func TestRampAgainAfterAReadingTooHigh(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 8, 43, 1, 941_000_000, time.UTC)
	st := State{Rate: 38, Cuts: 2, WindowFrom: t0, PausedAt: t0, Until: t0.Add(time.Second), SendFrom: t0.Add(time.Second),
		Step: ProbeStep, Every: ProbeEvery, FirstSeen: true, FirstAccepted: 1}
	now := t0.Add(1155 * time.Millisecond) // 0.155 s after the pause
	for _, ramped := range []bool{true, false} {
		got := st
		got.throttled(now, time.Second, now.Add(-5*time.Millisecond), 6, 200, ramped)
		want, from := 38*RampMargin, 38.0/(2*RampSpan)
		if !ramped {
			want, from = 19, 19.0/RampSpan // a guess: halved, then the usual ramp
		}
		if math.Abs(got.Rate-want) > 0.01 || math.Abs(got.RampFrom-from) > 0.01 || !got.RampAt.Equal(now.Add(time.Second)) {
			t.Errorf("ramp kept %v: rate %.2f, ramp from %.2f at %v; want %.2f, from %.2f at the pause's end", ramped, got.Rate, got.RampFrom, got.RampAt.Sub(t0), want, from)
		}
	}
}

// TestLoneThrottles: against a server allowing no burst, what a lone 429
// (seconds after a pause) does depends on what the rates tried cost. A
// rare one keeps the rate: its pause costs less than a cut would. Frequent
// ones cut 5%, and keep cutting while that makes them rarer; cuts after
// which they come as often as before are undone. Cut after cut took a run
// on a machine that delivers one request in 200 3-13 ms late from 38/s to
// 27/s.
func TestLoneThrottles(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 11, 13, 54, 647_000_000, time.UTC)
	for _, tc := range []struct {
		name  string
		every []time.Duration // the time from each pause's end to the next lone 429
		want  []float64       // the rate after each
	}{
		{"rare", []time.Duration{25 * time.Second, 30 * time.Second}, []float64{38, 38}},
		{"frequent, then rare after a cut", []time.Duration{3 * time.Second, 40 * time.Second}, []float64{38 * 0.95, 38 * 0.95}},
		{"as frequent after each cut", []time.Duration{3 * time.Second, 3 * time.Second, 3 * time.Second}, []float64{38 * 0.95, 38 * 0.95 * 0.95, 38}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := State{Rate: 38, Cuts: 3, WindowFrom: t0.Add(-time.Second), PausedAt: t0.Add(-time.Second), Changed: t0.Add(-time.Second),
				Until: t0, SendFrom: t0, Step: ProbeStep, Every: 2 * ProbeEvery, FirstSeen: true, FirstAccepted: 1}
			for i, d := range tc.every {
				now := st.SendFrom.Add(d)
				accepted := int64(st.Rate * d.Seconds())
				if !st.throttled(now, time.Second, now.Add(-5*time.Millisecond), accepted, 200, true) {
					t.Fatalf("429 %d changed nothing", i+1)
				}
				if math.Abs(st.Rate-tc.want[i]) > 0.01 {
					t.Errorf("after 429 %d, %v after a pause: %.2f/s, want %.2f/s", i+1, d, st.Rate, tc.want[i])
				}
			}
		})
	}
}

// TestTooHighOnlyRightAfterAPause: against a server allowing no burst, a
// rate over its own is refused within the first few requests after a
// pause; a 429 for the 4th request ramps again, one for the 19th (half a
// second in) is a lone 429, which cuts 5% without a ramp (a ramp from an
// eighth of the rate costs about 0.8 s of sending).
func TestTooHighOnlyRightAfterAPause(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 11, 55, 47, 28_000_000, time.UTC)
	for _, tc := range []struct {
		after    time.Duration // the refused request, sent this long after the pause
		accepted int64
		ramp     bool
	}{
		{100 * time.Millisecond, 3, true},
		{500 * time.Millisecond, 18, false},
	} {
		st := State{Rate: 38, Cuts: 3, WindowFrom: t0.Add(-time.Second), PausedAt: t0.Add(-time.Second), Changed: t0.Add(-time.Second),
			Until: t0, SendFrom: t0, Step: ProbeStep, Every: 2 * ProbeEvery, FirstSeen: true, FirstAccepted: 1}
		sent := t0.Add(tc.after)
		st.throttled(sent.Add(5*time.Millisecond), time.Second, sent, tc.accepted, 200, true)
		if ramp := !st.RampAt.IsZero(); ramp != tc.ramp || math.Abs(st.Rate-38*0.95) > 0.01 {
			t.Errorf("a 429 for a request sent %v after a pause: rate %.2f, ramp %v; want %.2f, ramp %v", tc.after, st.Rate, ramp, 38*0.95, tc.ramp)
		}
	}
}

// afterCuts is a limiter at --rate target and --burst 1 that 429s have
// cut to 40/s (or back to it, at a target of 40), past its first window.
func afterCuts(target float64) *Limiter {
	l := New(target, 1)
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.st
	st.setRate(40, time.Now())
	st.Cuts = 3 // the first window's answers are no longer counted
	l.follow(st)
	l.countFirst.Store(false)
	return l
}

// TestSpacedFromALateAnswer: with starts spaced one by one, a request
// whose answer came 9 ms later than usual reached the server up to 9 ms
// late; the next start waits a whole spacing after that, so that the
// server, allowing no burst, does not refuse it. The start after an
// answer on time is spaced as before. Answers that come after the next
// start change nothing. So at a configured --rate 40 --burst 1 (before
// any 429, and back at it after some), and at a rate 429s cut to 40/s; not where rate-limit headers set the rate (the
// server said it, and a late answer moves nothing), nor with a shared
// limit (one importer's late answer says nothing of the others' starts).
func TestSpacedFromALateAnswer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		new   func(t *testing.T) *Limiter
		moves bool
	}{
		{"configured", func(*testing.T) *Limiter { return New(40, 1) }, true},
		{"shared", func(t *testing.T) *Limiter {
			l := New(40, 1)
			shareAll(t, &memShared{accepted: map[int64]int64{}, members: 1}, l)
			return l
		}, false},
		{"headers", func(*testing.T) *Limiter {
			l := New(200, 1)
			l.Quota(revcent.Quota{Limit: 40, Remaining: -1, Window: time.Second})
			return l
		}, false},
		{"back at --rate after 429s", func(*testing.T) *Limiter { return afterCuts(40) }, true},
		{"cut", func(*testing.T) *Limiter { return afterCuts(200) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				l := tc.new(t)
				const spacing = 25 * time.Millisecond
				send := func(took time.Duration) time.Time {
					if err := l.Wait(ctx); err != nil {
						t.Fatal(err)
					}
					if err := l.Start(ctx); err != nil {
						t.Fatal(err)
					}
					sent := time.Now()
					time.Sleep(took)
					l.AcceptedFor(sent)
					return sent
				}
				for range 40 {
					send(time.Millisecond)
				}
				late := send(10 * time.Millisecond)
				onTime := send(time.Millisecond)
				want := spacing
				if tc.moves {
					want += 9 * time.Millisecond
				}
				if got := onTime.Sub(late); got != want {
					t.Errorf("a start %v after one answered 9 ms late, want %v", got, want)
				}
				next := send(time.Millisecond)
				if got := next.Sub(onTime); got != spacing {
					t.Errorf("a start %v after one answered on time, want %v", got, spacing)
				}
				// Answered after the next start: the next start is not held.
				slow := make(chan time.Time)
				go func() { slow <- send(40 * time.Millisecond) }()
				time.Sleep(time.Millisecond)
				after := send(time.Millisecond)
				if got := after.Sub(<-slow); got != spacing {
					t.Errorf("a start %v after one answered after it, want %v", got, spacing)
				}
			})
		})
	}
}
