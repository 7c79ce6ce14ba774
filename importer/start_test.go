package importer

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/revcent-import/revcent-import/ledger"
)

// startRun is a run of in with no ledger, no writer and no workers: its
// jobs and messages queue up, for a test to read.
func startRun(t *testing.T, in string) *run {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	src, info, mapper, err := open(Input{Path: in, Campaign: "Spring Promo"}, log, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	r := &run{cfg: Config{Log: log}, src: src, in: info, prep: newPreparer(mapper, info.EstimatedRows),
		jobs: make(chan job, 1000), inbox: make(chan msg, 1000), writerDone: make(chan struct{}), firstOut: make(chan struct{})}
	r.firstDone = sync.OnceFunc(func() { close(r.firstOut) })
	return r
}

// TestTheParserHandsOverSmallBatchesFirst: the first batch is 8 rows, and
// each is twice the last, up to 256: the first request waits for the first
// batch (256 rows took 8-11 ms to parse, decide and claim).
func TestTheParserHandsOverSmallBatchesFirst(t *testing.T) {
	r := startRun(t, csvFile(t, 1000))
	out, stop := make(chan rowBatch), make(chan struct{})
	defer close(stop)
	go r.parse(out, stop)
	var sizes []int
	next := 1
	for b := range out {
		sizes = append(sizes, len(b.rows))
		for _, row := range b.rows {
			if row.Record != next {
				t.Fatalf("row %d where %d was next", row.Record, next)
			}
			next++
		}
	}
	want := []int{8, 16, 32, 64, 128, 256, 256, 240}
	if len(sizes) != len(want) {
		t.Fatalf("batches of %v, want %v", sizes, want)
	}
	for i := range want {
		if sizes[i] != want[i] {
			t.Fatalf("batches of %v, want %v", sizes, want)
		}
	}
}

// TestTheReaderWaitsForTheFirstRequest: after its first batch the reader
// decides no more rows until the first request is out (firstDone), or
// readerWait has passed: deciding ahead took both cores while the first
// request connected.
func TestTheReaderWaitsForTheFirstRequest(t *testing.T) {
	in := csvFile(t, 100)
	for _, signal := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			r := startRun(t, in)
			done := make(chan error, 1)
			start := time.Now()
			go func() { done <- r.read(context.Background()) }()
			synctest.Wait()
			if n := len(r.jobs); n != firstBatch {
				t.Fatalf("%d rows handed on before the first request, want the first batch's %d", n, firstBatch)
			}
			if signal {
				r.firstDone()
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if n := len(r.jobs); n != 100 {
				t.Errorf("%d rows handed on in all, want 100", n)
			}
			waited := time.Since(start)
			if signal && waited != 0 || !signal && waited != readerWait {
				t.Errorf("first request out %v: the reader waited %v", signal, waited)
			}
		})
	}
}

// TestOutcomesSettleOftenerInTheTail: once every row is read, a settle is
// due after a tenth of settleEvery; only a settle due to time (not to
// settleMax outcomes waiting, nor the run's end) checkpoints the store.
func TestOutcomesSettleOftenerInTheTail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lr := &ledgerRun{settled: time.Now()}
		lr.done = []ledger.Person{{Key: "email:a@example.com"}}
		time.Sleep(settleEvery / 10)
		if b := lr.take(false); b != nil {
			t.Fatalf("a settle due %v after the last, before the tail", settleEvery/10)
		}
		lr.tail.Store(true)
		b := lr.take(false)
		if b == nil || len(b.done) != 1 || !b.timed {
			t.Fatalf("in the tail, %v after the last: %+v, want the outcome, timed", settleEvery/10, b)
		}
		lr.done = make([]ledger.Person, settleMax)
		if b := lr.take(false); b == nil || b.timed {
			t.Errorf("settleMax outcomes waiting: %+v, want them, not timed", b)
		}
		lr.done = []ledger.Person{{Key: "email:b@example.com"}}
		if b := lr.take(true); b == nil || b.timed {
			t.Errorf("the run's end: %+v, want the outcome, not timed", b)
		}
	})
}

// csvFile is a CRM export of n prospects in a file of its own.
func csvFile(t *testing.T, n int) string {
	content, _ := crmCSV(t, n)
	p := filepath.Join(t.TempDir(), "c.csv")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
