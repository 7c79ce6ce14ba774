package importer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/revcent-import/revcent-import/ledger"
)

// settleCounter is a ledger store that counts Settle's calls.
type settleCounter struct {
	ledger.Store
	calls, people int
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
	if err := lr.flush(context.Background(), false); err != nil || st.calls != 0 {
		t.Fatalf("%d settles of %d outcomes within the second (%v), want none", st.calls, settleMax-1, err)
	}
	lr.done = append(lr.done, ledger.Person{Key: "email:last"})
	if err := lr.flush(context.Background(), false); err != nil || st.calls != 1 || st.people != settleMax {
		t.Errorf("%d settles of %d people with %d outcomes waiting (%v), want 1 of them all", st.calls, st.people, settleMax, err)
	}
}
