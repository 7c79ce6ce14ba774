package ledger

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/revcent-import/revcent-import/internal/pgtest"
)

// TestPostgresClaims: the Postgres ledger has the SQLite one's semantics
// (claim, known, release, stale claims, requests), and many runs claiming
// the same keys at once, each on its own connection pool as importers on
// several machines would, claim each key once.
func TestPostgresClaims(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	s, err := OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, err := s.StartRun(ctx, Run{Target: "T", Input: "a.csv", Results: "a.results.csv"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.StartRun(ctx, Run{Target: "T", Input: "b.csv", Results: "b.results.csv"})
	if c, err := claim(s, "T", "email:ada@example.com", a); err != nil || !c.Claimed {
		t.Fatalf("first claim: %+v %v", c, err)
	}
	if c, _ := claim(s, "T", "email:ada@example.com", b); c.HeldBy != a {
		t.Errorf("second run's claim while the first holds it: %+v", c)
	}
	if err := s.Settle(ctx, a, []Person{{Target: "T", Key: "email:ada@example.com", CustomerID: "C1", Status: "created", RequestHash: "h1", Request: `{"phone":"1"}`}}, nil); err != nil {
		t.Fatal(err)
	}
	if c, _ := claim(s, "T", "email:ada@example.com", b); c.Known == nil || c.Known.CustomerID != "C1" || c.Known.FirstRun != a {
		t.Errorf("after settle: %+v", c)
	}
	dead, _ := s.StartRun(ctx, Run{Target: "T", PID: 1 << 22})
	claim(s, "T", "email:cy@example.com", dead)
	if c, _ := claim(s, "T", "email:cy@example.com", a); !c.Claimed || !c.Stale {
		t.Errorf("claim of a dead run: %+v", c)
	}
	s.NoteChanged(ctx, b, []Person{{Target: "T", Key: "email:ada@example.com", Request: `{"phone":"2"}`}})
	if ch, err := s.Changed(ctx, "T"); err != nil || len(ch) != 1 || ch[0].Request != `{"phone":"1"}` || ch[0].ChangedRequest != `{"phone":"2"}` {
		t.Errorf("changed: %+v %v", ch, err)
	}
	if st, err := s.Stats(ctx); err != nil || len(st) != 1 || st[0].People != 1 {
		t.Errorf("stats: %+v %v", st, err)
	}
	if n, err := s.Forget(ctx, "email:ada@example.com"); err != nil || n != 1 {
		t.Errorf("forget: %d %v", n, err)
	}

	// Eight stores (eight importers' pools), each with its own run.
	var wins atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		st, err := OpenPostgres(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		run, _ := st.StartRun(ctx, Run{Target: "R"})
		wg.Go(func() {
			for k := range 100 {
				keys := []string{"email:p" + string(rune('a'+k%26)) + string(rune('a'+k/26)) + "@example.com"}
				cs, err := st.ClaimMany(ctx, "R", keys, run, false)
				if err != nil {
					t.Error(err)
					return
				}
				if cs[0].Claimed {
					wins.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if wins.Load() != 100 {
		t.Errorf("%d claims won for 100 keys", wins.Load())
	}
}
