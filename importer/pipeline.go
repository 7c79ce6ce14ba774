package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/revcent-import/revcent-import/ratelimit"
	"github.com/revcent-import/revcent-import/results"
	"github.com/revcent-import/revcent-import/revcent"
	"github.com/revcent-import/revcent-import/source"
)

// syncEvery is how often the writer fsyncs the results file. Every record
// reaches the OS when its batch is flushed, which survives the process
// being killed; fsync only guards against the machine losing power, and
// per record it would cap the run at a few thousand rows a second.
const syncEvery = time.Second

// flushEvery is the longest an outcome line waits in the writer's buffer
// before it is handed to the OS; pending lines never wait.
const flushEvery = 100 * time.Millisecond

// run wires the pipeline. One errgroup owns every goroutine: the reader,
// the workers, the goroutine that closes the writer's inbox once all
// producers are done, the writer and the progress reporter. When it
// returns, nothing is left running.
func (r *run) run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	// The row total is for progress only: count it on the side (the
	// second core is idle while the reader starts) instead of before.
	if r.cfg.Progress != nil {
		g.Go(func() error {
			defer close(r.counted)
			opts := r.cfg.Source
			opts.Format = r.in.Format
			if n, err := source.Count(r.cfg.Path, opts); err == nil && n >= 0 {
				r.total.Store(int64(n))
			}
			return nil
		})
	}
	// The writer does not watch ctx: after a signal it must still record
	// the outcomes of the requests in flight. It ends when its inbox closes
	// or the file fails. It starts first: the first request waits for its
	// pending line, and a writer started after the workers (512 of them
	// with --concurrency auto) started 4-7 ms after them.
	g.Go(func() error {
		defer close(r.writerDone)
		return r.write()
	})
	var producers sync.WaitGroup
	producers.Add(2 + r.cfg.Concurrency)
	// The workers the gate lets send at first start before the reader,
	// so that they wait for jobs when the first comes; the others (up to
	// 512 with --concurrency auto) once the first request is out. Started
	// together, they delayed the first request by 7-10 ms, or, started
	// beside it, its connection by 2-8 ms.
	work := func() error {
		defer producers.Done()
		return r.work(gctx)
	}
	now := r.cfg.Concurrency
	if r.gate != nil {
		now = min(now, r.gate.size())
	}
	for range now {
		g.Go(work)
	}
	if rest := r.cfg.Concurrency - now; rest > 0 {
		g.Go(func() error {
			select {
			case <-r.firstOut:
			case <-r.readerDone:
			case <-gctx.Done():
			}
			for range rest {
				g.Go(work)
			}
			return nil
		})
	}
	g.Go(func() error {
		defer producers.Done()
		return r.rc.loop(gctx, r.readerDone)
	})
	g.Go(func() error {
		defer producers.Done()
		defer close(r.readerDone)
		defer close(r.jobs)
		if r.ledger != nil {
			defer r.ledger.tail.Store(true)
		}
		// gctx ends reading and sending: a signal or a fatal error.
		if err := r.read(gctx); !errors.Is(err, errWriterGone) {
			return err
		}
		return nil // the writer returns the cause
	})
	g.Go(func() error {
		producers.Wait()
		close(r.inbox)
		return nil
	})
	if p := r.cfg.Progress; p != nil {
		g.Go(func() error {
			r.report(p)
			return nil
		})
	}
	if r.gate != nil {
		g.Go(func() error {
			r.autoSize(r.writerDone)
			return nil
		})
	}
	err := g.Wait()
	r.countUnwritten()
	return err
}

// countUnwritten counts what was handed to the writer after it stopped
// (send can still find room in the inbox then), once the inbox is
// closed: none of it was written.
func (r *run) countUnwritten() {
	for m := range r.inbox {
		if m.kind == mRecord {
			r.lost(&m.rec)
		}
	}
}

// lost counts an outcome the writer never wrote (it had stopped). A row
// whose request was sent, in this run or an earlier one, keeps its
// pending line in the journal: it is in doubt. One never sent (known to
// the ledger, found by --check-existing) is left unsent. A pending line
// handed over by unknown was counted in doubt there.
func (r *run) lost(rec *results.Record) {
	if rec.Attempts > 0 && rec.Status != results.Pending {
		r.c.inDoubt.Add(1)
	}
}

