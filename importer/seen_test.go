package importer

import (
	"math/rand/v2"
	"testing"
)

func TestSeenSetMatchesAMap(t *testing.T) {
	var s seenSet
	ref := map[uint64]int{}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 1; i <= 200_000; i++ {
		// Small keys collide on purpose, 0 and 1 share a slot by design.
		h := r.Uint64()
		if i%7 == 0 {
			h = uint64(r.IntN(1000)) + 2
		}
		row := r.IntN(1_000_000) + 1
		s.put(h, row)
		if prev, ok := ref[h]; !ok || row < prev {
			ref[h] = row
		}
	}
	if s.len() != len(ref) {
		t.Fatalf("len %d, want %d", s.len(), len(ref))
	}
	for h, want := range ref {
		if got, ok := s.get(h); !ok || got != want {
			t.Fatalf("get(%d) = %d, %v; want %d", h, got, ok, want)
		}
	}
	for range 10_000 {
		h := r.Uint64()
		if _, in := ref[h]; !in {
			if _, ok := s.get(h); ok {
				t.Fatalf("get(%d) found a hash never put", h)
			}
		}
	}
	var empty seenSet
	if _, ok := empty.get(42); ok {
		t.Fatal("empty set found something")
	}
	s.put(0, 5)
	if row, ok := s.get(0); !ok || row > 5 {
		t.Errorf("hash 0: %d %v", row, ok)
	}
}

func BenchmarkSeenSet(b *testing.B) {
	keys := make([]uint64, 1<<20)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range keys {
		keys[i] = r.Uint64()
	}
	b.Run("seenSet", func(b *testing.B) {
		for b.Loop() {
			var s seenSet
			for i, k := range keys {
				if _, ok := s.get(k); !ok {
					s.put(k, i+1)
				}
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		for b.Loop() {
			m := map[uint64]int{}
			for i, k := range keys {
				if _, ok := m[k]; !ok {
					m[k] = i + 1
				}
			}
		}
	})
}

func TestSeenSetReserve(t *testing.T) {
	var s seenSet
	s.reserve(1000)
	size := len(s.keys)
	if size != 1251 {
		t.Fatalf("reserve(1000): %d slots, want 1251 (1000 at most 4/5 full)", size)
	}
	for i := range 1000 {
		s.put(uint64(i)*0x9e3779b97f4a7c15+1, i+1)
	}
	if len(s.keys) != size || s.len() != 1000 {
		t.Errorf("the table grew (%d slots) or lost hashes (%d)", len(s.keys), s.len())
	}
	last := uint64(999)
	if row, ok := s.get(last*0x9e3779b97f4a7c15 + 1); !ok || row != 1000 {
		t.Errorf("get after reserve: %d %v", row, ok)
	}
}
