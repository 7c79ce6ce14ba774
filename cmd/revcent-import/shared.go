package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/revcent-import/revcent-import/ratelimit"
	"github.com/revcent-import/revcent-import/ratelimit/redislimit"
)

// sharedLimit is --shared-limit: the limiter's link to a limit in Redis,
// and what the summary says of it.
type sharedLimit struct {
	store *redislimit.Store
	mu    sync.Mutex
	lost  string // why and when the link was lost, "" while it held
}

// start opens the store at u and shares limiter's limit there. The stop it
// returns leaves the store and closes it.
func (s *sharedLimit) start(ctx context.Context, u string, limiter *ratelimit.Limiter, log *slog.Logger) (func(), error) {
	store, err := redislimit.Open(ctx, u)
	if err != nil {
		return nil, err
	}
	stop, err := limiter.Share(ctx, store, func(err error, r float64, n int) {
		if math.IsInf(r, 1) {
			r = 0 // no rate: rateText says unlimited
		}
		msg := fmt.Sprintf("lost at %s: Redis at %s %s; went on alone at %s, its share of the shared rate (shared by %d)",
			time.Now().Format(time.TimeOnly), store.Addr(), redislimit.Describe(err), rateText(r), n)
		log.Warn("shared limit lost: going on alone", "shared_limit", store.Where(), "why", redislimit.Describe(err),
			"rate", rateText(r), "importers", n)
		s.mu.Lock()
		s.lost = msg
		s.mu.Unlock()
	})
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("--shared-limit %s: Redis %s", store.Where(), redislimit.Describe(err))
	}
	s.store = store
	log.Info("shared limit", "shared_limit", store.Where(), "rate", rateText(limiter.Limit()))
	return func() {
		stop()
		store.Close()
	}, nil
}

// report is the summary's line: where the limit was shared, and whether
// the link held.
func (s *sharedLimit) report() string {
	if s.store == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lost != "" {
		return s.store.Where() + ", " + s.lost
	}
	return s.store.Where() + ", held to the end"
}
