package ratelimit

import (
	"testing"
	"time"
)

// BenchmarkAcceptedFor is the cost of recording an answer, from 32
// goroutines at once: with a configured rate it takes the lock until the
// first pause ends (what the server took at once is counted under it);
// with none (--rate 0) it only adds to a counter.
func BenchmarkAcceptedFor(b *testing.B) {
	for _, bc := range []struct {
		name string
		rate float64
	}{{"rate 1e6, before any 429", 1e6}, {"no rate", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			l := New(bc.rate, 1)
			sent := time.Now()
			b.SetParallelism(16) // 32 goroutines on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					l.AcceptedFor(sent)
				}
			})
		})
	}
}
