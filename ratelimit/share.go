package ratelimit

import (
	"context"
	"math"
	"sync"
	"time"
)

// Shared is where importers keep one limit (ratelimit/redislimit keeps it
// in Redis): a token bucket taken request by request, the State every
// importer follows, and the count of answers they were all given in the
// State's window. It is what makes one importer's 429 lower the rate of
// all: the 429's cut reads what the server accepted from every importer.
type Shared interface {
	// Take waits for a token of the shared bucket, at rate r (requests a
	// second, finite) with bursts of burst.
	Take(ctx context.Context, r float64, burst int) error
	// Update adds n to window's count of accepted answers, then runs f on
	// the shared state (the zero State when there is none yet) and the
	// count of its window, atomically: f's change is stored when f returns
	// true. It returns the state as it now is.
	Update(ctx context.Context, window, n int64, f func(st *State, accepted int64) bool) (State, error)
	// Sync adds n to window's count, says this importer is still there,
	// and returns the shared state and how many importers share it.
	Sync(ctx context.Context, window, n int64) (State, int, error)
	// Leave says this importer is gone.
	Leave(ctx context.Context) error
}

// SyncEvery is how often an importer sharing a limit reads the shared
// state (a 429 elsewhere reaches it this late, at most) and adds its
// accepted answers to the shared count.
const SyncEvery = 100 * time.Millisecond

// sharing is a Limiter's link to a Shared store.
type sharing struct {
	store Shared
	lost  func(err error, rate float64, importers int)
	take  chan struct{} // one worker at a time asks the store for a token (a semaphore: a wait that ctx ends)
	once  sync.Once     // the link is lost once
	// importers is how many importers shared the limit at the last sync:
	// a lost link goes on at its share of the rate.
	importers int
	done      chan struct{}
}

// Share keeps l's limit with the importers using store: from now on every
// request takes a token of the shared bucket too, and l follows the shared
// state, which its 429s, probes and rate-limit headers change. The first
// importer's state starts the shared one; a later one lowers its rate to
// its own configured rate, if that is lower. If the store fails, l goes on
// alone at its share of the last shared rate, and calls lost once (not
// with l's lock held). The returned stop leaves the store.
func (l *Limiter) Share(ctx context.Context, store Shared, lost func(err error, rate float64, importers int)) (stop func(), err error) {
	l.mu.Lock()
	mine := l.st
	l.mu.Unlock()
	st, err := store.Update(ctx, 0, 0, func(st *State, _ int64) bool {
		if st.Changed.IsZero() { // no shared state yet: this one starts it
			*st = mine
			return true
		}
		if st.Rate > l.target {
			st.setRate(l.target, time.Now())
			return true
		}
		return false
	})
	if err != nil {
		return nil, err
	}
	_, n, err := store.Sync(ctx, st.Window, 0)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	sh := &sharing{store: store, lost: lost, importers: max(n, 1), done: make(chan struct{}), take: make(chan struct{}, 1)}
	l.mu.Lock()
	l.shared = sh
	l.follow(st)
	l.mu.Unlock()
	l.isShared.Store(true)
	go l.syncLoop(sctx, sh)
	return func() {
		cancel()
		<-sh.done
		if l.isShared.Load() {
			lctx, end := context.WithTimeout(context.Background(), time.Second)
			store.Leave(lctx)
			end()
		}
	}, nil
}

// syncLoop follows the shared state every SyncEvery, and makes the
// shared probes: the one importer whose Update finds a probe due makes it.
func (l *Limiter) syncLoop(ctx context.Context, sh *sharing) {
	defer close(sh.done)
	t := time.NewTicker(SyncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !l.isShared.Load() {
			return
		}
		l.mu.Lock()
		window := l.st.Window
		l.mu.Unlock()
		n := l.unsynced.Swap(0)
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		st, importers, err := sh.store.Sync(cctx, window, n)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				l.lose(err)
			}
			return
		}
		l.mu.Lock()
		sh.importers = max(importers, 1)
		l.follow(st)
		due := st
		l.mu.Unlock()
		if due.probe(time.Now(), l.target) { // on a copy: only a due probe asks the store
			now := time.Now()
			l.updateShared(func(st *State, _ int64) bool { return st.probe(now, l.target) })
		}
	}
}

// takeShared waits for a token of the shared bucket. A store that fails
// loses the link, and the request goes on under the local bucket.
func (l *Limiter) takeShared(ctx context.Context) error {
	l.mu.Lock()
	sh, r, burst := l.shared, l.st.Rate, l.burst
	l.mu.Unlock()
	if sh == nil || math.IsInf(r, 1) {
		return nil
	}
	select {
	case sh.take <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-sh.take }()
	if !l.isShared.Load() {
		return nil
	}
	err := sh.store.Take(ctx, r, burst)
	if err != nil && ctx.Err() == nil {
		l.lose(err)
		return nil
	}
	return err
}

// updateShared runs f on the shared state and follows the result. It
// returns false when the store failed (the link is then lost, and the
// caller decides on the local state instead).
func (l *Limiter) updateShared(f func(st *State, accepted int64) bool) bool {
	l.mu.Lock()
	sh, window := l.shared, l.st.Window
	l.mu.Unlock()
	if sh == nil || !l.isShared.Load() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	n := l.unsynced.Swap(0)
	st, err := sh.store.Update(ctx, window, n, f)
	if err != nil {
		l.lose(err)
		return false
	}
	l.mu.Lock()
	l.follow(st)
	l.mu.Unlock()
	return true
}

// lose ends the link to the store, once: l goes on alone at its share of
// the last shared rate (the rate over the importers that shared it), and
// measures its own window from now.
func (l *Limiter) lose(err error) {
	l.mu.Lock()
	sh := l.shared
	l.mu.Unlock()
	if sh == nil {
		return
	}
	sh.once.Do(func() {
		l.isShared.Store(false)
		now := time.Now()
		l.mu.Lock()
		st := l.st
		share := st.Rate
		if !math.IsInf(share, 1) {
			share = max(minRate, share/float64(sh.importers))
		}
		from := now
		if st.Until.After(now) {
			from = st.Until
		}
		st.setRate(share, from)
		st.Window++
		st.WindowFrom, st.SendFrom, st.Changed = now, from, now
		st.LastGood, st.LastBad = 0, 0
		l.follow(st)
		n := sh.importers
		l.mu.Unlock()
		if sh.lost != nil {
			sh.lost(err, share, n)
		}
	})
}
