// Package importer runs an import: it streams rows from a source, maps and
// validates them, sends the valid ones to RevCent through a worker pool
// behind one shared rate limiter, and records every outcome in the results
// journal, so that a run can be stopped at any moment and resumed without
// creating a customer twice.
package importer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/revcent-import/revcent-import/ledger"
	"github.com/revcent-import/revcent-import/ratelimit"
	"github.com/revcent-import/revcent-import/results"
	"github.com/revcent-import/revcent-import/revcent"
	"github.com/revcent-import/revcent-import/source"
)

// Config is one import run.
type Config struct {
	Input
	Results string // the results file
	// Target is what this run sends to. A results file records its target
	// in run lines; resuming one made against another target is refused.
	Target results.Target
	// About is written in the run line for a person reading the journal:
	// the version, the input, the campaign.
	About       string
	Resume      bool // continue the run recorded in Results
	RetryFailed bool // with Resume: send rows whose last status is failed again
	// Force resumes even when rows differ from those the results file
	// recorded (rows are matched by their number).
	Force bool
	// BreakAfter aborts the run when this many consecutive rows fail with
	// the same error and none succeeds between (0: never).
	BreakAfter int
	// MaxErrors aborts the run after this many failed rows (0: never).
	MaxErrors int

	Client      *revcent.Client
	Limiter     *ratelimit.Limiter
	Concurrency int // workers; at least 1, unless AutoConcurrency
	// AutoConcurrency sizes the worker pool to the rate and the observed
	// latency (Little's law), within 4-512, adjusting every second.
	AutoConcurrency bool
	MaxAttempts     int           // requests per row before it is failed; at least 1
	RetryBase       time.Duration // first backoff step; 250ms when 0
	RetryMax        time.Duration // backoff cap; 30s when 0
	// Settle is how long a row whose request had an unknown outcome is
	// watched before it may be sent again: a create may still finish on
	// the server (after a timeout, a 5xx from a proxy), and a new customer
	// may not be searchable at once. DefaultSettle when 0.
	Settle time.Duration
	// Ledger, when not nil, remembers who was created across runs (see
	// package ledger): a row whose match key the target already has is
	// recorded existing and not sent.
	Ledger ledger.Store
	// MatchKey is the ledger's key: "email" (the default) or
	// "internal_id".
	MatchKey string
	// CreateExisting sends rows the ledger knows anyway (--existing create).
	CreateExisting bool
	// CheckExisting searches RevCent by email before creating each row the
	// ledger does not know, to find customers created outside this tool:
	// one more request a row.
	CheckExisting bool
	// ExistsCode is the error_code with which the account refuses an
	// email it already has, as probe saw it; "" recognises the usual
	// words (see revcent.IsExistingRefusal).
	ExistsCode string
	// GCPercent, when above 0, is the garbage collector's GOGC during the
	// run if the heap is small once the run has started (under 32 MiB):
	// 200 spends a few MiB to collect half as often, about 6% less CPU a
	// row at high rates. A large heap (a long journal) keeps the default.
	GCPercent int
	// MemoryLimit, when above 0, is a soft limit on the Go heap during the
	// run (debug.SetMemoryLimit), raised to twice the live heap whenever
	// that is more: the collector then works harder before the process
	// grows, and never more often than GOGC=100 would. A second's ledger
	// outcomes are garbage by the next second; without it, GCPercent let
	// their peaks take the process past 100 MiB.
	MemoryLimit int64

	Progress Progress     // nil: none
	Log      *slog.Logger // nil: discard
	Now      func() time.Time
}

// ConfigError is a problem found before anything was sent: usage,
// configuration or input. The CLI exits 2.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// AbortError stops a run that has started: a refused key, an unwritable
// results file. The CLI exits 3.
type AbortError struct{ Err error }

func (e *AbortError) Error() string { return e.Err.Error() }
func (e *AbortError) Unwrap() error { return e.Err }

