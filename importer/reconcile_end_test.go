package importer

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/revcent-import/revcent-import/revcent"
)

// TestRunEndsWhenTheLastRowCloses: the reconciler, which ends the run's
// sending, returns as soon as the reader is done and the last open row is
// decided. It used to see either only on its 50 ms tick, and every run
// ended up to 50 ms late (a 1-row import took 70 ms, 30 ms after).
func TestRunEndsWhenTheLastRowCloses(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lastOpen bool // the last row is decided after the reader is done
	}{
		{"the reader ends last", false},
		{"the last row closes last", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := &run{cfg: Config{Concurrency: 4, Client: &revcent.Client{}}, closed: make(chan struct{}, 1)}
				r.rc = newReconciler(r)
				readerDone := make(chan struct{})
				r.open.Add(1)
				returned := make(chan time.Time, 1)
				start := time.Now()
				go func() {
					if err := r.rc.loop(context.Background(), readerDone); err != nil {
						t.Error(err)
					}
					returned <- time.Now()
				}()
				time.Sleep(time.Millisecond) // the loop is waiting
				if tc.lastOpen {
					close(readerDone)
					time.Sleep(time.Millisecond)
					r.closeOpen(1)
				} else {
					r.closeOpen(1)
					time.Sleep(time.Millisecond)
					close(readerDone)
				}
				at := <-returned
				if got := at.Sub(start); got != 2*time.Millisecond {
					t.Errorf("the reconciler returned %v after the start, want 2ms: when the run's last thing happened", got)
				}
			})
		})
	}
}
