package importer

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/revcent-import/revcent-import/results"
)

// TestOutcomesTheWriterNeverWrote: once the writer has stopped, a row's
// outcome handed to it is lost, whether send saw the writer gone or
// found room in its inbox. Only a row whose request was sent, whose
// pending line stays in the journal, counts in doubt, and once: a row the
// ledger knew (no request) is unsent, and a pending line handed over by
// unknown was counted there.
func TestOutcomesTheWriterNeverWrote(t *testing.T) {
	gone := make(chan struct{})
	close(gone)

	// send fails: the writer is gone, and its inbox has no room.
	full := &run{inbox: make(chan msg), writerDone: gone, closed: make(chan struct{}, 1)}
	full.open.Store(100)
	if err := full.finish(results.Record{Row: 1, Status: results.Existing, CustomerID: "C1"}); !errors.Is(err, errWriterGone) {
		t.Fatalf("finish: %v, want the writer gone", err)
	}
	if err := full.finish(results.Record{Row: 2, Status: results.Created, CustomerID: "C2", Attempts: 1}); !errors.Is(err, errWriterGone) {
		t.Fatalf("finish: %v, want the writer gone", err)
	}
	if n := full.c.inDoubt.Load(); n != 1 {
		t.Errorf("send refused: %d rows in doubt, want 1 (the row sent; not the one the ledger knew)", n)
	}

	// send finds room in the inbox: the writer stopped before reading it.
	r := &run{cfg: Config{Log: slog.New(slog.DiscardHandler)}, inbox: make(chan msg, 8), writerDone: make(chan struct{}), closed: make(chan struct{}, 1)}
	r.open.Store(100)
	r.inbox <- msg{kind: mRecord, rec: results.Record{Row: 3, Status: results.Created, CustomerID: "C3", Attempts: 1}}
	r.inbox <- msg{kind: mRecord, rec: results.Record{Row: 4, Status: results.Failed, Attempts: 2}}
	r.inbox <- msg{kind: mRecord, rec: results.Record{Row: 5, Status: results.Existing, CustomerID: "C5"}}
	r.inbox <- msg{kind: mPending, rec: results.Record{Row: 6, Status: results.Pending, Attempts: 1}}
	r.inbox <- msg{kind: mRecord, rec: results.Record{Row: 7, Status: results.Invalid}}
	r.unknown(results.Record{Row: 8, Status: results.Pending, Attempts: 1}, "no answer") // counted in doubt here
	close(r.writerDone)
	close(r.inbox)
	r.countUnwritten()
	if n := r.c.inDoubt.Load(); n != 3 {
		t.Errorf("in the inbox: %d rows in doubt, want 3 (rows 3, 4 sent; row 8 once)", n)
	}
}