// DefaultSettle is the settle window when none is given: long enough for
// the common proxy and gateway timeouts (API gateways give up at 29-30 s
// while the origin goes on) and many times a search index's usual refresh
// (about 1 s). probe measures an account's search lag.
const DefaultSettle = 30 * time.Second

// ErrInterrupted is returned when ctx was cancelled (SIGINT, SIGTERM): the
// rows in flight were finished and recorded; --resume continues. Exit 4.
var ErrInterrupted = errors.New("interrupted")

// Summary counts a run's outcomes.
type Summary struct {
	Rows      int64 // rows read
	Created   int64
	Existing  int64 // already in RevCent: its own answer, a search, or the ledger said so
	Changed   int64 // of existing: the ledger's last request for the person differs (not updated)
	Duplicate int64
	Invalid   int64
	Failed    int64
	Skipped   int64 // done in an earlier run (--resume)
	Blank     int64 // rows with every cell empty: skipped, not recorded
	// NoRows says the input had no row to import: empty, a header alone,
	// or only blank rows. The run is not OK: a nightly export with no rows
	// is worth a look.
	NoRows     bool
	Reconciled int64   // created rows found by search after an unknown outcome
	InDoubt    int64   // rows whose outcome is still unknown (pending in the journal)
	Unsent     int64   // rows read but not finished when the run stopped
	Requests   int64   // create requests sent
	Retries    int64   // create requests beyond the first per row
	Throttled  int64   // 429 answers
	Retried    int64   // failed rows of earlier runs sent again (--retry-failed)
	FinalRate  float64 // the adapted rate at the end, requests/s; 0 for none
	Workers    int
	Elapsed    time.Duration
	Results    string
	// File is the whole results file after the run: rows by last status,
	// this run's and every earlier one's. nil when it could not be read
	// back (the run then judges by its own counts).
	File   map[results.Status]int
	Target results.Target
	// SharedLimit says how a limit shared with other importers went
	// (--shared-limit), "" without one.
	SharedLimit string
}

// OK reports whether the job is done: every row of the results file
// created, existing or a duplicate (none invalid, failed or in doubt),
// and every row this run read recorded.
func (s Summary) OK() bool {
	if s.Unsent > 0 || s.NoRows {
		return false
	}
	if s.File != nil {
		return s.File[results.Invalid] == 0 && s.File[results.Failed] == 0 && s.File[results.Pending] == 0
	}
	return s.Invalid == 0 && s.Failed == 0 && s.InDoubt == 0
}

// counters are updated by the pipeline and read by progress.
type counters struct {
	rows, created, existing, duplicate, invalid, failed, skipped, reconciled, inDoubt, blank, changed atomic.Int64
	requests, retries                                                                                 atomic.Int64
	unsentClaims                                                                                      atomic.Int64 // a killed run's claims of rows it never sent, taken over
}

// job is a row to send.
type job struct {
	row       int
	line      int
	email     string
	hash      string
	req       revcent.CreateCustomerRequest
	attempts  int           // requests sent for this row so far
	before    int           // of attempts, those sent by earlier runs: --max-attempts counts this run's
	throttled int           // 429 answers so far
	reqHash   string        // the request's hash, recorded on its outcome line
	reqBody   string        // the request without its card, as JSON, for the ledger (requestRecord)
	claim     *ledger.Claim // with a ledger: the reader's claim of the row's key
	inDoubt   bool          // an earlier run sent it and its outcome is not known to be final: reconcile before sending
	unwritten bool          // resumed, and the journal has no line for it: no run on this results file sent it
	// since is when the row's first request was about to leave (its first
	// pending line); zero until then. No customer created before it can be
	// this row's.
	since time.Time
	// last, with inDoubt, is when the journal's last line for the row was
	// written, and why what it said.
	last time.Time
	why  string
}

type msgKind uint8

const (
	mRecord  msgKind = iota // write rec
	mPending                // write rec, then ack once it reached the OS
	mDupOf                  // rec is a duplicate of row dupOf: write it once that row ends
)

