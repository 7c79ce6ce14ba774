package ledger

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
)

// SQLite's claims (schema version 5) are rows of their own: one a
// claiming transaction, holding the hashes of the keys it claimed. A
// claim then reads a new person's page and writes nothing to it; the
// person's row is written once, at its outcome. Postgres keeps version
// 4's claims, in people's rows (see postgres.go): its claims run
// concurrently, and there a unique key must keep two runs apart. SQLite
// runs one writing transaction at a time, so a claim read and written in
// one is safe.

// keyHash is what a claim holds of a key: its xxHash64. A claim of one
// key holds any other with its hash too, which can only make a run wait
// or reconcile, never send twice.
func keyHash(key string) int64 { return int64(xxhash.Sum64String(key)) }

// packHashes is a claim's hashes column: 8 bytes each, little-endian.
func packHashes(hs []int64) []byte {
	b := make([]byte, 8*len(hs))
	for i, h := range hs {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(h))
	}
	return b
}

func unpackHashes(b []byte) []int64 {
	hs := make([]int64, len(b)/8)
	for i := range hs {
		hs[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return hs
}

// held is a key a run of this process claimed: on a target, by hash.
type held struct{ run, tid, h int64 }

// claimRow is a claims row: on which target, whose, since when, and the
// hashes it holds.
type claimRow struct {
	id, tid, run, at int64
	hashes           []int64
	dirty            bool
}

// insert adds c as a new claims row, and sets its id.
func (c *claimRow) insert(ctx context.Context, tx *sql.Tx) error {
	return tx.QueryRowContext(ctx, `INSERT INTO claims (target_id, run, at, hashes) VALUES (?, ?, ?, ?) RETURNING id`,
		c.tid, c.run, c.at, packHashes(c.hashes)).Scan(&c.id)
}

// others reads the claims on tid of runs other than run: by hash, those
// holding any of want, and the rows they are in.
func (s *SQLite) others(ctx context.Context, tx *sql.Tx, tid, run int64, want map[int64]bool) (map[int64]*claimRow, []*claimRow, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, run, at, hashes FROM claims WHERE target_id=? AND run<>?`, tid, run)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	out := map[int64]*claimRow{}
	var in []*claimRow
	for rows.Next() {
		c := &claimRow{}
		var b []byte
		if err := rows.Scan(&c.id, &c.run, &c.at, &b); err != nil {
			return nil, nil, err
		}
		c.hashes = unpackHashes(b)
		found := false
		for _, h := range c.hashes {
			if want[h] {
				found = true
				if _, ok := out[h]; !ok {
					out[h] = c
				}
			}
		}
		if found {
			in = append(in, c)
		}
	}
	return out, in, rows.Err()
}

// drop removes hashes from a claims row (gone, at write, when it holds
// none).
func (c *claimRow) drop(hs ...int64) {
	gone := make(map[int64]bool, len(hs))
	for _, h := range hs {
		gone[h] = true
	}
	n := len(c.hashes)
	c.hashes = slices.DeleteFunc(c.hashes, func(h int64) bool { return gone[h] })
	c.dirty = c.dirty || len(c.hashes) != n
}

// aliveIn is alive, in tx, asked once a run.
func (s *SQLite) aliveIn(ctx context.Context, tx *sql.Tx) func(run int64) bool {
	known := map[int64]bool{}
	return func(run int64) bool {
		a, ok := known[run]
		if !ok {
			a = s.alive(ctx, tx, run)
			known[run] = a
		}
		return a
	}
}

// write stores a claims row changed by drop.
func (c *claimRow) write(ctx context.Context, tx *sql.Tx) error {
	if !c.dirty {
		return nil
	}
	var err error
	if len(c.hashes) == 0 {
		_, err = tx.ExecContext(ctx, `DELETE FROM claims WHERE id=?`, c.id)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE claims SET hashes=? WHERE id=?`, packHashes(c.hashes), c.id)
	}
	return err
}

// claimSQLite is ClaimMany on SQLite: in one writing transaction, it reads
// the other runs' claims on the keys' hashes and the keys' rows, then
// writes one claims row for the keys it claims.
func (s *SQLite) claimSQLite(ctx context.Context, target string, keys []string, run int64, known bool) ([]Claim, error) {
	tx, tid, err := s.claimTx(ctx, target)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	uniq := make([]string, 0, len(keys))
	want := make(map[int64]bool, len(keys))
	ours := map[int64]bool{} // hashes this run holds already (a row retried)
	seen := make(map[string]bool, len(keys))
	s.mu.Lock()
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			uniq = append(uniq, k)
			h := keyHash(k)
			want[h] = true
			if _, ok := s.held[held{run, tid, h}]; ok {
				ours[h] = true
			}
		}
	}
	s.mu.Unlock()
	taken, takenRows, err := s.others(ctx, tx, tid, run, want)
	if err != nil {
		return nil, err
	}
	slices.Sort(uniq) // the table's order: its pages met once each
	have, err := s.read(ctx, tx, target, tid, uniq)
	if err != nil {
		return nil, err
	}
	isAlive := s.aliveIn(ctx, tx)
	res := make(map[string]Claim, len(uniq))
	mine := &claimRow{tid: tid, run: run, at: ms(time.Now())}
	for _, key := range uniq {
		h := keyHash(key)
		c, ok := have[key]
		isKnown := ok && c.p.Status != ""
		p := ptr(c.p, isKnown)
		if ours[h] {
			res[key] = Claim{Claimed: true, Known: p}
			continue
		}
		// Another run's claim: in the person's row (an older version of
		// this tool's, written since the ledger was converted), or in a
		// claims row.
		var by, since int64
		var free func() error
		switch t, inRow := taken[h]; {
		case ok && c.by != 0 && c.by != run:
			by, since = c.by, c.at
			free = func() error {
				_, err := tx.StmtContext(ctx, s.release).ExecContext(ctx, key, tid, c.by) // a row only claimed
				return err
			}
		case inRow:
			by, since = t.run, t.at
			free = func() error { t.drop(h); return nil }
		}
		if by != 0 {
			if isAlive(by) {
				res[key] = Claim{HeldBy: by}
				continue
			}
			if err := free(); err != nil { // the run died holding it
				return nil, err
			}
			if !isKnown {
				res[key] = Claim{Claimed: true, Stale: true, StaleSince: fromMS(since), StaleRun: by}
				mine.hashes = append(mine.hashes, h)
				continue
			}
		}
		if isKnown && !known {
			res[key] = Claim{Known: p}
			continue
		}
		res[key] = Claim{Claimed: true, Known: p}
		mine.hashes = append(mine.hashes, h)
	}
	for _, c := range takenRows {
		if err := c.write(ctx, tx); err != nil {
			return nil, err
		}
	}
	if len(mine.hashes) > 0 {
		slices.Sort(mine.hashes)
		if err := mine.insert(ctx, tx); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	for _, h := range mine.hashes {
		s.held[held{run, tid, h}] = mine.id
	}
	s.mu.Unlock()
	out := make([]Claim, len(keys))
	for i, k := range keys {
		out[i] = res[k]
	}
	return out, nil
}

