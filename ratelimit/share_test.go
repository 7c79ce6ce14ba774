package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/revcent-import/revcent-import/revcent"
)

// memShared is a Shared store in memory, for fake-time tests of what
// importers sharing a limit do (ratelimit/redislimit tests the Redis one
// against a real server). Its bucket is an x/time/rate limiter at the
// rate asked, re-made when the rate changes.
type memShared struct {
	mu       sync.Mutex
	st       State
	accepted map[int64]int64
	bucket   *rate.Limiter
	r        float64
	fail     bool // every call fails: the store is gone
	members  int
}

var errGone = errors.New("store gone")

func (m *memShared) Take(ctx context.Context, r float64, burst int) error {
	m.mu.Lock()
	if m.fail {
		m.mu.Unlock()
		return errGone
	}
	if m.bucket == nil {
		m.bucket = rate.NewLimiter(rate.Limit(r), burst)
	}
	if m.r != r { // as GCRA does: the rate of the asking importer, the bucket's state kept
		m.bucket.SetLimit(rate.Limit(r))
		m.r = r
	}
	b := m.bucket
	m.mu.Unlock()
	return b.Wait(ctx)
}

func (m *memShared) Update(ctx context.Context, window, n int64, f func(*State, int64) bool) (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return State{}, errGone
	}
	m.accepted[window] += n
	st := m.st
	if f(&st, m.accepted[st.Window]) {
		m.st = st
	}
	return m.st, nil
}

func (m *memShared) Sync(ctx context.Context, window, n int64) (State, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return State{}, 0, errGone
	}
	m.accepted[window] += n
	return m.st, m.members, nil
}

func (m *memShared) Leave(context.Context) error { return nil }

// TestSharedAgainstAServerLimit: three importers sharing one limit, each
// asking for 200/s, against a server allowing 40/s in all (one account):
// together within 15% of the ideal time, under 5% of requests 429. Alone,
// each would measure only its own accepted answers, and read a third of
// the server's rate.
func TestSharedAgainstAServerLimit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		burst   int
		latency time.Duration
	}{
		{"burst 40, 5 ms", 40, 5 * time.Millisecond},
		{"burst 40, 250 ms", 40, 250 * time.Millisecond},
		{"burst 5, 5 ms", 5, 5 * time.Millisecond},
		{"burst 5, 250 ms", 5, 250 * time.Millisecond},
		{"burst 1, 100 ms", 1, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const rows, serverRate, importers = 1000, 40, 3
				server := rate.NewLimiter(serverRate, tc.burst)
				store := &memShared{accepted: map[int64]int64{}, members: importers}
				var wg sync.WaitGroup
				var requests, throttled [importers]int64
				var stops []func()
				start := time.Now()
				for i := range importers {
					l := New(200, 1)
					stop, err := l.Share(context.Background(), store, nil)
					if err != nil {
						t.Fatal(err)
					}
					stops = append(stops, stop)
					wg.Go(func() {
						requests[i], throttled[i] = drive(l, rows, tc.latency, delivery{}, func() (bool, *revcent.Quota) { return server.Allow(), nil })
					})
				}
				// The shared rate each second: shown when the case fails.
				var timeline []string
				end := make(chan struct{})
				go func() {
					for {
						select {
						case <-end:
							return
						case <-time.After(time.Second):
						}
						store.mu.Lock()
						timeline = append(timeline, fmt.Sprintf("%.1f", store.st.Rate))
						store.mu.Unlock()
					}
				}()
				wg.Wait()
				close(end)
				elapsed := time.Since(start)
				for _, stop := range stops {
					stop()
				}
				var req, thr int64
				for i := range importers {
					req, thr = req+requests[i], thr+throttled[i]
				}
				ideal := time.Duration(importers*rows/serverRate) * time.Second
				share := float64(thr) / float64(req)
				ratio := elapsed.Seconds() / ideal.Seconds()
				t.Logf("3 importers, %d rows each: %v (%.2fx the ideal %v), %d requests, %d answered 429 (%.1f%%), shared rate at the end %.1f/s",
					rows, elapsed.Round(time.Millisecond), ratio, ideal, req, thr, 100*share, store.st.Rate)
				if ratio > 1.15 || share >= 0.05 {
					t.Errorf("%.2fx the ideal, %.1f%% 429s: want within 1.15x and under 5%%; the shared rate each second: %s", ratio, 100*share, strings.Join(timeline, " "))
				}
			})
		})
	}
}