type msg struct {
	kind  msgKind
	rec   results.Record
	dupOf int
	ack   chan error
}

// Run imports cfg.Input. It returns the summary and, when the run did not
// finish normally, a *ConfigError, an *AbortError or ErrInterrupted.
// Cancelling ctx stops reading; requests in flight finish and are recorded.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	start := time.Now()
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AutoConcurrency {
		cfg.Concurrency = autoMax
	}
	cfg.Concurrency = max(cfg.Concurrency, 1)
	cfg.MaxAttempts = max(cfg.MaxAttempts, 1)
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 250 * time.Millisecond
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 30 * time.Second
	}
	if cfg.Settle <= 0 {
		cfg.Settle = DefaultSettle
	}
	sum := Summary{Workers: cfg.Concurrency, Results: cfg.Results, Target: cfg.Target}

	src, in, mapper, err := open(cfg.Input, cfg.Log, cfg.Now())
	if errors.Is(err, source.ErrEmpty) {
		cfg.Log.Warn("no rows: " + in.Name + " is empty")
		sum.NoRows, sum.Elapsed = true, time.Since(start)
		return sum, nil
	}
	if err != nil {
		return sum, err
	}
	defer src.Close()

	prep := newPreparer(mapper, in.EstimatedRows)
	if err := checkResultsPath(cfg.Results, cfg.Input.Path); err != nil {
		return sum, &ConfigError{err}
	}
	var w *results.Writer
	var ix *results.Index
	if cfg.Resume {
		// Emails of rows created by earlier runs of this journal count as
		// seen: a later row with one of them is a duplicate.
		w, ix, err = results.Resume(cfg.Results, func(row int, email []byte) { prep.remember(email, row) })
		if errors.Is(err, fs.ErrNotExist) {
			w, err = results.Create(cfg.Results) // --resume on a first run starts one
		}
	} else {
		w, err = results.Create(cfg.Results)
		if errors.Is(err, results.ErrExists) {
			if old, lerr := results.Load(cfg.Results); lerr == nil && old.Target.URL != "" && old.Target != cfg.Target {
				err = fmt.Errorf("%s was made against %s, and this run is against %s: pass --results with a new file name for this one (or move that file away)",
					cfg.Results, old.Target.Describe(), cfg.Target.Describe())
			} else {
				err = fmt.Errorf("%w: add --resume to continue that run (skipping rows already done), or pass --results with a new file name", err)
			}
		}
	}
	if err != nil {
		return sum, &ConfigError{err}
	}
	if ix != nil {
		defer ix.Close()
	}
	if ix != nil && ix.Target.URL != "" && ix.Target != cfg.Target {
		w.Close()
		return sum, &ConfigError{fmt.Errorf("%s belongs to %s, and this run is against %s: resume it against its own target, or pass --results with a new file name for this one",
			cfg.Results, ix.Target.Describe(), cfg.Target.Describe())}
	}
	if err := w.WriteRun(cfg.Target, cfg.About); err != nil {
		w.Close()
		return sum, &AbortError{err}
	}
	var lr *ledgerRun
	if cfg.Ledger != nil {
		lr = &ledgerRun{store: cfg.Ledger, target: cfg.Target.String(), log: cfg.Log, claims: map[int]ledger.Person{}, holding: map[string]bool{}, asks: make(chan claimAsk, 512)}
		abs, _ := filepath.Abs(cfg.Results)
		// The ledger follows the journal at every flush, and a run that
		// ends (even interrupted) flushes the last outcomes; one killed, or
		// aborted, may leave the journal ahead. Only then is the journal
		// read again to settle the ledger.
		last, known, err := cfg.Ledger.LastRun(ctx, abs)
		if err != nil {
			w.Close()
			return sum, &ConfigError{fmt.Errorf("ledger: %w", err)}
		}
		behind := !known || last.Ended.IsZero() || (last.Exit != 0 && last.Exit != 1 && last.Exit != 4)
		// Its claims of rows with no line in the journal are of rows it
		// never sent: killed, or stopped by the ledger itself (a full
		// disk), whose writes, the claims' release among them, failed.
		if ix != nil && known && !cfg.Force {
			lr.resumes = last.ID
		}
		stop := lr.slow("record the run's start")
		lr.id, err = cfg.Ledger.StartRun(ctx, ledger.Run{Target: lr.target, Input: in.Name, Results: abs})
		stop()
		if err != nil {
			w.Close()
			return sum, &ConfigError{fmt.Errorf("ledger: %w", err)}
		}
		// The journal names rows by email only: with --match-key
		// internal_id it cannot settle the ledger (a killed run's rows are
		// then found by reconciliation instead).
		if ix != nil && behind && cfg.MatchKey != "internal_id" {
			if n, err := SettleLedger(ctx, cfg.Ledger, lr.target, cfg.Results, cfg.Input.Campaign, lr.id); err != nil {
				w.Close()
				return sum, &AbortError{fmt.Errorf("ledger: settling it from %s: %w", cfg.Results, err)}
			} else if n > 0 {
				cfg.Log.Info("ledger settled from the results file", "rows", n)
			}
		}
	}
	if ix != nil && ix.Torn {
		cfg.Log.Warn("results file ended in a partial line (the last run was killed mid-write); dropped it", "results", cfg.Results)
	}
	if ix != nil && cfg.RetryFailed {
		cfg.Log.Info("retrying failed rows", "rows", ix.Counts[results.Failed])
		sum.Retried = int64(ix.Counts[results.Failed])
	}

	r := &run{cfg: cfg, src: src, in: in, prep: prep, w: w, ix: ix, ledger: lr,
		inbox: make(chan msg, min(cfg.Concurrency, 64)*4), jobs: make(chan job, min(cfg.Concurrency, 64)*2),
		writerDone: make(chan struct{}), readerDone: make(chan struct{}), counted: make(chan struct{}), closed: make(chan struct{}, 1), firstOut: make(chan struct{})}
	r.firstDone = sync.OnceFunc(func() { close(r.firstOut) })
	r.rc = newReconciler(r)

	r.total.Store(-1)
	if cfg.AutoConcurrency {
		rate := cfg.Limiter.Limit()
		if rate == 0 {
			rate = math.Inf(1)
		}
		r.gate = newGate(firstGuess(rate))
	}
	concurrency := fmt.Sprint(cfg.Concurrency)
	if r.gate != nil {
		concurrency = fmt.Sprintf("auto (%d to start, %d-%d)", r.gate.size(), autoMin, autoMax)
	}
	gcPercent := 0 // the default, or GOGC
	if cfg.GCPercent > 0 && heapInUse() < smallHeap {
		gcPercent = cfg.GCPercent
		defer debug.SetGCPercent(debug.SetGCPercent(cfg.GCPercent))
	}
	if cfg.MemoryLimit > 0 {
		stop := HoldMemoryLimit(cfg.MemoryLimit, 2)
		defer stop()
	}
	rate := "unlimited"
	if l := cfg.Limiter.Limit(); l > 0 {
		rate = fmt.Sprintf("%g/s", l)
	}
	cfg.Log.Info("import started", "target", cfg.Target.Describe(), "campaign", cfg.Input.Campaign, "input", in.Name, "results", cfg.Results,
		"rate", rate, "burst", cfg.Limiter.Burst(), "concurrency", concurrency, "resume", cfg.Resume, "retry_failed", cfg.RetryFailed, "settle", cfg.Settle.String(), "gc_percent", gcPercent, "memory_limit_mib", cfg.MemoryLimit>>20)
	if lr != nil {
		// Claims are served past a signal: a worker claiming once its
		// pending line is written must get its answer.
		serveCtx, stopServe := context.WithCancel(context.WithoutCancel(ctx))
		defer stopServe()
		go lr.serve(serveCtx)
	}
	err = r.run(ctx)
	if cerr := w.Close(); cerr != nil && err == nil {
		err = &AbortError{cerr}
	}
	// The exit code tells the state of the file, not of this run alone.
	// A new file that a run finished holds this run's rows only; a resumed
	// or stopped one is read back (about a second for a million rows).
	if ix == nil && err == nil && ctx.Err() == nil {
		sum.File = map[results.Status]int{}
		for st, n := range map[results.Status]int64{results.Created: r.c.created.Load(), results.Existing: r.c.existing.Load(),
			results.Duplicate: r.c.duplicate.Load(), results.Invalid: r.c.invalid.Load(), results.Failed: r.c.failed.Load(), results.Pending: r.c.inDoubt.Load()} {
			if n > 0 {
				sum.File[st] = int(n)
			}
		}
	} else if whole, lerr := results.Load(cfg.Results); lerr == nil {
		sum.File = whole.Counts
	} else {
		cfg.Log.Warn("could not read the results file back; the summary counts this run only", "results", cfg.Results, "error", lerr)
	}

	sum.Rows = r.c.rows.Load()
	sum.Created, sum.Duplicate, sum.Invalid = r.c.created.Load(), r.c.duplicate.Load(), r.c.invalid.Load()
	sum.Existing, sum.Blank, sum.Changed = r.c.existing.Load(), r.c.blank.Load(), r.c.changed.Load()
	sum.NoRows = sum.Rows == sum.Blank && err == nil && ctx.Err() == nil
	if sum.NoRows {
		cfg.Log.Warn("no rows: " + in.Name + " has a header and no row with a value")
	}
	sum.Failed, sum.Skipped, sum.Reconciled = r.c.failed.Load(), r.c.skipped.Load(), r.c.reconciled.Load()
	sum.InDoubt = r.c.inDoubt.Load()
	sum.Unsent = sum.Rows - sum.Blank - sum.Created - sum.Existing - sum.Duplicate - sum.Invalid - sum.Failed - sum.Skipped - sum.InDoubt
	sum.Requests, sum.Retries, sum.Throttled = r.c.requests.Load(), r.c.retries.Load(), cfg.Limiter.Throttles()
	sum.FinalRate = cfg.Limiter.Limit()
	if r.gate != nil {
		sum.Workers = r.gate.size()
	}
	sum.Elapsed = time.Since(start)
	if err == nil && ctx.Err() != nil {
		err = ErrInterrupted
	}
	if lr != nil {
		lr.wait() // a settle may still be in flight if the writer failed
		if n := r.c.unsentClaims.Load(); n > 0 {
			cfg.Log.Info("ledger: took over the last run's claims of rows it never sent, without reconciling them (the results file has no line for them)", "rows", n)
		}
		// Claims of rows never sent are dropped; those of rows sent and
		// still in doubt stay, for the next run to reconcile.
		if lerr := cfg.Ledger.Release(context.WithoutCancel(ctx), lr.target, lr.id, lr.unsent()); lerr != nil {
			cfg.Log.Warn("ledger: could not release the run's unsent claims", "error", lerr.Error())
		}
		exit := 0
		switch {
		case errors.Is(err, ErrInterrupted):
			exit = 4
		case err != nil:
			exit = 3
		case !sum.OK():
			exit = 1
		}
		if lerr := cfg.Ledger.EndRun(context.WithoutCancel(ctx), ledger.Run{ID: lr.id, Created: sum.Created, Existing: sum.Existing, Changed: sum.Changed,
			Invalid: sum.Invalid, Failed: sum.Failed, InDoubt: sum.InDoubt, Exit: exit}); lerr != nil {
			cfg.Log.Warn("ledger: could not record the run's end", "error", lerr.Error())
		}
	}
	end := []any{"created", sum.Created, "existing", sum.Existing, "duplicate", sum.Duplicate, "invalid", sum.Invalid,
		"failed", sum.Failed, "skipped", sum.Skipped, "in_doubt", sum.InDoubt, "elapsed", sum.Elapsed.Round(time.Millisecond).String(),
		"workers_at_end", sum.Workers}
	// Why it stopped is the summary's to say, once.
	cfg.Log.Info("import finished", end...)
	return sum, err
}