// dropClaims drops, in Settle's transaction on SQLite, the claims of done
// and released: this run's from the claims rows it wrote them to; a key
// this run did not claim (a resumed run's journal, ledger import) from
// the claims of runs that died holding it. It returns the keys to forget
// as held once tx is committed.
func (s *SQLite) dropClaims(ctx context.Context, tx *sql.Tx, run int64, done, released []Person) (map[held]bool, error) {
	gone := map[held]bool{}
	for _, ps := range [][]Person{done, released} {
		for _, p := range ps {
			tid, err := s.targetID(ctx, tx, p.Target, true)
			if err != nil {
				return nil, err
			}
			gone[held{run, tid, keyHash(p.Key)}] = true
		}
	}
	isAlive := s.aliveIn(ctx, tx)
	own := map[int64][]int64{}       // claims.id -> hashes to drop
	elsewhere := map[int64][]int64{} // target id -> hashes
	s.mu.Lock()
	for k := range gone {
		if id, ok := s.held[k]; ok {
			own[id] = append(own[id], k.h)
		} else {
			elsewhere[k.tid] = append(elsewhere[k.tid], k.h)
		}
	}
	s.mu.Unlock()
	for id, hs := range own {
		var b []byte
		err := tx.QueryRowContext(ctx, `SELECT hashes FROM claims WHERE id=?`, id).Scan(&b)
		if errors.Is(err, sql.ErrNoRows) {
			continue // forgotten
		}
		if err != nil {
			return nil, err
		}
		c := &claimRow{id: id, hashes: unpackHashes(b)}
		c.drop(hs...)
		if err := c.write(ctx, tx); err != nil {
			return nil, err
		}
	}
	for tid, hs := range elsewhere {
		want := make(map[int64]bool, len(hs))
		for _, h := range hs {
			want[h] = true
		}
		taken, takenRows, err := s.others(ctx, tx, tid, run, want)
		if err != nil {
			return nil, err
		}
		for h, c := range taken {
			if !isAlive(c.run) {
				c.drop(h)
			}
		}
		for _, c := range takenRows {
			if err := c.write(ctx, tx); err != nil {
				return nil, err
			}
		}
	}
	return gone, nil
}

// forgetSQLite is Forget on SQLite: key's people on every target, and
// every claim of it.
func (s *SQLite) forgetSQLite(ctx context.Context, key string) (int64, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	h := keyHash(key)
	res, err := tx.ExecContext(ctx, `DELETE FROM people WHERE key=?`, key)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, hashes FROM claims`)
	if err != nil {
		return 0, err
	}
	var touched []*claimRow
	for rows.Next() {
		c := &claimRow{}
		var b []byte
		if err := rows.Scan(&c.id, &b); err != nil {
			rows.Close()
			return 0, err
		}
		if c.hashes = unpackHashes(b); slices.Contains(c.hashes, h) {
			c.drop(h)
			touched = append(touched, c)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, c := range touched {
		if err := c.write(ctx, tx); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	for k := range s.held {
		if k.h == h {
			delete(s.held, k)
		}
	}
	s.mu.Unlock()
	return n, nil
}

// claimsFromRows makes the claims an older ledger kept in people's rows
// claims rows, one a run and target, since the run's first: a row only
// claimed goes, and a person's claim is cleared.
func claimsFromRows(tx *sql.Tx) error {
	rows, err := tx.Query(`SELECT target_id, claimed_by, min(claimed_at), group_concat(key, char(10)) FROM people
		WHERE status = '' AND claimed_by <> 0 GROUP BY target_id, claimed_by`)
	if err != nil {
		return err
	}
	var claims []*claimRow
	for rows.Next() {
		c := &claimRow{}
		var keys string
		if err := rows.Scan(&c.tid, &c.run, &c.at, &keys); err != nil {
			rows.Close()
			return err
		}
		for _, k := range strings.Split(keys, "\n") {
			c.hashes = append(c.hashes, keyHash(k))
		}
		slices.Sort(c.hashes)
		claims = append(claims, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range claims {
		if err := c.insert(context.Background(), tx); err != nil {
			return err
		}
	}
	_, err = tx.Exec(`DELETE FROM people WHERE status = ''; UPDATE people SET claimed_by = 0, claimed_at = 0 WHERE claimed_by <> 0`)
	return err
}
