package importer

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/revcent-import/revcent-import/ledger"
	"github.com/revcent-import/revcent-import/results"
	"github.com/revcent-import/revcent-import/revcent"
)

// ledgerRun is the ledger's side of a run: the claims this run holds, and
// the outcomes to record at the next journal flush (the journal is
// written first: it is the truth of a run).
type ledgerRun struct {
	store  ledger.Store
	target string
	id     int64
	log    *slog.Logger
	// resumes is the run this one resumes: the last to write this
	// results file, which is read back (not under --force). Its claims
	// of rows with no line in the journal were never sent.
	resumes int64

	mu      sync.Mutex
	settled time.Time             // the last flush
	claims  map[int]ledger.Person // row -> its key, hash and campaign
	// holding is every key this run holds a claim on and has not
	// settled: what its end releases, but for the rows in doubt.
	holding map[string]bool
	done    []ledger.Person
	spare   []ledger.Person // a settled batch's done, emptied, for the next
	release []ledger.Person
	changed []ledger.Person // known people whose request changed: for report --changed-csv
	// checkpointed is when the last settle checkpointed the store, and
	// tail says every row has been read and claimed: the run waits for
	// its last answers (see take).
	checkpointed time.Time
	tail         atomic.Bool

	// asks gathers the workers' claims: one transaction serves every
	// claim waiting when it starts (a commit per row would bound a run
	// at a few thousand rows a second).
	asks chan claimAsk

	// The settle in flight beside the writer (at most one; see flush),
	// and the error of one that failed.
	settling sync.WaitGroup
	busy     atomic.Bool
	errMu    sync.Mutex
	err      error
}

type claimAsk struct {
	key   string
	known bool // claim a known key too (--existing create)
	reply chan claimAnswer
}

type claimAnswer struct {
	c   ledger.Claim
	err error
}

// serve answers claims until ctx ends, a batch at a time.
func (lr *ledgerRun) serve(ctx context.Context) {
	var batch []claimAsk
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-lr.asks:
			batch = append(batch[:0], a)
		}
	more:
		for len(batch) < 512 {
			select {
			case a := <-lr.asks:
				batch = append(batch, a)
			default:
				break more
			}
		}
		keys := make([]string, len(batch))
		for i, a := range batch {
			keys[i] = a.key
		}
		cs, err := lr.claimMany(ctx, keys, batch[0].known)
		for i, a := range batch {
			if err != nil {
				a.reply <- claimAnswer{err: err}
			} else {
				a.reply <- claimAnswer{c: cs[i]}
			}
		}
	}
}

// hold records that the run holds key's claim.
func (lr *ledgerRun) hold(key string) {
	lr.mu.Lock()
	lr.holding[key] = true
	lr.mu.Unlock()
}

// unsent returns the keys the run holds but for those of rows sent and in
// doubt (the next run reconciles them): the claims its end releases.
func (lr *ledgerRun) unsent() []string {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	keep := map[string]bool{}
	for _, p := range lr.claims {
		keep[p.Key] = true
	}
	var out []string
	for k := range lr.holding {
		if !keep[k] {
			out = append(out, k)
		}
	}
	return out
}

// claimOne asks the batcher for one claim.
func (lr *ledgerRun) claimOne(ctx context.Context, key string, known bool) (ledger.Claim, error) {
	reply := make(chan claimAnswer, 1)
	select {
	case lr.asks <- claimAsk{key, known, reply}:
	case <-ctx.Done():
		return ledger.Claim{}, ctx.Err()
	}
	select {
	case a := <-reply:
		return a.c, a.err
	case <-ctx.Done():
		return ledger.Claim{}, ctx.Err()
	}
}

// matchKey is a row's identity in the ledger: its normalised email, or
// its internal id when --match-key internal_id.
func matchKey(by string, req *revcent.CreateCustomerRequest) string {
	if by == "internal_id" {
		if req.InternalCustomerID == "" {
			return ""
		}
		return "internal_id:" + req.InternalCustomerID
	}
	if req.Customer.Email == "" {
		return ""
	}
	return "email:" + req.Customer.Email
}

