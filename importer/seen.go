package importer

// seenSet maps 64-bit email hashes to the first row that carried each: an
// open-addressing table of 12 bytes a slot, kept at most 3/4 full, so a
// million rows cost about 16-24 MB instead of the 60+ of a Go map with its
// garbage-collector headroom. It is not safe for concurrent use.
type seenSet struct {
	keys []uint64 // 0 marks an empty slot; a hash of 0 is stored as 1
	rows []uint32
	n    int
}

const seenMinSlots = 1 << 10

// get returns the row stored for hash h.
func (s *seenSet) get(h uint64) (int, bool) {
	if len(s.keys) == 0 {
		return 0, false
	}
	h = max(h, 1)
	mask := uint64(len(s.keys) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.keys[i] {
		case h:
			return int(s.rows[i]), true
		case 0:
			return 0, false
		}
	}
}

// put stores row for h, keeping the smaller row when h is already there.
func (s *seenSet) put(h uint64, row int) {
	if (s.n+1)*4 > len(s.keys)*3 {
		s.grow()
	}
	h = max(h, 1)
	mask := uint64(len(s.keys) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.keys[i] {
		case h:
			s.rows[i] = min(s.rows[i], uint32(row))
			return
		case 0:
			s.keys[i], s.rows[i] = h, uint32(row)
			s.n++
			return
		}
	}
}

func (s *seenSet) grow() {
	old, oldRows := s.keys, s.rows
	size := max(seenMinSlots, 2*len(old))
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
	if n <= 0 || s.n > 0 {
		return
	}
	size := seenMinSlots
	for size*3 < n*4 {
		size *= 2
	}
	if size > len(s.keys) {
		s.keys, s.rows = make([]uint64, size), make([]uint32, size)
	}
}

// len returns the number of hashes stored.
func (s *seenSet) len() int { return s.n }
