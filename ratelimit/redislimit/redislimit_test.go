package redislimit

import (
	"context"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revcent-import/revcent-import/internal/redistest"
	"github.com/revcent-import/revcent-import/ratelimit"
)

func open(t *testing.T, u string) *Store {
	t.Helper()
	s, err := Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenRefusesBadURLs(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"http://127.0.0.1:6379/x", "want redis://HOST:PORT/NAME"},
		{"redis://127.0.0.1:6379", "name the limit"},
		{"redis://127.0.0.1:6379/a/b", "name the limit"},
		{"redis://127.0.0.1:6379/x?db=two", "want a database number"},
		{"redis://127.0.0.1:1/x", "refused the connection"},
	} {
		_, err := Open(context.Background(), tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.url, err, tc.want)
		}
	}
	_, err := Open(context.Background(), "redis://:secret@127.0.0.1:1/x")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("an error shows the password: %v", err)
	}
}

// TestTakeHoldsTheRateAcrossImporters: three stores (three importers) on
// one name, eight workers each, take tokens at 50/s for 2 s: together
// they get 50/s plus the burst, not three times it.
func TestTakeHoldsTheRateAcrossImporters(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	for range 3 {
		s := open(t, srv.URL("take"))
		for range 8 {
			wg.Go(func() {
				for s.Take(ctx, 50, 5) == nil {
					n.Add(1)
				}
			})
		}
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	want := 50*secs + 5
	t.Logf("%d tokens in %.2f s at 50/s, burst 5 (want about %.0f)", n.Load(), secs, want)
	if got := float64(n.Load()); got > want+2 || got < 0.9*want {
		t.Errorf("%d tokens, want %.0f (+2 for timing at the edges, -10%%)", n.Load(), want)
	}
}

// TestUpdateIsAtomic: three importers each change the shared state 100
// times at once; no change is lost (WATCH/MULTI retries the losers).
func TestUpdateIsAtomic(t *testing.T) {
	srv := redistest.Start(t)
	var wg sync.WaitGroup
	for range 3 {
		s := open(t, srv.URL("atomic"))
		wg.Go(func() {
			for range 100 {
				if _, err := s.Update(context.Background(), 0, 1, func(st *ratelimit.State, _ int64) bool {
					st.Cuts++
					return true
				}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	s := open(t, srv.URL("atomic"))
	st, importers, err := s.Sync(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Cuts != 300 {
		t.Errorf("%d changes stored, want 300", st.Cuts)
	}
	var accepted int64
	if _, err := s.Update(context.Background(), 0, 0, func(_ *ratelimit.State, a int64) bool { accepted = a; return false }); err != nil {
		t.Fatal(err)
	}
	if accepted != 300 {
		t.Errorf("window 0 counts %d accepted, want 300", accepted)
	}
	if importers != 1 {
		t.Errorf("%d importers present, want 1 (only this one synced)", importers)
	}
}

// TestStateRoundTrip: a rate of none is stored (JSON has no infinity) and
// read back as none.
func TestStateRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL("inf"))
	at := time.Now().Round(time.Millisecond)
	if _, err := s.Update(context.Background(), 0, 0, func(st *ratelimit.State, _ int64) bool {
		*st = ratelimit.State{Rate: math.Inf(1), Changed: at, Every: time.Second, Step: 1.05}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	st, _, err := s.Sync(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsInf(st.Rate, 1) || !st.Changed.Equal(at) || st.Every != time.Second || st.Step != 1.05 {
		t.Errorf("read back %+v", st)
	}
}

// TestLimiterSharesAndLosesRedis: two limiters share a limit; one's 429
// lowers the rate of both; Redis is then killed, and each goes on alone at
// half the shared rate, saying so once.
func TestLimiterSharesAndLosesRedis(t *testing.T) {
	srv := redistest.Start(t)
	var mu sync.Mutex
	var lost []string
	var limiters []*ratelimit.Limiter
	for range 2 {
		l := ratelimit.New(100, 1)
		stop, err := l.Share(context.Background(), open(t, srv.URL("lose")), func(err error, r float64, n int) {
			mu.Lock()
			defer mu.Unlock()
			lost = append(lost, Describe(err))
			if math.Abs(r-l.Limit()) > 1e-9 || n != 2 {
				t.Errorf("lost: went on at %.1f/s (the limiter says %.1f/s) of %d importers, want 2", r, l.Limit(), n)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		limiters = append(limiters, l)
	}
	// Answers accepted by both, then a 429 at the first: the cut reads
	// what both were answered.
	for range 20 {
		for _, l := range limiters {
			if err := l.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			l.AcceptedFor(time.Time{})
		}
	}
	time.Sleep(3 * ratelimit.SyncEvery) // the counts reach Redis
	limiters[0].Throttled(0, time.Now())
	time.Sleep(3 * ratelimit.SyncEvery)
	r0, r1 := limiters[0].Limit(), limiters[1].Limit()
	if r0 >= 100 || math.Abs(r0-r1) > 1e-9 {
		t.Fatalf("after one importer's 429: rates %.1f/s and %.1f/s, want both cut alike", r0, r1)
	}
	srv.Stop()
	for _, l := range limiters {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := l.Wait(ctx)
		cancel()
		if err != nil {
			t.Fatalf("with Redis gone, Wait: %v; want the limiter to go on alone", err)
		}
	}
	time.Sleep(3 * ratelimit.SyncEvery)
	mu.Lock()
	defer mu.Unlock()
	if len(lost) != 2 {
		t.Fatalf("lost reported %d times (%v), want once per limiter", len(lost), lost)
	}
	for _, why := range lost {
		if !strings.Contains(why, "refused") && !strings.Contains(why, "closed") {
			t.Errorf("lost because Redis %q: want it refused or closed the connection", why)
		}
	}
	for _, l := range limiters {
		if got := l.Limit(); math.Abs(got-r0/2) > 1e-9 {
			t.Errorf("alone at %.2f/s, want half the shared %.2f/s", got, r0)
		}
	}
}

// TestTheLearnedRateOutlivesTheRun: an importer that found the server's
// rate leaves; the next importer on the same name, the next night, starts
// at that rate, not at its --rate.
func TestTheLearnedRateOutlivesTheRun(t *testing.T) {
	srv := redistest.Start(t)
	first := ratelimit.New(200, 1)
	stop, err := first.Share(context.Background(), open(t, srv.URL("nightly")), nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 30 {
		first.Wait(context.Background())
		first.AcceptedFor(time.Time{})
	}
	time.Sleep(2 * ratelimit.SyncEvery)
	first.Throttled(0, time.Now())
	learned := first.Limit()
	stop()
	if learned >= 200 {
		t.Fatalf("the 429 did not cut the rate: %.1f/s", learned)
	}
	next := ratelimit.New(200, 1)
	stop, err = next.Share(context.Background(), open(t, srv.URL("nightly")), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if got := next.Limit(); got != learned {
		t.Errorf("the next run starts at %.1f/s, want the learned %.1f/s", got, learned)
	}
}
