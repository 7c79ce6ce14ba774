package importer

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/revcent-import/revcent-import/ratelimit"
	"github.com/revcent-import/revcent-import/results"
	"github.com/revcent-import/revcent-import/revcent"
)

// Reconciliation: a row whose request may have created its customer (the
// answer was lost, timed out, 5xx, unreadable; or an earlier run left it
// pending; or --retry-failed meets a row that was sent) is set aside, and
// the run goes on with the other rows. A set-aside row is searched for at
// growing intervals over the settle window, since a new customer may not
// be searchable at once and a create may still be finishing. A search hit
// created after the row was first sent is the row's customer. No hit is
// not proof: once the window has passed, the customers created over the
// row's window are listed with GetCustomers (by creation date, which does
// not lag), and only when none has the row's email is the row sent again.

// clockAllowance is added on both sides of a row's window, beyond the
// measured difference between RevCent's clock and ours: created dates are
// whole seconds, and the offset is measured to the second.
const clockAllowance = 2 * time.Second

// unknownClock is the allowance before any answer has shown RevCent's
// clock.
const unknownClock = 5 * time.Minute

// sweepGap joins the windows of set-aside rows less than this apart into
// one GetCustomers sweep.
const sweepGap = 30 * time.Second

// sweepTries is how many times a failing sweep is tried before its rows
// are left pending.
const sweepTries = 5

// aside is a row set aside until its outcome is known. Only the
// reconciler goroutine touches it, except while a search for it runs.
type aside struct {
	j    job
	rec  results.Record // the row's record so far: attempts, throttled, the last error
	why  string         // what made the outcome unknown
	due  time.Time      // local time after which the row may be swept, then resent
	next time.Time      // the next search
	step time.Duration  // the interval after next
	// need is where, on RevCent's clock, the row's window has not yet been
	// swept; end is where it ends.
	need, end time.Time
	searches  int
	final     bool   // the search after the window closed has started
	lastErr   string // the last search or sweep error
	sweeps    int    // failed sweeps
}

// reconciler owns the set-aside rows. Workers hand it rows with setAside;
// it hands rows to resend back on resend, and records adopted rows itself.
type reconciler struct {
	r      *run
	in     chan *aside
	resend chan job
	done   chan struct{} // closed when the reconciler has returned
	wg     sync.WaitGroup
}

func newReconciler(r *run) *reconciler {
	return &reconciler{r: r, in: make(chan *aside, 64), resend: make(chan job), done: make(chan struct{})}
}

// setAside hands a row to the reconciler. It never blocks for long: the
// reconciler always receives.
func (r *run) setAside(a *aside) error {
	select {
	case r.rc.in <- a:
		return nil
	case <-r.rc.done:
		// Stopping: the row stays pending in the journal.
		r.c.inDoubt.Add(1)
		r.closeOpen(1)
		return nil
	}
}

// want is what a row's customer looks like to a search or sweep.
func (r *run) want(a *aside) revcent.Want {
	req := a.j.req
	return revcent.Want{Email: a.j.email, FirstName: strings.ToLower(req.Customer.FirstName), LastName: strings.ToLower(req.Customer.LastName),
		InternalID: req.InternalCustomerID, Since: r.serverTime(a.j.since).Add(-r.allowance())}
}

// serverTime converts a local time to RevCent's clock.
func (r *run) serverTime(t time.Time) time.Time {
	off, _ := r.cfg.Client.ServerOffset()
	return t.Add(off)
}

func (r *run) allowance() time.Duration {
	if _, ok := r.cfg.Client.ServerOffset(); ok {
		return clockAllowance
	}
	return unknownClock
}

// newAside makes a set-aside row of j, whose last request (or the journal
// line that left it in doubt) ended at last.
func (r *run) newAside(j job, rec results.Record, why string, last time.Time) *aside {
	if j.since.IsZero() {
		j.since = last
	}
	now := time.Now()
	a := &aside{j: j, rec: rec, why: why, due: last.Add(r.cfg.Settle), next: now, step: time.Second}
	return a
}

// sweepResult is what one sweep found.
type sweepResult struct {
	lo, hi time.Time
	found  map[*aside]string
	// unsure are rows whose names match a listed customer whose email no
	// answer shows: neither proof that it is theirs nor that it is not.
	unsure map[*aside]string
	err    error
	rows   []*aside
}

