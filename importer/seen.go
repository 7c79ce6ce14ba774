package importer

import "math/bits"

// seenSet maps 64-bit email hashes to the first row that carried each: an
// open-addressing table of 12 bytes a slot, at most 4/5 full. Any size
// works (a hash picks its home slot by multiply-shift, not a mask), so a
// million rows take 15 MB, where a power-of-two table would take 24 and a
// Go map with its garbage-collector headroom 60 or more. It is not safe
// for concurrent use.
type seenSet struct {
	keys []uint64 // 0 marks an empty slot; a hash of 0 is stored as 1
	rows []uint32
	n    int
}

const seenMinSlots = 1 << 10

func (s *seenSet) home(h uint64) int {
	hi, _ := bits.Mul64(h, uint64(len(s.keys)))
	return int(hi)
}

// get returns the row stored for hash h.
func (s *seenSet) get(h uint64) (int, bool) {
	if len(s.keys) == 0 {
		return 0, false
	}
	h = max(h, 1)
	for i := s.home(h); ; {
		switch s.keys[i] {
		case h:
			return int(s.rows[i]), true
		case 0:
			return 0, false
		}
		if i++; i == len(s.keys) {
			i = 0
		}
	}
}

// put stores row for h, keeping the smaller row when h is already there.
func (s *seenSet) put(h uint64, row int) {
	if (s.n+1)*5 > len(s.keys)*4 {
		s.resize(max(seenMinSlots, 2*len(s.keys)))
	}
	h = max(h, 1)
	for i := s.home(h); ; {
		switch s.keys[i] {
		case h:
			s.rows[i] = min(s.rows[i], uint32(row))
			return
		case 0:
			s.keys[i], s.rows[i] = h, uint32(row)
			s.n++
			return
		}
		if i++; i == len(s.keys) {
			i = 0
		}
	}
}

func (s *seenSet) resize(size int) {
	old, oldRows := s.keys, s.rows
	s.keys, s.rows, s.n = make([]uint64, size), make([]uint32, size), 0
	for i, k := range old {
		if k != 0 {
			s.put(k, int(oldRows[i]))
		}
	}
}

// reserve sizes the table for n hashes at once, so that it need not
// double (holding old and new tables together) as it fills.
func (s *seenSet) reserve(n int) {
	if size := n*5/4 + 1; n > 0 && s.n == 0 && size > len(s.keys) {
		s.keys, s.rows = make([]uint64, max(size, seenMinSlots)), make([]uint32, max(size, seenMinSlots))
	}
}

// len returns the number of hashes stored.
func (s *seenSet) len() int { return s.n }