// send hands m to the writer. It fails only when the writer has stopped.
func (r *run) send(m msg) error {
	select {
	case r.inbox <- m:
		return nil
	case <-r.writerDone:
		return errWriterGone
	}
}

var errWriterGone = errors.New("results writer stopped")

// read streams rows, skips those an earlier run finished, maps and
// validates the rest, and hands them to the writer (invalid, duplicate)
// or the workers (to send).
func (r *run) read(ctx context.Context) (err error) {
	if r.ledger != nil {
		// Claims are made beside the reader (see flushClaims); the jobs
		// channel closes once the claimer is done too.
		cctx, stop := context.WithCancel(ctx)
		defer stop()
		q := make(chan []job, 2)
		done := make(chan error, 1)
		var eof atomic.Bool
		r.claimQ = q
		go func() { done <- r.claimer(cctx, q, stop, eof.Load) }()
		defer func() {
			eof.Store(err == nil && ctx.Err() == nil && r.readAll)
			close(q)
			if cerr := <-done; err == nil {
				err = cerr
			}
		}()
		ctx = cctx
	}
	// Parsing runs on its own goroutine, a batch of rows ahead: a resume
	// that skips most rows is bound by it.
	batches, stop := make(chan rowBatch, 4), make(chan struct{})
	var parser sync.WaitGroup
	parser.Go(func() { r.parse(batches, stop) })
	defer func() {
		close(stop)
		parser.Wait()
	}()
	waited := false
	for b := range batches {
		for _, row := range b.rows {
			if ctx.Err() != nil {
				return nil
			}
			if err := r.decide(ctx, row); err != nil {
				return err
			}
		}
		// The batch's claims, in one ledger transaction, then its jobs.
		if err := r.flushClaims(ctx); err != nil {
			return err
		}
		if !waited && r.open.Load() > 0 {
			// The first request waits for nothing else: deciding and
			// claiming rows ahead would take both cores while it
			// connects, and the first answer is awaited a round trip
			// longer than the connection took (see firstRequest). The
			// bound is for a job that never reaches a worker.
			waited = true
			t := time.NewTimer(readerWait)
			select {
			case <-r.firstOut:
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
		if b.err == io.EOF {
			r.readAll = true
			return nil
		}
		if b.err != nil {
			return &AbortError{fmt.Errorf("%s: %w", r.in.Name, b.err)}
		}
	}
	return nil
}

// readerWait bounds the reader's wait for the first request (see read).
const readerWait = 100 * time.Millisecond

// rowBatch is rows read, then what ended the input, if it ended.
type rowBatch struct {
	rows []source.Row
	err  error
}

// rowsPerBatch is how many rows the parser hands over at once, and
// firstBatch how many it hands over first: the batches double from it.
// The first request waits for the first batch to be parsed, decided and
// claimed in the ledger, which took 8-11 ms for 256 rows.
const rowsPerBatch, firstBatch = 256, 8

// parse reads rows in batches until the input ends or stop closes. Each
// row's values are copied out of the reader's reused slice.
func (r *run) parse(out chan<- rowBatch, stop <-chan struct{}) {
	defer close(out)
	var values []string
	for size := firstBatch; ; size = min(2*size, rowsPerBatch) {
		b := rowBatch{rows: make([]source.Row, 0, size)}
		for len(b.rows) < size {
			row, err := r.src.Next()
			if err != nil {
				b.err = err
				break
			}
			if len(values)+len(row.Values) > cap(values) {
				values = make([]string, 0, rowsPerBatch*len(row.Values))
			}
			n := len(values)
			values = append(values, row.Values...)
			row.Values = values[n:len(values):len(values)]
			b.rows = append(b.rows, row)
		}
		select {
		case out <- b:
		case <-stop:
			return
		}
		if b.err != nil {
			return
		}
	}
}

// decide skips a row an earlier run finished, or maps and validates it
// and hands it to the writer (invalid, duplicate) or the workers (to
// send).
func (r *run) decide(ctx context.Context, row source.Row) error {
	r.c.rows.Add(1)
	if row.Err == nil && source.Blank(row.Values) {
		r.c.blank.Add(1) // not a person: no line in the journal
		return nil
	}
	hash := results.RowHash(row.Values)
	var prev results.Entry
	if r.ix != nil {
		var ok bool
		if prev, ok = r.ix.Last(row.Record); ok && prev.RowHash != 0 && hash != prev.RowHash {
			if !r.cfg.Force {
				// Rows before this one matched, so what was done
				// with them stands; from here the journal would
				// describe other rows.
				return &AbortError{fmt.Errorf("%s line %d (row %d) differs from the row recorded in %s: the input changed since that run. "+
					"Put the original input back, or pass --force to match changed rows by their email instead", r.in.Name, row.Line, row.Record, r.cfg.Results)}
			}
			return r.decideChanged(ctx, row, hash, prev)
		}
		if ok && r.doneBefore(prev.Status) {
			r.c.skipped.Add(1)
			return nil
		}
	}
	return r.dispatch(ctx, row, r.prep.prepare(row), hash, prev, row.Record)
}

// doneBefore says whether a row whose journal line says st is skipped by
// --resume: final, or failed without --retry-failed.
func (r *run) doneBefore(st results.Status) bool {
	switch st {
	case results.Created, results.Invalid, results.Duplicate, results.Existing:
		return true
	case results.Failed:
		return !r.cfg.RetryFailed
	}
	return false
}

// decideChanged decides, under --force, a row whose content differs from
// the row the journal recorded under its number (a row inserted or
// removed above it shifts every number). Its identity is then its email:
// one the journal created or found existing is recorded as a duplicate of
// that customer, with its id, and not sent; one a row in doubt carries is
// reconciled before anything is sent; any other is a new person, sent.
func (r *run) decideChanged(ctx context.Context, row source.Row, hash uint64, old results.Entry) error {
	v := r.prep.prepare(row)
	if !v.send {
		return r.dispatch(ctx, row, v, hash, results.Entry{}, 0)
	}
	if rec, err := r.ix.Record(row.Record); err == nil && rec.Email == v.rec.Email && old.Status != results.Invalid {
		// The same person as the journal's line for this number, edited
		// (an invalid one, edited, is sent: that was the fix).
		if r.doneBefore(old.Status) {
			r.c.skipped.Add(1)
			return nil
		}
		return r.dispatch(ctx, row, v, hash, old, row.Record) // failed with --retry-failed, or in doubt
	}
	if p, ok := r.pendingByEmail()[v.rec.Email]; ok {
		if e, ok := r.ix.Last(p); ok && e.Status == results.Pending {
			return r.dispatch(ctx, row, v, hash, e, p) // in doubt: reconcile first
		}
	}
	return r.dispatch(ctx, row, v, hash, results.Entry{}, 0)
}

// pendingByEmail maps the email of every row the journal left in doubt to
// its row, read once, for --force.
func (r *run) pendingByEmail() map[string]int {
	r.pendingOnce.Do(func() {
		r.pending = map[string]int{}
		for _, row := range r.ix.Rows(results.Pending) {
			if rec, err := r.ix.Record(row); err == nil && rec.Email != "" {
				r.pending[rec.Email] = row
			}
		}
	})
	return r.pending
}

// dispatch hands a decided row to the workers (to send) or the writer.
// prev is the journal's last line for the person, at row prevRow, when one
// is in doubt or failed and is being retried.
func (r *run) dispatch(ctx context.Context, row source.Row, v verdict, hash uint64, prev results.Entry, prevRow int) error {
	v.rec.RowHash, v.rec.Attempts = strconv.FormatUint(hash, 16), prev.Attempts
	switch {
	case v.send:
		// A pending row may have been created by the run that wrote it. So
		// may any failed row that was ever sent: its retries may have run
		// out on answers in doubt, and a server may even answer an error
		// after creating the customer. Reconcile before sending again.
		inDoubt := prev.Status == results.Pending || (prev.Status == results.Failed && prev.Attempts > 0)
		// The request's hash goes on its outcome line, so that `ledger
		// import` of this results file can tell later changes.
		j := job{row: row.Record, line: row.Line, email: v.rec.Email, hash: v.rec.RowHash, req: v.req,
			attempts: prev.Attempts, before: prev.Attempts, inDoubt: inDoubt, since: prev.FirstSent,
			unwritten: r.ix != nil && prev.Status == ""}
		if r.ledger != nil {
			j.reqHash, j.reqBody = requestRecord(v.req) // the ledger keeps the body too
		} else {
			j.reqHash = requestHash(v.req)
		}
		if inDoubt {
			j.last, j.why = r.lastLine(prevRow, prev)
		}
		r.open.Add(1)
		if r.ledger != nil && !inDoubt {
			r.toClaim = append(r.toClaim, j) // claimed with the rest of its batch
			return nil
		}
		select {
		case r.jobs <- j:
		case <-ctx.Done():
			r.closeOpen(1)
		}
		return nil
	case v.rec.Status == results.Duplicate:
		if id, ok := r.earlier(v.dupOf); ok {
			// Created by an earlier run: its id is known now.
			v.rec.CustomerID = id
			v.rec.Message += ", created earlier"
			return r.send(msg{kind: mRecord, rec: v.rec})
		}
		return r.send(msg{kind: mDupOf, rec: v.rec, dupOf: v.dupOf})
	default:
		return r.send(msg{kind: mRecord, rec: v.rec})
	}
}

// lastLine returns when the journal's last line for row was written and
// what it said, for a row to reconcile. A line that cannot be read back
// counts as written now: the settle window then starts now, which only
// waits longer.
func (r *run) lastLine(row int, prev results.Entry) (time.Time, string) {
	why := "an earlier run sent it and stopped before its answer was recorded"
	if prev.Status == results.Failed {
		why = "an earlier run recorded it failed"
	}
	rec, err := r.ix.Record(row)
	if err != nil {
		return time.Now(), why
	}
	if rec.Status == results.Failed && rec.Message != "" {
		why += " (" + rec.Message + ")"
	}
	t, err := time.Parse(results.TimeFormat, rec.At)
	if err != nil {
		return time.Now(), why
	}
	return t, why
}

// earlier returns the customer id of row when an earlier run created it
// or found it existing.
func (r *run) earlier(row int) (string, bool) {
	if r.ix == nil {
		return "", false
	}
	if e, ok := r.ix.Last(row); !ok || (e.Status != results.Created && e.Status != results.Existing) {
		return "", false
	}
	id, err := r.ix.CustomerID(row)
	if err != nil {
		r.cfg.Log.Warn("could not read back a created row's customer_id", "row", row, "error", err)
		return "", false
	}
	return id, true
}

// work sends jobs until the jobs channel closes or ctx ends.
func (r *run) work(ctx context.Context) error {
	ack := make(chan error, 1)
	// Requests in flight are not cancelled by a signal: cancelling one
	// after it was written would leave its outcome unknown. They are
	// bounded by the client's timeout.
	reqCtx := context.WithoutCancel(ctx)
	jobs, resend := r.jobs, r.rc.resend
	for jobs != nil || resend != nil {
		var j job
		var ok bool
		select {
		case j, ok = <-jobs:
			if !ok {
				jobs = nil
				continue
			}
		case j, ok = <-resend:
			if !ok {
				resend = nil
				continue
			}
		case <-ctx.Done():
			return nil
		}
		if r.gate != nil {
			if err := r.gate.acquire(ctx); err != nil {
				r.leave(j.inDoubt || j.attempts > 0) // stopping: the job was never started
				return nil
			}
		}
		err := r.process(ctx, reqCtx, &j, ack)
		if r.gate != nil {
			r.gate.release()
		}
		if err != nil {
			if errors.Is(err, errWriterGone) {
				return nil // the writer returns the cause
			}
			return err
		}
	}
	return nil
}

// process takes one row to its outcome, or sets it aside for the
// reconciler when its outcome is unknown. It returns an error only for
// conditions that end the run. reqCtx is ctx without its cancellation,
// for the requests.
func (r *run) process(ctx, reqCtx context.Context, j *job, ack chan error) error {
	defer r.firstDone()
	rec := results.Record{Row: j.row, Line: j.line, Email: j.email, RowHash: j.hash, Attempts: j.attempts, Throttled: j.throttled, RequestHash: j.reqHash}

	if r.ledger != nil {
		known, stale, since, err := r.claim(ctx, j, rec)
		switch {
		case err != nil && ctx.Err() != nil:
			return r.leave(j.inDoubt)
		case err != nil:
			r.closeOpen(1)
			return &AbortError{err}
		case known != nil:
			if known.ErrorCode == ChangedCode {
				r.c.changed.Add(1)
			}
			return r.finish(*known)
		case stale && !j.inDoubt:
			// A run that was killed held this person: its request may
			// have created the customer. Reconcile, as --resume does.
			j.since = since
			return r.setAside(r.newAside(*j, rec, "a run that stopped held this person's claim in the ledger", since))
		}
	}

	if r.cfg.CheckExisting && !j.inDoubt && j.attempts == 0 && j.email != "" && !r.cfg.CreateExisting {
		// Everyone with this email created before now was there before.
		w := revcent.Want{Email: j.email, FirstName: strings.ToLower(j.req.Customer.FirstName), LastName: strings.ToLower(j.req.Customer.LastName),
			InternalID: j.req.InternalCustomerID, Since: time.Now().Add(24 * time.Hour)}
		f, err := r.search(reqCtx, w)
		switch {
		case err != nil:
			r.cfg.Log.Warn("--check-existing: the search failed; creating the row", "row", j.row, "error", err.Error())
		case f.OlderID != "" || f.ID != "":
			id := f.OlderID
			if id == "" {
				id = f.ID
			}
			rec.Status, rec.CustomerID = results.Existing, id
			rec.Message = "already in RevCent (--check-existing found it by email); not sent"
			return r.finish(rec)
		}
	}

	if j.inDoubt {
		// An earlier run sent this row and its outcome is not known to be
		// final: the request may have created the customer.
		return r.setAside(r.newAside(*j, rec, j.why, j.last))
	}

	pendingWritten := false
	// release lets the other workers go after the run's first request
	// (see firstRequest); whatever way this returns, it has been called.
	release := func() {}
	defer func() { release() }()
	for attempt := 1; ; attempt++ {
		// Until the first request is out and unrefused, one request at a
		// time: a wrong --base-url, a wrong key or a closed port then
		// costs one row, not one per worker (see firstRequest). The others
		// wait here, before taking a token: tokens taken while they waited
		// would all go at once when they may, whatever the burst, and the
		// first answer's rate-limit headers could no longer hold them back.
		sendCtx := reqCtx
		if !r.opened.Load() {
			r.firstMu.Lock()
			if r.opened.Load() {
				r.firstMu.Unlock()
			} else {
				sendCtx, release = r.firstRequest(reqCtx)
			}
		}
		if err := r.cfg.Limiter.Wait(ctx); err != nil {
			return r.leave(pendingWritten || j.attempts > 0)
		}
		if r.halt.Load() {
			return r.leave(pendingWritten || j.attempts > 0)
		}
		if !pendingWritten {
			// The pending line reaches the OS before the request leaves:
			// if the process dies after sending, the next run knows this
			// row is in doubt and reconciles it instead of resending.
			p := rec
			p.Status, p.Attempts = results.Pending, rec.Attempts+1
			if err := r.send(msg{kind: mPending, rec: p, ack: ack}); err != nil {
				return err
			}
			select {
			case err := <-ack:
				if err != nil {
					return errWriterGone // the writer reports why
				}
			case <-r.writerDone:
				return errWriterGone
			}
			pendingWritten = true
			if j.since.IsZero() {
				j.since = time.Now()
			}
		}
		// The pending line took time to write: the start is counted now,
		// where it happens, so that no second holds more than rate + burst.
		// Once the pending line is written the request goes, signal or
		// not (the wait is a fraction of a second): a row counted in doubt
		// is one whose request was sent.
		if err := r.cfg.Limiter.Start(reqCtx); err != nil {
			return r.leave(true)
		}
		rec.Attempts++
		r.c.requests.Add(1)
		if attempt > 1 || j.attempts > 0 {
			r.c.retries.Add(1)
		}
		sent := time.Now()
		id, existing, err := r.cfg.Client.CreateCustomer(sendCtx, &j.req)
		r.lat.add(time.Since(sent))
		var e *revcent.Error
		if err != nil && !errors.As(err, &e) {
			e = &revcent.Error{Class: revcent.InDoubt, Message: err.Error(), Err: err}
		}
		// Answers that come before any other say the URL is wrong when
		// they are a 404 without RevCent's JSON, or no connection.
		wrongURL := !r.answered.Load() && e != nil && ((e.HTTPStatus == 404 && e.Code == "") || e.Unreachable)
		switch {
		case wrongURL || (e != nil && e.Class == revcent.Fatal):
			// The run stops: set before release, so that no other row
			// goes (a wrong key used to cost a row per worker).
			r.halt.Store(true)
		default:
			r.answered.Store(true)
		}
		// Whatever came back, the others may go (if they have not): they
		// stop at once if it said the URL is wrong.
		release()
		switch {
		case e != nil && e.HTTPStatus == 429:
			rec.Throttled++
			pause := ratelimit.DefaultPause
			if e.HasRetryAfter {
				pause = e.RetryAfter
			}
			r.cfg.Limiter.Throttled(pause, sent)
		case err == nil || e.HTTPStatus != 0:
			r.cfg.Limiter.AcceptedFor(sent)
		}
		if err == nil {
			rec.Status, rec.CustomerID, rec.HTTPStatus = results.Created, id, 200
			if existing {
				rec.Status, rec.Message = results.Existing, "RevCent answered with a customer it already had for this email"
			}
			return r.finish(rec)
		}
		rec.HTTPStatus, rec.ErrorCode, rec.Message = e.HTTPStatus, e.Code, e.Error()
		if wrongURL {
			// The very first answers say the URL is wrong: stop after one
			// row rather than after the circuit breaker's twenty.
			what := fmt.Sprintf("POST %s/customers answered HTTP 404 without RevCent's JSON", r.cfg.Client.BaseURL())
			if e.HTTPStatus == 0 {
				what = fmt.Sprintf("could not reach %s (%s)", r.cfg.Client.BaseURL(), e.Message)
			}
			rec.Status, rec.Retryable = results.Failed, "yes"
			if err := r.finish(rec); err != nil {
				return err
			}
			return &AbortError{fmt.Errorf("%s: check --base-url (it should end in /v2, as %s does) and the network; then rerun with --resume --retry-failed", what, revcent.DefaultBaseURL)}
		}
		switch e.Class {
		case revcent.Fatal:
			r.closeOpen(1) // refused, not created; its pending line makes --resume look first
			return &AbortError{fmt.Errorf("RevCent refused the request (%v): check the API key and --base-url; rerun with --resume", e)}
		case revcent.Final:
			if revcent.IsExistingRefusal(e, r.cfg.ExistsCode) {
				return r.existing(reqCtx, j, rec, e)
			}
			rec.Status, rec.Retryable = results.Failed, "no"
			return r.finish(rec)
		case revcent.InDoubt:
			// Written, no trustworthy answer: the customer may exist, or
			// may yet. Set the row aside; the reconciler decides, and
			// resends only once it is sure nothing was created.
			return r.setAside(r.newAside(*j, rec, e.Error(), time.Now()))
		}
		if attempt >= r.cfg.MaxAttempts {
			rec.Status, rec.Retryable = results.Failed, "yes"
			rec.Message = fmt.Sprintf("gave up after %d attempts: %v", rec.Attempts, e)
			return r.finish(rec)
		}
		if ctx.Err() != nil {
			return r.leave(true)
		}
		if !r.sleep(ctx, r.backoff(attempt, e)) {
			return r.leave(true)
		}
	}
}

// existing records a row that RevCent refused because it already has a
// customer with the row's email: final status existing, with that
// customer's id as a search finds it (the oldest with the email).
func (r *run) existing(ctx context.Context, j *job, rec results.Record, e *revcent.Error) error {
	rec.Status = results.Existing
	w := revcent.Want{Email: j.email, FirstName: j.req.Customer.FirstName, LastName: j.req.Customer.LastName,
		InternalID: j.req.InternalCustomerID, Since: time.Now().Add(24 * time.Hour)} // every match counts as older
	var serr error
	for try := range 3 {
		if try > 0 && !r.sleep(ctx, time.Duration(try)*time.Second) {
			break
		}
		var f revcent.Found
		if f, serr = r.search(ctx, w); serr == nil && f.OlderID != "" {
			rec.CustomerID = f.OlderID
			rec.Message = fmt.Sprintf("already in RevCent (it answered %s); customer_id found by search", e.Error())
			return r.finish(rec)
		}
	}
	why := "not found by search"
	if serr != nil {
		why = "the search failed: " + serr.Error()
	}
	rec.Message = fmt.Sprintf("already in RevCent (it answered %s); its customer_id is not known (%s)", e.Error(), why)
	return r.finish(rec)
}

// closeOpen counts n open rows as decided; when none is left it wakes the
// reconciler, which ends the run's sending once the reader is done too
// (on its 50 ms tick alone, every run ended up to 50 ms late).
func (r *run) closeOpen(n int64) {
	if r.open.Add(-n) <= 0 {
		select {
		case r.closed <- struct{}{}:
		default:
		}
	}
}

// finish hands a row's outcome to the writer. If the writer has
// stopped, the outcome is lost (see lost): a sent row's pending line is
// on disk, and --resume reconciles it.
func (r *run) finish(rec results.Record) error {
	r.closeOpen(1)
	err := r.send(msg{kind: mRecord, rec: rec})
	if errors.Is(err, errWriterGone) {
		r.lost(&rec)
	}
	return err
}

// adopt records that the search found the row's customer: created.
func (r *run) adopt(rec results.Record, id, why string) error {
	r.c.reconciled.Add(1)
	rec.Status, rec.CustomerID, rec.Message = results.Created, id, why
	return r.finish(rec)
}

// leave abandons a row because the run is stopping. Its journal stays as
// it is: no line when it was never sent, or pending, which --resume
// reconciles.
func (r *run) leave(pending bool) error {
	r.closeOpen(1)
	if pending {
		r.c.inDoubt.Add(1)
	}
	return nil
}

// unknown records a row whose outcome could not be established: its last
// line stays pending, now with a message saying what was tried, and
// --resume reconciles it.
func (r *run) unknown(rec results.Record, why string) error {
	r.cfg.Log.Warn("outcome unknown; left pending for --resume", "row", rec.Row, "line", rec.Line, "reason", why)
	rec.Status, rec.Message, rec.CustomerID = results.Pending, "outcome unknown: "+why, ""
	err := r.send(msg{kind: mRecord, rec: rec})
	r.leave(true)
	if errors.Is(err, errWriterGone) {
		return nil // the pending line already on disk says the same
	}
	return err
}

// backoff is exponential with full jitter, capped; a Retry-After wins.
func (r *run) backoff(attempt int, e *revcent.Error) time.Duration {
	if e.HasRetryAfter {
		return e.RetryAfter
	}
	ceil := r.cfg.RetryBase << min(attempt-1, 20)
	if ceil > r.cfg.RetryMax || ceil <= 0 {
		ceil = r.cfg.RetryMax
	}
	return rand.N(ceil) + 1
}

func (r *run) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// write owns the results file. It takes every message waiting in its
// inbox, writes them, flushes once (one write to the OS for the batch),
// then releases the workers waiting for their pending lines. A duplicate
// is written once its first row's outcome is known: at once when that row
// has finished, else when it does.
func (r *run) write() error {
	tick := time.NewTicker(syncEvery)
	defer tick.Stop()
	waiting := map[int][]results.Record{} // first row -> its duplicates
	// finished says, for every row this run sent and finished, where its
	// created line starts in the file (offset+1), or -1 if it failed: 8
	// bytes a row. A duplicate read later reads its first row's
	// customer_id back from there.
	var finished []int64
	var acks []chan error
	dirty := false
	// The circuit breaker: the same error on many consecutive rows, none
	// created between, is a problem of the run (an unknown campaign, a
	// wrong base URL), not of the rows.
	var streakKey string
	var streak int
	breaker := func(rec *results.Record) error {
		switch rec.Status {
		case results.Created, results.Existing:
			streak = 0
		case results.Failed:
			key := fmt.Sprintf("HTTP %d %s", rec.HTTPStatus, rec.ErrorCode)
			if key != streakKey {
				streakKey, streak = key, 0
			}
			streak++
			if n := r.cfg.BreakAfter; n > 0 && streak >= n {
				return &AbortError{fmt.Errorf("the same error on %d consecutive rows (%s); fix its cause, then rerun with --resume --retry-failed", streak, rec.Message)}
			}
			if n := r.cfg.MaxErrors; n > 0 && r.c.failed.Load() >= int64(n) {
				return &AbortError{fmt.Errorf("%d rows failed (--max-errors %d); the last: %s", r.c.failed.Load(), n, rec.Message)}
			}
		}
		return nil
	}
	writeDup := func(d results.Record, first int, at int64) error {
		if at > 0 {
			id, err := r.w.CustomerID(at - 1)
			if err != nil {
				return err
			}
			d.CustomerID = id
			d.Message = fmt.Sprintf("same email as row %d", first)
		} else {
			d.Message = fmt.Sprintf("same email as row %d, which failed: fix or retry that row", first)
		}
		if err := r.w.Write(&d); err != nil {
			return err
		}
		r.count(d.Status)
		return nil
	}
	handle := func(m msg) error {
		switch m.kind {
		case mPending:
			acks = append(acks, m.ack)
			return r.w.Write(&m.rec)
		case mDupOf:
			if m.dupOf <= len(finished) && finished[m.dupOf-1] != 0 {
				return writeDup(m.rec, m.dupOf, finished[m.dupOf-1])
			}
			waiting[m.dupOf] = append(waiting[m.dupOf], m.rec)
			return nil
		}
		at := r.w.Offset() + 1
		if err := r.w.Write(&m.rec); err != nil {
			return err
		}
		r.ledger.outcome(&m.rec)
		r.count(m.rec.Status)
		if err := breaker(&m.rec); err != nil {
			return errBreak{err}
		}
		if m.rec.Status != results.Created && m.rec.Status != results.Existing && m.rec.Status != results.Failed {
			return nil // invalid and duplicate rows are never anyone's first row
		}
		if m.rec.Status == results.Failed {
			at = -1
		}
		for len(finished) < m.rec.Row {
			finished = append(finished, 0)
		}
		finished[m.rec.Row-1] = at
		if len(waiting) == 0 {
			return nil // the usual case: no duplicate waits for any row
		}
		for _, d := range waiting[m.rec.Row] {
			if err := writeDup(d, m.rec.Row, at); err != nil {
				return err
			}
		}
		delete(waiting, m.rec.Row)
		return nil
	}
	fail := func(err error) error {
		for _, a := range acks {
			a <- err
		}
		var b errBreak
		if errors.As(err, &b) {
			// The record was written; flush it before stopping.
			r.w.Flush()
			return b.err
		}
		return &AbortError{fmt.Errorf("results file %s: %w: stopped sending, since no outcome could be recorded", r.w.Name(), err)}
	}
	flushTick := time.NewTicker(flushEvery)
	defer flushTick.Stop()
	unflushed := false
	for {
		select {
		case m, ok := <-r.inbox:
			if !ok {
				// Close flushes and syncs the journal; the ledger follows.
				if err := r.w.Flush(); err != nil {
					return fail(err)
				}
				if err := r.ledger.flush(context.Background(), true); err != nil {
					return &AbortError{err}
				}
				return nil
			}
			if err := handle(m); err != nil {
				return fail(err)
			}
		drain:
			for {
				select {
				case m, ok := <-r.inbox:
					if !ok {
						break drain
					}
					if err := handle(m); err != nil {
						return fail(err)
					}
				default:
					break drain
				}
			}
			unflushed, dirty = true, true
			if len(acks) == 0 {
				// Only outcomes: they can wait for the next pending line or
				// tick. One lost to a kill leaves its row pending, which
				// --resume reconciles; a pending line lost would not be
				// safe, so those are flushed before their ack.
				continue
			}
			if err := r.w.Flush(); err != nil {
				return fail(err)
			}
			unflushed = false
			for _, a := range acks {
				a <- nil
			}
			acks = acks[:0]
		case <-flushTick.C:
			if unflushed {
				if err := r.w.Flush(); err != nil {
					return fail(err)
				}
				unflushed = false
			}
			if err := r.ledger.flush(context.Background(), false); err != nil {
				return &AbortError{err}
			}
		case <-tick.C:
			if dirty {
				if err := r.w.Sync(); err != nil {
					return fail(err)
				}
				dirty = false
			}
		}
	}
}

// errBreak carries the circuit breaker's abort out of the writer.
type errBreak struct{ err error }

func (e errBreak) Error() string { return e.err.Error() }

func (r *run) count(s results.Status) {
	switch s {
	case results.Created:
		r.c.created.Add(1)
	case results.Existing:
		r.c.existing.Add(1)
	case results.Duplicate:
		r.c.duplicate.Add(1)
	case results.Invalid:
		r.c.invalid.Add(1)
	case results.Failed:
		r.c.failed.Add(1)
	}
}
