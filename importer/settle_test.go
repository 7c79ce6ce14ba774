package importer

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/revcent-import/revcent-import/ledger"
)

// settleCounter is a ledger store that counts Settle's and Checkpoint's
// calls.
type settleCounter struct {
	ledger.Store
	calls, people, checkpoints int
}

func (s *settleCounter) Checkpoint(context.Context) error {
	s.checkpoints++
	return nil
}

func (s *settleCounter) Settle(_ context.Context, _ int64, done, _ []ledger.Person) error {
	s.calls++
	s.people += len(done)
	return nil
}

func (s *settleCounter) NoteChanged(context.Context, int64, []ledger.Person) error { return nil }

// TestSettleDoesNotWaitTheSecondForMany: outcomes are recorded a second at
// a time, but no more than settleMax wait in memory (with their requests)
// however soon they came.
func TestSettleDoesNotWaitTheSecondForMany(t *testing.T) {
	st := &settleCounter{}
	lr := &ledgerRun{store: st, settled: time.Now()}
	for i := range settleMax - 1 {
		lr.done = append(lr.done, ledger.Person{Key: fmt.Sprint("email:", i)})
	}
	err := lr.flush(context.Background(), false)
	lr.wait()
	if err != nil || st.calls != 0 {
		t.Fatalf("%d settles of %d outcomes within the second (%v), want none", st.calls, settleMax-1, err)
	}
	lr.done = append(lr.done, ledger.Person{Key: "email:last"})
	err = lr.flush(context.Background(), false)
	lr.wait()
	if err != nil || st.calls != 1 || st.people != settleMax {
		t.Errorf("%d settles of %d people with %d outcomes waiting (%v), want 1 of them all", st.calls, st.people, settleMax, err)
	}
}

// blockingSettle is a ledger store whose Settle waits until release is
// closed, and fails with fail when it is set.
type blockingSettle struct {
	ledger.Store
	entered chan struct{}
	release chan struct{}
	fail    error
	calls   atomic.Int32
}

func (s *blockingSettle) Settle(_ context.Context, _ int64, done, _ []ledger.Person) error {
	s.calls.Add(1)
	s.entered <- struct{}{}
	<-s.release
	return s.fail
}

func (s *blockingSettle) NoteChanged(context.Context, int64, []ledger.Person) error { return nil }

// TestSettleLeavesTheWriterFree: the writer hands the ledger its outcomes
// and goes on writing the journal while they are recorded (a settle on
// the writer stopped every worker for its length); one settle at a time,
// the final flush waits for the one in flight, and a failed settle's
// error comes back from the next flush.
func TestSettleLeavesTheWriterFree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &blockingSettle{entered: make(chan struct{}, 4), release: make(chan struct{}), fail: errors.New("disk full")}
		lr := &ledgerRun{store: st, settled: time.Now()}
		for i := range settleMax {
			lr.done = append(lr.done, ledger.Person{Key: fmt.Sprint("email:", i)})
		}
		returned := make(chan error, 1)
		go func() { returned <- lr.flush(context.Background(), false) }()
		<-st.entered
		synctest.Wait()
		select {
		case err := <-returned:
			if err != nil {
				t.Fatalf("flush: %v", err)
			}
		default:
			t.Fatal("flush waits for the ledger's transaction: the writer is held for its length")
		}
		// A second flush while the first settles: nothing more is started.
		for i := range settleMax {
			lr.done = append(lr.done, ledger.Person{Key: fmt.Sprint("email:b", i)})
		}
		if err := lr.flush(context.Background(), false); err != nil || st.calls.Load() != 1 {
			t.Fatalf("a flush during a settle: %d settles (%v), want the one in flight only", st.calls.Load(), err)
		}
		// The final flush waits for the one in flight, then reports its error.
		final := make(chan error, 1)
		go func() { final <- lr.flush(context.Background(), true) }()
		synctest.Wait()
		select {
		case err := <-final:
			t.Fatalf("the final flush returned (%v) before the settle in flight ended", err)
		default:
		}
		close(st.release)
		if err := <-final; !errors.Is(err, st.fail) {
			t.Fatalf("final flush after a failed settle: %v, want %v", err, st.fail)
		}
	})
}

// TestSettleBehindHoldsTheWriter: when settleBehind outcomes wait behind
// the settle in flight, the writer's flush waits for it (memory stays
// bounded), and if it failed returns its error instead of starting
// another.
func TestSettleBehindHoldsTheWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &blockingSettle{entered: make(chan struct{}, 4), release: make(chan struct{}), fail: errors.New("disk full")}
		lr := &ledgerRun{store: st, settled: time.Now()}
		add := func(prefix string, n int) {
			for i := range n {
				lr.done = append(lr.done, ledger.Person{Key: fmt.Sprint("email:", prefix, i)})
			}
		}
		add("a", settleMax)
		if err := lr.flush(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		<-st.entered
		add("b", settleBehind)
		returned := make(chan error, 1)
		go func() { returned <- lr.flush(context.Background(), false) }()
		synctest.Wait()
		select {
		case err := <-returned:
			t.Fatalf("flush returned (%v) with %d outcomes behind the settle in flight, want it to wait", err, settleBehind)
		default:
		}
		close(st.release)
		if err := <-returned; !errors.Is(err, st.fail) || st.calls.Load() != 1 {
			t.Errorf("after the settle in flight failed: %v and %d settles, want %v and 1", err, st.calls.Load(), st.fail)
		}
	})
}

// TestTimedSettlesCheckpoint: a settle taken because time passed copies
// the ledger's log into its file, at most once a second; one taken
// because settleMax outcomes waited, or at the run's end, does not (the
// log's own checkpoints and the closing do).
func TestTimedSettlesCheckpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &settleCounter{}
		lr := &ledgerRun{store: st}
		settle := func(b *settleBatch) {
			t.Helper()
			if err := lr.settle(context.Background(), b); err != nil {
				t.Fatal(err)
			}
		}
		one := []ledger.Person{{Key: "email:a@example.com"}}
		for _, step := range []struct {
			name  string
			b     *settleBatch
			sleep time.Duration
			want  int
		}{
			{"a timed settle", &settleBatch{done: one, timed: true}, 0, 1},
			{"another within the second", &settleBatch{done: one, timed: true}, settleEvery / 2, 1},
			{"one a second after the first", &settleBatch{done: one, timed: true}, settleEvery / 2, 2},
			{"settleMax outcomes, or the end", &settleBatch{done: one}, 2 * settleEvery, 2},
		} {
			time.Sleep(step.sleep)
			settle(step.b)
			if st.checkpoints != step.want {
				t.Fatalf("after %s: %d checkpoints, want %d", step.name, st.checkpoints, step.want)
			}
		}
	})
}