type searchResult struct {
	a     *aside
	found revcent.Found
	err   error
}

// loop runs the reconciler until the run has no open row (the reader is
// done and every row is decided) or ctx ends.
func (rc *reconciler) loop(ctx context.Context, readerDone <-chan struct{}) error {
	r := rc.r
	// Its searches and sweeps end with it, whatever ends it: returning
	// with an error would otherwise wait for them while they wait to hand
	// back their answer.
	ctx, cancel := context.WithCancel(ctx)
	defer close(rc.done)
	defer close(rc.resend)
	rows := map[*aside]bool{}
	var queue []job // rows to send again
	searches := make(chan searchResult)
	sweeps := make(chan sweepResult)
	sem := make(chan struct{}, min(max(r.cfg.Concurrency, 1), 16))
	sweeping := false
	var sweepRetry, readyAt time.Time
	var sq searchQueue           // rows to search, by their next search
	waiting := map[*aside]bool{} // rows searched after their window, for a sweep
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	finished := false
	var err error

	defer func() {
		// Rows still set aside stay pending in the journal: --resume
		// reconciles them.
		cancel()
		rc.wg.Wait()
		n := int64(len(rows) + len(queue))
		r.c.inDoubt.Add(n)
		r.closeOpen(n)
		r.reconciling.Store(0)
	}()

	decide := func(a *aside) {
		delete(rows, a)
		delete(waiting, a)
		r.reconciling.Store(int64(len(rows)))
	}
	adopt := func(a *aside, id, how string) {
		decide(a)
		if e := r.adopt(a.rec, id, fmt.Sprintf("reconciled: %s; the request's answer had been: %s", how, a.why)); e != nil && err == nil {
			err = e
		}
	}
	resend := func(a *aside, how string) {
		decide(a)
		if a.rec.Attempts-a.j.before >= r.cfg.MaxAttempts {
			rec := a.rec
			rec.Status, rec.Retryable = results.Failed, "yes"
			rec.Message = fmt.Sprintf("gave up after %d attempts: %s (%s, so it was not created)", rec.Attempts, a.why, how)
			if e := r.finish(rec); e != nil && err == nil {
				err = e
			}
			return
		}
		j := a.j
		j.attempts, j.throttled, j.inDoubt = a.rec.Attempts, a.rec.Throttled, false
		queue = append(queue, j)
	}
	leave := func(a *aside, why string) {
		decide(a)
		r.unknown(a.rec, why)
	}

	for {
		now := time.Now()
		if !finished {
			select {
			case <-readerDone:
				finished = true
				if len(rows) > 0 {
					r.cfg.Log.Info(fmt.Sprintf("input read; reconciling %d rows whose outcome is unknown", len(rows)),
						"rows", len(rows), "settle", r.cfg.Settle.String())
				}
			default:
			}
		}
		if ctx.Err() != nil || err != nil {
			return err
		}
		if finished && len(rows) == 0 && len(queue) == 0 && r.open.Load() == 0 {
			return nil
		}

		// Searches due, earliest first, as many at once as sem allows.
	searches:
		for sq.Len() > 0 && !now.Before(sq[0].next) {
			select {
			case sem <- struct{}{}:
			default:
				break searches
			}
			a := heap.Pop(&sq).(*aside)
			a.searches++
			a.final = !now.Before(a.due)
			want := r.want(a)
			rc.wg.Go(func() {
				defer func() { <-sem }()
				f, e := r.search(ctx, want)
				select {
				case searches <- searchResult{a, f, e}:
				case <-ctx.Done():
				}
			})
		}
		// A sweep of the rows whose window has passed, looked for at most
		// every 100 ms (waiting may hold many rows).
		if !sweeping && !now.Before(sweepRetry) && !now.Before(readyAt) {
			readyAt = now.Add(100 * time.Millisecond)
			if ready := rc.ready(waiting, now); len(ready) > 0 {
				sweeping = true
				rc.wg.Go(func() {
					res := r.sweep(ctx, ready)
					select {
					case sweeps <- res:
					case <-ctx.Done():
					}
				})
			}
		}

		var out chan job
		var next job
		if len(queue) > 0 {
			out, next = rc.resend, queue[0]
		}
		var rd <-chan struct{} // the reader ending, or the last open row, ends the run at once
		if !finished {
			rd = readerDone
		}
		select {
		case <-ctx.Done():
			return nil
		case <-rd:
		case <-r.closed:
		case a := <-rc.in:
			if a.j.since.IsZero() {
				a.j.since = now
			}
			rows[a] = true
			heap.Push(&sq, a)
			r.reconciling.Store(int64(len(rows)))
		case out <- next:
			queue = queue[1:]
		case s := <-searches:
			switch {
			case s.err != nil:
				s.a.lastErr = "search: " + s.err.Error()
			case s.found.ID != "":
				adopt(s.a, s.found.ID, "found by search, created after the row was first sent")
				continue
			}
			if s.a.final {
				waiting[s.a] = true
				continue
			}
			// Searched at 0, 1, 3, 7 ... s after the row was set aside,
			// and once more at the end of the window.
			s.a.next = now.Add(s.a.step)
			s.a.step *= 2
			if s.a.next.After(s.a.due) {
				s.a.next = s.a.due
			}
			heap.Push(&sq, s.a)
		case res := <-sweeps:
			sweeping, readyAt = false, time.Time{}
			if res.err != nil {
				var e *revcent.Error
				unusable := errors.As(res.err, &e) && (e.Class == revcent.Final || e.Class == revcent.Fatal)
				for _, a := range res.rows {
					if !rows[a] {
						continue
					}
					a.lastErr = "listing customers: " + res.err.Error()
					a.sweeps++
					if unusable || a.sweeps >= sweepTries {
						leave(a, fmt.Sprintf("%s; searched %d times without finding it; could not list the customers created over its window to be sure: %v", a.why, a.searches, res.err))
					}
				}
				var e2 *revcent.Error
				if !errors.As(res.err, &e2) {
					e2 = &revcent.Error{}
				}
				sweepRetry = now.Add(r.backoff(max(res.rows[0].sweeps, 1), e2))
				continue
			}
			for a, id := range res.found {
				if rows[a] {
					adopt(a, id, fmt.Sprintf("found among the customers created from %s to %s", res.lo.UTC().Format(time.RFC3339), res.hi.UTC().Format(time.RFC3339)))
				}
			}
			for a, id := range res.unsure {
				if rows[a] {
					leave(a, fmt.Sprintf("%s; customer %s, created since the row was sent, has its names, but RevCent's answers do not show its email: "+
						"check it in RevCent, then rerun with --resume", a.why, id))
				}
			}
			for _, a := range res.rows {
				if !rows[a] {
					continue
				}
				if !a.need.Before(res.lo) && !a.need.After(res.hi) {
					a.need = res.hi.Add(time.Second)
				}
				if !a.end.IsZero() && a.need.After(a.end) {
					resend(a, fmt.Sprintf("no customer with its email was created from %s to %s", a.j.since.UTC().Format(time.RFC3339), a.end.UTC().Format(time.RFC3339)))
				}
			}
		case <-tick.C:
		}
	}
}