type run struct {
	cfg  Config
	src  source.Reader
	in   source.Input
	prep *preparer
	w    *results.Writer
	ix   *results.Index
	c    counters

	inbox      chan msg
	jobs       chan job
	writerDone chan struct{}
	total      atomic.Int64 // rows in the input, once counted; -1 until then or when unknown
	gate       *gate        // with AutoConcurrency: how many workers may send at once
	lat        latencies

	rc     *reconciler
	ledger *ledgerRun // nil without a ledger
	// toClaim are the reader's jobs waiting for their batch's claim, held
	// those whose keys another live run holds (see flushClaims).
	toClaim []job
	held    []job        // the claimer's
	claimQ  chan<- []job // the reader's batches to claim
	readAll bool         // the reader reached the input's end
	// pending maps the emails of rows the journal left in doubt to their
	// rows, for --force (read once, when a changed row first needs it).
	pending     map[string]int
	pendingOnce sync.Once
	// opened says the first create request is out and was not refused
	// at once (see firstRequest); until then firstMu lets one worker at
	// a time send. answered says an answer came that did not show the
	// base URL wrong; halt says one did, or that the key is refused: no
	// other row is sent.
	opened, answered, halt atomic.Bool
	firstMu                sync.Mutex
	// firstOut closes (through firstDone) once the first job a worker
	// took has been written to the server, or has ended without a
	// request. The reader waits for it after its first batch (see read).
	firstOut  chan struct{}
	firstDone func()
	// open counts the rows handed to the workers that have no final line
	// yet, set-aside rows included; the reconciler ends the run's sending
	// when the reader is done and it is 0.
	open        atomic.Int64
	closed      chan struct{} // poked (never blocking) when open falls to 0; see closeOpen
	reconciling atomic.Int64  // rows set aside now, for progress
	readerDone  chan struct{}
	counted     chan struct{} // closed when the side count of rows (for progress) is done
}

