package ledger

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// claim is ClaimMany for one key.
func claim(s *SQLite, target, key string, run int64) (Claim, error) {
	cs, err := s.ClaimMany(context.Background(), target, []string{key}, run)
	if err != nil {
		return Claim{}, err
	}
	return cs[0], nil
}

func TestClaimCompleteKnown(t *testing.T) {
	ctx := context.Background()
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "state", "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, _ := s.StartRun(ctx, Run{Target: "T", Input: "a.csv", Results: "a.results.csv"})
	b, _ := s.StartRun(ctx, Run{Target: "T", Input: "b.csv", Results: "b.results.csv"})
	c, err := claim(s, "T", "email:ada@example.com", a)
	if err != nil || !c.Claimed {
		t.Fatalf("first claim: %+v %v", c, err)
	}
	if c, _ := claim(s, "T", "email:ada@example.com", b); c.HeldBy != a || c.Claimed {
		t.Errorf("second run's claim while the first holds it: %+v", c)
	}
	if c, _ := claim(s, "U", "email:ada@example.com", b); !c.Claimed {
		t.Errorf("another target is another person: %+v", c)
	}
	if err := s.Settle(ctx, a, []Person{{Target: "T", Key: "email:ada@example.com", CustomerID: "C1", Status: "created", RequestHash: "h1"}}, nil); err != nil {
		t.Fatal(err)
	}
	c, _ = claim(s, "T", "email:ada@example.com", b)
	if c.Known == nil || c.Known.CustomerID != "C1" || c.Known.FirstRun != a {
		t.Errorf("after complete: %+v", c)
	}
	// Released keys are free again.
	claim(s, "T", "email:bob@example.com", a)
	s.Settle(ctx, a, nil, []Person{{Target: "T", Key: "email:bob@example.com"}})
	if c, _ := claim(s, "T", "email:bob@example.com", b); !c.Claimed || c.Stale {
		t.Errorf("after release: %+v", c)
	}
	// A claim by a run whose process is gone is stale: taken over, to be
	// reconciled.
	dead, _ := s.StartRun(ctx, Run{Target: "T", PID: 1 << 22})
	claim(s, "T", "email:cy@example.com", dead)
	if c, _ := claim(s, "T", "email:cy@example.com", a); !c.Claimed || !c.Stale {
		t.Errorf("claim of a dead run: %+v", c)
	}
	if n, _ := s.Forget(ctx, "email:ada@example.com"); n != 2 { // on T and U
		t.Errorf("forget: %d", n)
	}
}

// TestClaimsRace: many goroutines, each with its own run, claim the same
// keys; each key is claimed once.
func TestClaimsRace(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	var wins atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		s, err := OpenSQLite(path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		run, _ := s.StartRun(ctx, Run{Target: "T"})
		wg.Go(func() {
			for k := 0; k < 50; k++ {
				c, err := claim(s, "T", "email:p"+string(rune('a'+k%26))+string(rune('a'+k/26)), run)
				if err != nil {
					t.Error(err)
					return
				}
				if c.Claimed {
					wins.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if wins.Load() != 50 {
		t.Errorf("%d claims won for 50 keys", wins.Load())
	}
}
