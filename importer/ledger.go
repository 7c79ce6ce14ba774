package importer

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
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

	mu      sync.Mutex
	claims  map[int]ledger.Person // row -> its key, hash and campaign
	done    []ledger.Person
	release []ledger.Person

	// asks gathers the workers' claims: one transaction serves every
	// claim waiting when it starts (a commit per row would bound a run
	// at a few thousand rows a second).
	asks chan claimAsk
}

type claimAsk struct {
	key   string
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
		cs, err := lr.store.ClaimMany(ctx, lr.target, keys, lr.id)
		for i, a := range batch {
			if err != nil {
				a.reply <- claimAnswer{err: err}
			} else {
				a.reply <- claimAnswer{c: cs[i]}
			}
		}
	}
}

// claimOne asks the batcher for one claim.
func (lr *ledgerRun) claimOne(ctx context.Context, key string) (ledger.Claim, error) {
	reply := make(chan claimAnswer, 1)
	select {
	case lr.asks <- claimAsk{key, reply}:
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
	req.Payment = nil
	b, _ := json.Marshal(req)
	return strconv.FormatUint(xxhash.Sum64(b), 16)
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
	hash := j.reqHash
	if hash == "" {
		hash = requestHash(j.req)
	}
	for {
		var c ledger.Claim
		if j.claim != nil {
			c, j.claim = *j.claim, nil // known, as the reader's lookup found
		} else {
			var err error
			if c, err = lr.claimOne(ctx, key); err != nil {
				return nil, false, time.Time{}, fmt.Errorf("ledger: %w", err)
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
			}
			return &k, false, time.Time{}, nil
		case c.Known != nil:
			// --existing create: sent anyway; its outcome updates the
			// ledger's last run and request hash.
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
		lr.claims[j.row] = ledger.Person{Target: lr.target, Key: key, RequestHash: hash, Campaign: j.req.Campaign}
		lr.mu.Unlock()
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
}

// flush records the queued outcomes in one transaction.
func (lr *ledgerRun) flush(ctx context.Context) error {
	if lr == nil {
		return nil
	}
	lr.mu.Lock()
	done, release := lr.done, lr.release
	lr.done, lr.release = nil, nil
	lr.mu.Unlock()
	if err := lr.store.Settle(ctx, lr.id, done, release); err != nil {
		return fmt.Errorf("ledger: %w", err)
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

// flushClaims looks up, in one read of the ledger, the keys of the jobs
// the reader has gathered, and hands the jobs to the workers: a person the
// ledger knows is then recorded without a claim. The claim itself is made
// by the worker just before it sends (claims are held only while a
// request is being sent: two importers waiting on each other's held keys
// could otherwise wait forever).
func (r *run) flushClaims(ctx context.Context) error {
	jobs := r.toClaim
	r.toClaim = r.toClaim[:0]
	if len(jobs) == 0 {
		return nil
	}
	var keys []string
	var idx []int
	for i := range jobs {
		if k := matchKey(r.cfg.MatchKey, &jobs[i].req); k != "" && !r.cfg.CreateExisting {
			keys = append(keys, k)
			idx = append(idx, i)
		}
	}
	if len(keys) > 0 {
		known, err := r.ledger.store.LookupMany(ctx, r.ledger.target, keys)
		if err != nil {
			r.open.Add(-int64(len(jobs)))
			if ctx.Err() != nil {
				return nil
			}
			return &AbortError{fmt.Errorf("ledger: %w", err)}
		}
		for n, i := range idx {
			if p := known[n]; p != nil {
				jobs[i].claim = &ledger.Claim{Known: p}
			}
		}
	}
	for i, j := range jobs {
		select {
		case r.jobs <- j:
		case <-ctx.Done():
			r.open.Add(-int64(len(jobs) - i))
			return nil
		}
	}
	return nil
}