// checkResultsPath refuses a results path that is the input itself, or a
// symbolic link: --resume appends to it and may cut a torn last line, so
// it must be the journal itself, never what a link points at.
func checkResultsPath(path, input string) error {
	st, err := os.Lstat(path)
	if err != nil {
		return nil // not there yet: it will be created
	}
	if st.Mode()&os.ModeSymlink != 0 {
		target, _ := filepath.EvalSymlinks(path)
		return fmt.Errorf("--results %s is a symbolic link (to %s): pass the file itself", path, target)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("--results %s is not a regular file", path)
	}
	if input != "" && input != "-" {
		if in, err := os.Stat(input); err == nil && os.SameFile(st, in) {
			return fmt.Errorf("--results %s is the input file itself: pass another name (the default is INPUT.results.csv)", path)
		}
	}
	return nil
}

// HoldMemoryLimit sets the soft memory limit to base, or the live heap
// times growth when that is more (2 for an import: the collector then
// runs no more often than GOGC=100 would), checking four times a second,
// until the returned function restores the limit it found.
func HoldMemoryLimit(base int64, growth float64) (restore func()) {
	prev := debug.SetMemoryLimit(-1)
	set := func() {
		limit := base
		if live := heapInUse(); live != math.MaxUint64 {
			limit = max(limit, int64(float64(live)*growth))
		}
		debug.SetMemoryLimit(limit)
	}
	set()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				set()
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		debug.SetMemoryLimit(prev)
	}
}

// smallHeap is the live heap, once the journal is loaded and the
// duplicate index sized, under which Config.GCPercent applies.
const smallHeap = 32 << 20

// heapInUse returns the live heap as of the last collection (garbage not
// yet collected does not count; a heap past 4 MiB has been collected).
func heapInUse() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return math.MaxUint64
	}
	return s[0].Value.Uint64()
}