// TestSharedStoreLost: the store fails mid-run. Each importer goes on
// alone at its share of the shared rate, says so once, and still finishes.
func TestSharedStoreLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const importers = 3
		server := rate.NewLimiter(40, 40)
		store := &memShared{accepted: map[int64]int64{}, members: importers}
		var mu sync.Mutex
		var lost []float64
		var wg sync.WaitGroup
		limiters := make([]*Limiter, importers)
		for i := range importers {
			l := New(200, 1)
			if _, err := l.Share(context.Background(), store, func(err error, r float64, n int) {
				if !errors.Is(err, errGone) || n != importers {
					t.Errorf("lost: %v, %d importers; want the store's error and 3", err, n)
				}
				mu.Lock()
				lost = append(lost, r)
				mu.Unlock()
			}); err != nil {
				t.Fatal(err)
			}
			limiters[i] = l
			wg.Go(func() {
				drive(l, 600, 50*time.Millisecond, delivery{}, func() (bool, *revcent.Quota) { return server.Allow(), nil })
			})
		}
		time.Sleep(20 * time.Second)
		store.mu.Lock()
		shared := store.st.Rate
		store.fail = true
		store.mu.Unlock()
		wg.Wait()
		if len(lost) != importers {
			t.Fatalf("lost reported %d times, want once per importer", len(lost))
		}
		for i, r := range lost {
			if math.Abs(r-shared/importers) > 0.01*shared && limiters[i] != nil {
				t.Errorf("went on at %.1f/s, want a third of the shared %.1f/s", r, shared)
			}
		}
		for _, l := range limiters {
			if l.isShared.Load() {
				t.Error("a limiter still shares a store that is gone")
			}
		}
	})
}

// TestShareFollowsTheSharedRate: an importer joining a limit that another
// started at a lower rate takes the shared rate, though its own state and
// the shared one are both at their first generation.
func TestShareFollowsTheSharedRate(t *testing.T) {
	store := &memShared{accepted: map[int64]int64{}, members: 2}
	second := New(200, 1)
	shareAll(t, store, New(50, 1), second)
	if got := second.Limit(); got != 50 {
		t.Errorf("the second importer runs at %.0f/s, want the shared 50/s", got)
	}
}

// TestShareLowerRateLowersTheShared: an importer joining with a lower
// --rate than the shared one lowers it, for the importer already there
// too (at its next sync).
func TestShareLowerRateLowersTheShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memShared{accepted: map[int64]int64{}, members: 2}
		first, second := New(200, 1), New(50, 1)
		shareAll(t, store, first, second)
		time.Sleep(2 * SyncEvery)
		if a, b := first.Limit(), second.Limit(); a != 50 || b != 50 {
			t.Errorf("rates %.0f/s and %.0f/s after a 50/s importer joined a 200/s limit, want both 50/s", a, b)
		}
	})
}

// TestSharedPauseEndsTheAutoBurst: one importer's 429 ends the automatic
// burst of every importer sharing the limit, at their next sync.
func TestSharedPauseEndsTheAutoBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memShared{accepted: map[int64]int64{}, members: 2}
		first, second := New(200, AutoBurst), New(200, AutoBurst)
		shareAll(t, store, first, second)
		if b := second.Burst(); b != 20 {
			t.Fatalf("burst %d before any 429, want 20", b)
		}
		first.Throttled(time.Second, time.Now())
		time.Sleep(2 * SyncEvery)
		if a, b := first.Burst(), second.Burst(); a != 1 || b != 1 {
			t.Errorf("bursts %d and %d after the first importer's 429, want 1 and 1", a, b)
		}
	})
}

// shareAll makes ls share store, in order, until the test ends.
func shareAll(t *testing.T, store Shared, ls ...*Limiter) {
	t.Helper()
	for _, l := range ls {
		stop, err := l.Share(context.Background(), store, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
	}
}