// ready returns the waiting rows (searched after their window ended)
// whose window has closed on RevCent's clock, fixing each one's window.
func (rc *reconciler) ready(waiting map[*aside]bool, now time.Time) []*aside {
	r := rc.r
	var out []*aside
	serverNow := r.serverTime(now)
	for a := range waiting {
		if a.end.IsZero() {
			al := r.allowance()
			a.need = r.serverTime(a.j.since).Add(-al).Truncate(time.Second)
			a.end = r.serverTime(a.due).Add(al)
		}
		// Only a stretch of time that has closed on RevCent's clock.
		if serverNow.Add(-time.Second).Before(a.end) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// search runs one customer search for a set-aside row, through the limiter.
func (r *run) search(ctx context.Context, w revcent.Want) (revcent.Found, error) {
	if err := r.polite(ctx); err != nil {
		return revcent.Found{}, err
	}
	sent := time.Now()
	f, err := r.cfg.Client.FindCustomer(ctx, w)
	r.throttledGET(err, sent)
	return f, err
}

// polite waits for the limiter before a GET: reconciliation shares the
// account's limit with the creates.
func (r *run) polite(ctx context.Context) error {
	if err := r.cfg.Limiter.Wait(ctx); err != nil {
		return err
	}
	return r.cfg.Limiter.Start(ctx)
}

func (r *run) throttledGET(err error, sent time.Time) {
	var e *revcent.Error
	if errors.As(err, &e) && e.HTTPStatus == 429 {
		pause := ratelimit.DefaultPause
		if e.HasRetryAfter {
			pause = e.RetryAfter
		}
		r.cfg.Limiter.Throttled(pause, sent)
	}
}

// sweep lists the customers created over the windows of rows (joined where
// they are close), and returns which rows' customers it found. It sweeps
// only up to RevCent's present less the allowance, so that every page it
// reads is of a closed stretch of time and no page shifts under it.
func (r *run) sweep(ctx context.Context, rows []*aside) sweepResult {
	sort.Slice(rows, func(i, j int) bool { return rows[i].need.Before(rows[j].need) })
	// Join the rows' windows into spans.
	type span struct {
		lo, hi time.Time
		rows   []*aside
	}
	var spans []span
	for _, a := range rows {
		if n := len(spans); n > 0 && !a.need.After(spans[n-1].hi.Add(sweepGap)) {
			s := &spans[n-1]
			s.hi = maxTime(s.hi, a.end)
			s.rows = append(s.rows, a)
			continue
		}
		spans = append(spans, span{lo: a.need, hi: a.end, rows: []*aside{a}})
	}
	// One sweep at a time: the first span (the oldest); the rest follow.
	s := spans[0]
	res := sweepResult{lo: s.lo, hi: s.hi, found: map[*aside]string{}, unsure: map[*aside]string{}, rows: s.rows}
	byEmail := map[string][]*aside{}
	byName := map[string][]*aside{}
	wants := map[*aside]revcent.Want{}
	for _, a := range s.rows {
		w := r.want(a)
		wants[a] = w
		byEmail[w.Email] = append(byEmail[w.Email], a)
		byName[w.FirstName+"\x00"+w.LastName] = append(byName[w.FirstName+"\x00"+w.LastName], a)
	}
	campaign := ""
	if len(s.rows) > 0 {
		campaign = s.rows[0].j.req.Campaign
	}
	for page := 1; ; page++ {
		if err := r.polite(ctx); err != nil {
			res.err = err
			return res
		}
		sent := time.Now()
		list, err := r.cfg.Client.ListCustomers(ctx, s.lo, s.hi, page, campaign)
		r.throttledGET(err, sent)
		if err != nil {
			res.err = err
			return res
		}
		for _, c := range list {
			cands := byEmail[strings.ToLower(strings.TrimSpace(c.Email))]
			if !c.HasEmail {
				cands = byName[strings.ToLower(strings.TrimSpace(c.FirstName))+"\x00"+strings.ToLower(strings.TrimSpace(c.LastName))]
				if len(cands) > 0 {
					// The list does not show the email: GetCustomer may.
					// Names alone are not proof here, since the list holds
					// everyone created in the window.
					if full, err := r.cfg.Client.GetCustomer(ctx, c.ID); err == nil && full.HasEmail {
						c.Email, c.HasEmail = full.Email, true
					} else {
						for _, a := range cands {
							if _, ok := res.found[a]; !ok && wants[a].Judge(c) == revcent.Same {
								res.unsure[a] = c.ID
							}
						}
						continue
					}
				}
			}
			for _, a := range cands {
				if wants[a].Judge(c) == revcent.Same {
					res.found[a] = c.ID
					delete(res.unsure, a)
				}
			}
		}
		if len(list) < revcent.ListPageSize {
			return res
		}
	}
}

// searchQueue is a heap of set-aside rows by their next search.
type searchQueue []*aside

func (q searchQueue) Len() int           { return len(q) }
func (q searchQueue) Less(i, j int) bool { return q[i].next.Before(q[j].next) }
func (q searchQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *searchQueue) Push(x any)        { *q = append(*q, x.(*aside)) }
func (q *searchQueue) Pop() any {
	old := *q
	a := old[len(old)-1]
	*q = old[:len(old)-1]
	return a
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
