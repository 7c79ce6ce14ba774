package importer

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
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

// withLedger is an env (its sandbox playing opts) with an input, and the
// config of a run on it with a new ledger (closed when the test ends).
func withLedger(t *testing.T, opts sandbox.Options, content string) (*env, Config, *ledger.SQLite) {
	t.Helper()
	e := newEnv(t, opts)
	store, err := ledger.OpenSQLite(filepath.Join(e.dir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := e.config(e.file("c.csv", content))
	cfg.Target = results.Target{URL: e.srv.URL + "/v2", Key: results.KeyFingerprint(sandbox.DefaultAPIKey)}
	cfg.Ledger = store
	return e, cfg, store
}

// withBrokenRows is n prospects as a CRM export writes them, but for
// rows 3 and 5: an email that is not one, and a row cut short after three
// columns. It returns the other prospects, which are to be created.
func withBrokenRows(t *testing.T, n int) (string, []fake.Prospect) {
	ps := fake.Prospects(n, 7)
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	cw.Write(fake.Header)
	var good []fake.Prospect
	for _, p := range ps {
		rec := p.Record()
		switch p.Index {
		case 3:
			rec[slices.Index(fake.Header, "Email")] = "nobody(at)example.com"
		case 5:
			rec = rec[:3]
		default:
			good = append(good, p)
		}
		cw.Write(rec)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		t.Fatal(err)
	}
	return b.String(), good
}

// TestLedgerFailedRunsUnsentClaims: a run stopped by its ledger (a full
// disk) ends, but leaves its claims, of rows it sent and of rows it only
// read ahead. Its resume settles the ledger from the journal, and takes
// over the claims of rows the journal shows were never sent without
// reconciling them: a search each, and a wait for --settle, for nothing.
// The rows in doubt are reconciled as each sandbox mode answers; the
// broken rows stay invalid, never claimed, and are not read again.
func TestLedgerFailedRunsUnsentClaims(t *testing.T) {
	for _, m := range []struct {
		name string
		opts sandbox.Options
		late time.Duration // how late the stopped run's answers come
	}{
		{"get flat, repeated email created", sandbox.Options{}, 0},
		{"get nested", sandbox.Options{NestedGet: true}, 0},
		{"repeated email returns the customer", sandbox.Options{Duplicate: sandbox.ReturnExisting}, 0},
		{"repeated email refused", sandbox.Options{Duplicate: sandbox.Refuse}, 0},
		{"search lag 2s, get nested", sandbox.Options{SearchLag: 2 * time.Second, NestedGet: true}, 0},
		// The journal flushes before any outcome: the ledger is not
		// asked to record nothing (which the full disk refuses too).
		{"answers after 300ms", sandbox.Options{}, 300 * time.Millisecond},
	} {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			failedRunsUnsentClaims(t, m.opts, m.late)
		})
	}
}

func failedRunsUnsentClaims(t *testing.T, opts sandbox.Options, late time.Duration) {
	const n = 2000
	content, ps := withBrokenRows(t, n)
	e, cfg, store := withLedger(t, opts, content)
	cfg.Settle = opts.SearchLag + 200*time.Millisecond
	cfg.ExistsCode = sandbox.ExistsCode
	cfg.Ledger = fullDisk{store}
	cfg.Limiter = ratelimit.New(1500, 1) // its first settle fails, with rows still to send
	e.setFault(func(http.ResponseWriter, *http.Request, int64) bool { time.Sleep(late); return false })
	sum, err := Run(context.Background(), cfg)
	e.setFault(nil)
	var ae *AbortError
	if !errors.As(err, &ae) || !errors.Is(err, errDiskFull) || sum.Created == 0 || sum.Unsent == 0 || sum.Invalid != 2 {
		t.Fatalf("run on a full disk: %+v, %v; want it stopped by the ledger, some rows created, the 2 broken ones invalid, and some not sent", sum, err)
	}
	if sum.InDoubt != int64(sum.File[results.Pending]) {
		t.Errorf("the summary counts %d rows in doubt, the journal %d pending", sum.InDoubt, sum.File[results.Pending])
	}
	runs, err := store.Runs(context.Background())
	if err != nil || len(runs) != 1 || runs[0].Ended.IsZero() || runs[0].Exit != 3 || runs[0].Claims <= sum.InDoubt {
		t.Fatalf("ledger runs: %+v, %v; want run 1 ended, exit 3, its claims left on more than its %d rows in doubt", runs, err, sum.InDoubt)
	}

	var searches atomic.Int64
	e.setGetFault(func(_ http.ResponseWriter, r *http.Request) bool {
		// A search, or a get: a row's own requests. The listing of
		// customers by date (GET /v2/customers) is a sweep of every row
		// in doubt at once, a page per 100 customers the runs created.
		if r.URL.Path != "/v2/customers" {
			searches.Add(1)
		}
		return false
	})
	cfg.Ledger, cfg.Resume, cfg.Limiter = store, true, ratelimit.New(0, 1)
	sum2, err := Run(context.Background(), cfg)
	if err != nil || sum2.Skipped != sum.Created+2 || sum2.Created != int64(len(ps))-sum.Created || sum2.Invalid != 0 {
		t.Fatalf("resume: %+v %v; want the %d created and the 2 broken rows skipped, the rest created", sum2, err, sum.Created)
	}
	if n := searches.Load(); n > 10*sum.InDoubt+10 {
		t.Errorf("the resume made %d searches and gets for %d rows in doubt: it reconciled rows the stopped run never sent", n, sum.InDoubt)
	}
	checkExactlyOnce(t, e, ps, cfg.Results, false)
	lasts := last(readResults(t, cfg.Results))
	for _, row := range []int{3, 5} {
		if r := lasts[row]; r.Status != results.Invalid || r.Message == "" {
			t.Errorf("broken row %d ends %+v, want invalid and why", row, r)
		}
	}
	runs, err = store.Runs(context.Background())
	if err != nil || len(runs) != 2 || runs[0].Claims != 0 || runs[1].Claims != 0 || runs[1].Created != sum2.Created {
		t.Errorf("ledger runs after the resume: %+v, %v; want no claims left", runs, err)
	}
	if st, err := store.Stats(context.Background()); err != nil || len(st) != 1 || st[0].People != int64(len(ps)) {
		t.Errorf("ledger stats: %+v %v; want the %d people created, not the broken rows", st, err, len(ps))
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
	content, ps := crmCSV(t, 50)
	e, cfg, store := withLedger(t, sandbox.Options{}, content)
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