// requestHash is a hash of the mapped request without its card: what a
// person's data was when it was last sent.
func requestHash(req revcent.CreateCustomerRequest) string {
	h, _ := requestRecord(req)
	return h
}

// requestRecord is the hash and the JSON of the mapped request without
// its card: what the ledger keeps of a request sent, or found changed.
func requestRecord(req revcent.CreateCustomerRequest) (hash, body string) {
	req.Payment = nil
	b, _ := json.Marshal(req)
	return strconv.FormatUint(xxhash.Sum64(b), 16), string(b)
}

// claim takes the row's key in the ledger before its request. It returns
// a record to write instead of sending (the person is known), or whether
// the row must be reconciled first (a dead run held the key).
func (r *run) claim(ctx context.Context, j *job, rec results.Record) (known *results.Record, stale bool, since time.Time, err error) {
	lr := r.ledger
	key := matchKey(r.cfg.MatchKey, &j.req)
	if lr == nil || key == "" {
		return nil, false, time.Time{}, nil
	}
	hash, body := j.reqHash, j.reqBody
	if body == "" {
		hash, body = requestRecord(j.req)
	}
	for {
		var c ledger.Claim
		if j.claim != nil {
			c, j.claim = *j.claim, nil // as the reader's batch claimed it
		} else {
			var err error
			if c, err = lr.claimOne(ctx, key, r.cfg.CreateExisting); err != nil {
				return nil, false, time.Time{}, fmt.Errorf("ledger: %w", err)
			}
			if c.Claimed {
				lr.hold(key)
			}
		}
		switch {
		case c.Known != nil && !r.cfg.CreateExisting:
			k := rec
			k.Status, k.CustomerID, k.RequestHash = results.Existing, c.Known.CustomerID, c.Known.RequestHash
			k.Message = fmt.Sprintf("in the ledger: %s on %s (run %d); not sent", c.Known.Status, c.Known.FirstAt.UTC().Format(time.DateOnly), c.Known.FirstRun)
			if c.Known.RequestHash != "" && c.Known.RequestHash != hash {
				k.ErrorCode = ChangedCode
				k.Message = fmt.Sprintf("changed since %s: not updated (in the ledger: %s by run %d)", c.Known.LastAt.UTC().Format(time.DateOnly), c.Known.Status, c.Known.LastRun)
				lr.mu.Lock()
				lr.changed = append(lr.changed, ledger.Person{Target: lr.target, Key: key, Request: body})
				lr.mu.Unlock()
			}
			return &k, false, time.Time{}, nil
		case c.Known != nil:
			// --existing create: sent anyway, under a claim (the ledger
			// took it, since the run asked for known keys too); its
			// outcome updates the ledger's last run and request hash.
		case c.HeldBy != 0:
			// Another importer is sending this person now: wait for its
			// outcome.
			select {
			case <-ctx.Done():
				return nil, false, time.Time{}, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		lr.mu.Lock()
		lr.claims[j.row] = ledger.Person{Target: lr.target, Key: key, RequestHash: hash, Campaign: j.req.Campaign, Request: body}
		lr.mu.Unlock()
		if c.Stale && j.unwritten && c.StaleRun != 0 && c.StaleRun == lr.resumes {
			// The run that died (or stopped) holding it wrote to this
			// journal, and wrote no pending line for this row: it never
			// sent it (a request leaves only once its pending line
			// reached the OS). It had claimed it ahead of sending, with
			// the rest of its batch.
			r.c.unsentClaims.Add(1)
			return nil, false, time.Time{}, nil
		}
		return nil, c.Stale, c.StaleSince, nil
	}
}

// ChangedCode is the error_code of an existing row whose mapped request
// differs from the one the ledger recorded: RevCent's create does not
// update a customer, so the change is reported, not sent.
const ChangedCode = "changed"

// outcome queues a row's final line for the ledger (called by the writer
// after the line is written).
func (lr *ledgerRun) outcome(rec *results.Record) {
	if lr == nil {
		return
	}
	lr.mu.Lock()
	defer lr.mu.Unlock()
	p, ok := lr.claims[rec.Row]
	if !ok {
		return
	}
	switch rec.Status {
	case results.Created, results.Existing:
		p.CustomerID, p.Status = rec.CustomerID, string(rec.Status)
		lr.done = append(lr.done, p)
	case results.Failed:
		lr.release = append(lr.release, p)
	default:
		return // pending: the claim stays, for the next run to reconcile
	}
	delete(lr.claims, rec.Row)
	delete(lr.holding, p.Key)
}

// ledgerSlow is how long a ledger call may take before the run says it
// waits for it: a transaction takes milliseconds, unless another process
// holds the ledger's lock (SQLite waits for it up to 10 s).
const ledgerSlow = 2 * time.Second

// WatchLedger logs, once a ledger call to do what has taken ledgerSlow,
// that the run waits for it; the returned func ends the watch. The
// ledger's opening (by the command) and the run's calls share it.
func WatchLedger(log *slog.Logger, what string) (stop func() bool) {
	return time.AfterFunc(ledgerSlow, func() {
		log.Warn("ledger: waiting to " + what + ": it has not answered for 2 s (another process may hold it locked)")
	}).Stop
}

// slow is WatchLedger on the run's log.
func (lr *ledgerRun) slow(what string) func() bool { return WatchLedger(lr.log, what) }

// claimMany claims keys for the run (ledger.Store.ClaimMany), saying so
// if the ledger keeps it waiting.
func (lr *ledgerRun) claimMany(ctx context.Context, keys []string, known bool) ([]ledger.Claim, error) {
	defer lr.slow("claim rows")()
	return lr.store.ClaimMany(ctx, lr.target, keys, lr.id, known)
}

// settleEvery is how often the ledger records outcomes (the journal
// flushes every 100 ms). A person's page of the ledger is written once per
// transaction however many people on it changed, and people arrive in
// no order: a second's outcomes in one transaction wrote a tenth of the
// pages a transaction per journal flush did. The ledger lags the journal
// by as much; after a kill, the next run settles it from the journal.
const settleEvery = time.Second

// settleMax is the most outcomes a flush waits for, however soon: each
// is held in memory until then, with its request. At --rate 0 a second
// held 15,000-25,000 (6 MiB of live heap, which the collector paid for
// again and again under the soft memory limit); 4,096 at a time took 7%
// less time for 100,000 rows, and 8 MiB less at the peak.
const settleMax = 4096

// flush hands the queued outcomes to the ledger, in one transaction, when
// a second has passed since the last or settleMax are waiting; or, when
// final, waits for the one in flight and records the rest. The writer
// calls it after flushing the journal, so that what it records is in the
// journal already.
//
// A settle runs beside the writer, at most one at a time: on the writer,
// each stopped every worker for its length (they wait for their pending
// lines), and the ledger's transaction is most of a second's work at
// --rate 0. Its error is returned by the next flush.
func (lr *ledgerRun) flush(ctx context.Context, final bool) error {
	if lr == nil {
		return nil
	}
	if final {
		lr.wait()
		if err := lr.failed(); err != nil {
			return err
		}
		if b := lr.take(true); b != nil {
			return lr.settle(ctx, b)
		}
		return nil
	}
	if lr.busy.Load() {
		lr.mu.Lock()
		behind := len(lr.done) >= settleBehind
		lr.mu.Unlock()
		if !behind {
			return nil // the next flush after it records these
		}
		lr.wait() // outcomes arrive faster than they are recorded: hold the writer
	}
	if err := lr.failed(); err != nil {
		return err
	}
	b := lr.take(false)
	if b == nil {
		return nil
	}
	lr.busy.Store(true)
	lr.settling.Go(func() {
		defer lr.busy.Store(false)
		if err := lr.settle(ctx, b); err != nil {
			// The only one: the next flush returns it and starts none.
			lr.errMu.Lock()
			lr.err = err
			lr.errMu.Unlock()
			return
		}
		// Its array holds the next batch: at --rate 0, growing a new
		// one a batch was a fifth of what the ledger allocated.
		clear(b.done)
		lr.mu.Lock()
		lr.spare = b.done[:0]
		lr.mu.Unlock()
	})
	return nil
}

// settleBehind is how many outcomes may wait while a settle is in flight
// before the writer waits for it: memory stays bounded.
const settleBehind = 4 * settleMax

// wait waits for the settle in flight, if any.
func (lr *ledgerRun) wait() {
	if lr != nil {
		lr.settling.Wait()
	}
}

// failed is the error of an earlier settle, if one failed.
func (lr *ledgerRun) failed() error {
	lr.errMu.Lock()
	defer lr.errMu.Unlock()
	return lr.err
}

// settleBatch is what one settle records. timed says it was taken because
// settleEvery had passed, not because settleMax outcomes were waiting.
type settleBatch struct {
	done, release, changed []ledger.Person
	timed                  bool
}

// take returns the queued outcomes, if there are any and they are due
// (always when all); nil when not.
// Once every row is read (tail), they are due ten times as often: the
// run's end records those left, after its last answer, and a second's
// took 4-7 ms at 200 rows a second.
func (lr *ledgerRun) take(all bool) *settleBatch {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	every := settleEvery
	if lr.tail.Load() {
		every /= 10
	}
	if len(lr.done)+len(lr.release)+len(lr.changed) == 0 {
		return nil // nothing to record: no transaction, no goroutine
	}
	if !all && time.Since(lr.settled) < every && len(lr.done) < settleMax {
		return nil
	}
	lr.settled = time.Now()
	b := &settleBatch{lr.done, lr.release, lr.changed, !all && len(lr.done) < settleMax}
	lr.done, lr.release, lr.changed = lr.spare, nil, nil
	lr.spare = nil
	return b
}

// settle records b in the ledger.
func (lr *ledgerRun) settle(ctx context.Context, b *settleBatch) error {
	// In key order: the ledger's pages are then met in order, once each.
	byKey := func(a, b ledger.Person) int { return strings.Compare(a.Key, b.Key) }
	slices.SortFunc(b.done, byKey)
	stop := lr.slow("record outcomes")
	err := lr.store.Settle(ctx, lr.id, b.done, b.release)
	stop()
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	slices.SortStableFunc(b.changed, byKey)
	if err := lr.store.NoteChanged(ctx, lr.id, b.changed); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	if b.timed && time.Since(lr.checkpointed) >= settleEvery {
		// Outcomes come slower than the ledger records them: it has time
		// to copy its log into its file now, which its closing would do
		// at the end of the run, after the last answer. (When they come
		// faster, the log's own checkpoints copy it, less often.)
		lr.checkpointed = time.Now()
		if err := lr.store.Checkpoint(ctx); err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
	}
	return nil
}

// SettleLedger records in store every row of the results file at path
// whose last line is created or existing, keyed by email: `ledger import`,
// and the start of a resumed run (after a kill the journal may be ahead
// of the ledger). It is idempotent. It returns how many rows it recorded.
func SettleLedger(ctx context.Context, store ledger.Store, target, path, campaign string, run int64) (int, error) {
	var batch []ledger.Person
	n := 0
	flush := func() error {
		err := store.Settle(ctx, run, batch, nil)
		n += len(batch)
		batch = batch[:0]
		return err
	}
	at := time.Now()
	_, err := results.Outcomes(path, func(o results.Record) error {
		if (o.Status != results.Created && o.Status != results.Existing) || o.Email == "" || o.CustomerID == "" {
			return nil
		}
		if t, err := time.Parse(results.TimeFormat, o.At); err == nil {
			at = t
		}
		batch = append(batch, ledger.Person{Target: target, Key: "email:" + o.Email, CustomerID: o.CustomerID, Status: string(o.Status), LastAt: at,
			RequestHash: o.RequestHash, Campaign: campaign})
		if len(batch) == 1000 {
			return flush()
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	return n, flush()
}

// flushClaims claims, in one ledger transaction, the keys of the jobs the
// reader has gathered, and hands the jobs to the workers: a person the
// ledger knows is then recorded without a request. A key another live run
// holds is not waited for here, nor by a worker: its job is set aside and
// claimed again with the next batch, and until every one is settled once
// the input ends. Two importers holding keys the other wants thus go on
// with their own, and settle them (waiting in place, they could wait on
// each other for ever).
//
// The claims are made on a goroutine of their own (claimer), beside the
// reader: a transaction per batch on the reader's goroutine held up the
// whole import, whose reader is its one serial stage.
func (r *run) flushClaims(ctx context.Context) error {
	if len(r.toClaim) == 0 {
		return nil
	}
	batch := slices.Clone(r.toClaim)
	r.toClaim = r.toClaim[:0]
	select {
	case r.claimQ <- batch:
	case <-ctx.Done():
		r.closeOpen(int64(len(batch)))
	}
	return nil
}

// claimer claims the reader's batches until the reader closes q; then,
// when the input was read to its end, the set-aside jobs. On an error it
// stops the reader (through stop) and drops what is left.
func (r *run) claimer(ctx context.Context, q <-chan []job, stop context.CancelFunc, eof func() bool) error {
	drop := func() {
		for b := range q {
			r.closeOpen(int64(len(b)))
		}
		r.closeOpen(int64(len(r.held)))
		r.held = nil
	}
	for b := range q {
		if err := r.claimBatch(ctx, b); err != nil {
			stop()
			drop()
			return err
		}
	}
	if !eof() {
		drop()
		return nil
	}
	return r.settleHeld(ctx)
}

// claimBatch claims jobs and the set-aside ones (see flushClaims).
func (r *run) claimBatch(ctx context.Context, jobs []job) error {
	jobs = append(jobs, r.held...)
	r.held = nil
	if len(jobs) == 0 {
		return nil
	}
	var keys []string
	var idx []int
	for i := range jobs {
		if k := matchKey(r.cfg.MatchKey, &jobs[i].req); k != "" {
			keys = append(keys, k)
			idx = append(idx, i)
		}
	}
	ready := jobs[:0:0]
	if len(keys) > 0 {
		cs, err := r.ledger.claimMany(ctx, keys, r.cfg.CreateExisting)
		if err != nil {
			r.closeOpen(int64(len(jobs)))
			if ctx.Err() != nil {
				return nil
			}
			return &AbortError{fmt.Errorf("ledger: %w", err)}
		}
		var held map[int]bool
		for n, i := range idx {
			c := cs[n]
			if c.HeldBy != 0 {
				if held == nil {
					held = map[int]bool{}
				}
				held[i] = true
				r.held = append(r.held, jobs[i])
				continue
			}
			jobs[i].claim = &c
			if c.Claimed {
				r.ledger.hold(keys[n])
			}
		}
		if held == nil {
			ready = jobs // the usual case: no key held by another run
		} else {
			for i := range jobs {
				if !held[i] {
					ready = append(ready, jobs[i])
				}
			}
		}
	} else {
		ready = jobs
	}
	for i, j := range ready {
		select {
		case r.jobs <- j:
		case <-ctx.Done():
			r.closeOpen(int64(len(ready) - i + len(r.held)))
			r.held = nil
			return nil
		}
	}
	return nil
}

// settleHeld claims the set-aside jobs again until none is left: the runs
// holding them settle them, or die and leave stale claims, which this run
// then takes and reconciles.
func (r *run) settleHeld(ctx context.Context) error {
	for len(r.held) > 0 {
		select {
		case <-ctx.Done():
			r.closeOpen(int64(len(r.held)))
			r.held = nil
			return nil
		case <-time.After(heldPoll):
		}
		if err := r.claimBatch(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// heldPoll is how often keys another run holds are asked for again.
const heldPoll = 100 * time.Millisecond
