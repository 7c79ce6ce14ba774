package importer

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revcent-import/revcent-import/internal/fake"
	"github.com/revcent-import/revcent-import/ledger"
	"github.com/revcent-import/revcent-import/ratelimit"
	"github.com/revcent-import/revcent-import/results"
	"github.com/revcent-import/revcent-import/revcent/sandbox"
)

// fullDisk is a ledger on a disk that filled up: whatever writes people
// or drops claims fails, so the claims a run made stay behind it.
type fullDisk struct{ ledger.Store }

var errDiskFull = errors.New("the disk is full")

func (fullDisk) Settle(context.Context, int64, []ledger.Person, []ledger.Person) error {
	return errDiskFull
}

func (fullDisk) Release(context.Context, string, int64, []string) error { return errDiskFull }

// withLedger is an env with an input of n prospects, and the config of
// a run on it with a new ledger (closed when the test ends).
func withLedger(t *testing.T, n int) (*env, []fake.Prospect, Config, *ledger.SQLite) {
	t.Helper()
	e := newEnv(t, sandbox.Options{})
	content, ps := crmCSV(t, n)
	store, err := ledger.OpenSQLite(filepath.Join(e.dir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := e.config(e.file("c.csv", content))
	cfg.Target = results.Target{URL: e.srv.URL + "/v2", Key: results.KeyFingerprint(sandbox.DefaultAPIKey)}
	cfg.Ledger = store
	return e, ps, cfg, store
}

// TestLedgerFailedRunsUnsentClaims: a run stopped by its ledger (a full
// disk) ends, but leaves its claims, of rows it sent and of rows it only
// read ahead. Its resume settles the ledger from the journal, and takes
// over the claims of rows the journal shows were never sent without
// reconciling them: a search each, and a wait for --settle, for nothing.
func TestLedgerFailedRunsUnsentClaims(t *testing.T) {
	e, ps, cfg, store := withLedger(t, 3000)
	cfg.Ledger = fullDisk{store}
	cfg.Limiter = ratelimit.New(1500, 1) // its first settle fails, with rows still to send
	sum, err := Run(context.Background(), cfg)
	var ae *AbortError
	if !errors.As(err, &ae) || !errors.Is(err, errDiskFull) || sum.Created == 0 || sum.Unsent == 0 {
		t.Fatalf("run on a full disk: %+v, %v; want it stopped by the ledger, some rows created and some not sent", sum, err)
	}
	runs, err := store.Runs(context.Background())
	if err != nil || len(runs) != 1 || runs[0].Ended.IsZero() || runs[0].Exit != 3 || runs[0].Claims <= sum.InDoubt {
		t.Fatalf("ledger runs: %+v, %v; want run 1 ended, exit 3, its claims left on more than its %d rows in doubt", runs, err, sum.InDoubt)
	}

	var searches atomic.Int64
	e.setGetFault(func(http.ResponseWriter, *http.Request) bool { searches.Add(1); return false })
	cfg.Ledger, cfg.Resume, cfg.Limiter = store, true, ratelimit.New(0, 1)
	sum2, err := Run(context.Background(), cfg)
	if err != nil || sum2.Skipped != sum.Created || sum2.Created != 3000-sum.Created {
		t.Fatalf("resume: %+v %v", sum2, err)
	}
	if n := searches.Load(); n > 10*sum.InDoubt+10 {
		t.Errorf("the resume made %d searches and gets for %d rows in doubt: it reconciled rows the stopped run never sent", n, sum.InDoubt)
	}
	checkExactlyOnce(t, e, ps, cfg.Results, false)
	runs, err = store.Runs(context.Background())
	if err != nil || len(runs) != 2 || runs[0].Claims != 0 || runs[1].Claims != 0 || runs[1].Created != sum2.Created {
		t.Errorf("ledger runs after the resume: %+v, %v; want no claims left", runs, err)
	}
}

// slowClaims is a ledger whose first claim waits, as for another
// process's lock.
type slowClaims struct {
	ledger.Store
	once sync.Once
}

func (s *slowClaims) ClaimMany(ctx context.Context, target string, keys []string, run int64, known bool) ([]ledger.Claim, error) {
	s.once.Do(func() { time.Sleep(ledgerSlow + 500*time.Millisecond) })
	return s.Store.ClaimMany(ctx, target, keys, run, known)
}

// TestLedgerWaitIsSaid: a claim the ledger keeps waiting past 2 s is said
// in the log, then the run goes on.
func TestLedgerWaitIsSaid(t *testing.T) {
	e, ps, cfg, store := withLedger(t, 50)
	cfg.Ledger = &slowClaims{Store: store}
	var logs bytes.Buffer
	cfg.Log = slog.New(slog.NewTextHandler(&logs, nil))
	sum, err := Run(context.Background(), cfg)
	if err != nil || sum.Created != 50 {
		t.Fatalf("%+v %v", sum, err)
	}
	checkExactlyOnce(t, e, ps, cfg.Results, false)
	if !strings.Contains(logs.String(), "ledger: waiting to claim rows: it has not answered for 2 s (another process may hold it locked)") {
		t.Errorf("the wait was not said:\n%s", logs.String())
	}
}
