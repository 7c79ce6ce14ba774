package ratelimit

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestRateHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(100, 1)
		start := time.Now()
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 25 {
					if err := l.Wait(context.Background()); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		// 200 requests at 100/s with a burst of 1: the first is free.
		if got := time.Since(start); got != 1990*time.Millisecond {
			t.Errorf("200 requests took %v, want 1.99s", got)
		}
	})
}

func TestUnlimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(0, 0)
		start := time.Now()
		for range 1000 {
			l.Wait(context.Background())
		}
		if time.Since(start) != 0 || l.Limit() != 0 {
			t.Errorf("rate 0 waited %v, limit %v", time.Since(start), l.Limit())
		}
	})
}

func TestThrottledPausesEveryone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(0, 1)
		l.Throttled(3 * time.Second)
		l.Throttled(time.Second) // a shorter pause never shortens the current one
		start := time.Now()
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() { l.Wait(context.Background()) })
		}
		wg.Wait()
		if got := time.Since(start); got != 3*time.Second {
			t.Errorf("waited %v, want 3s", got)
		}
		l.Throttled(DefaultPause)
		start = time.Now()
		l.Wait(context.Background())
		if got := time.Since(start); got != DefaultPause || l.Throttles() != 3 {
			t.Errorf("waited %v after a 429 without Retry-After, want %v; throttles %d", got, DefaultPause, l.Throttles())
		}
	})
}

func TestWaitCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(1, 1)
		l.Throttled(time.Hour)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := l.Wait(ctx); err != context.DeadlineExceeded {
			t.Errorf("Wait = %v, want the context's error", err)
		}
	})
}
