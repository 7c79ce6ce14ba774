package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// BenchmarkLedgerRow is the ledger's work for one new person, as an import
// does it in batches: its claim, then its outcome with the request sent.
// Keys come in no order (as a list's emails do), so that a batch meets as
// many pages as an import's does. ns/op is per person.
func BenchmarkLedgerRow(b *testing.B) {
	for _, batch := range []int{64, 256} {
		b.Run(fmt.Sprint("batch=", batch), func(b *testing.B) {
			ctx := context.Background()
			s, err := OpenSQLite(filepath.Join(b.TempDir(), "ledger.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			run, _ := s.StartRun(ctx, Run{Target: "T", Input: "in.csv", Results: "r.csv"})
			keys := make([]string, batch)
			done := make([]Person, batch)
			req := `{"campaign":"Spring Promo","customer":{"first_name":"Ada","last_name":"Lovelace","phone":"+14155550100","address_line_1":"12 Analytical Way","city":"London","state":"","zip":"N1 9GU","country":"GBR"},"internal_customer_id":"` + strings.Repeat("x", 200) + `"}`
			b.ResetTimer()
			for n := 0; n < b.N; n += batch {
				for i := range keys {
					keys[i] = fmt.Sprintf("email:%x@example.com", xxhash.Sum64String(fmt.Sprint(n+i)))
					done[i] = Person{Target: "T", Key: keys[i], CustomerID: fmt.Sprint("C", n+i), Campaign: "Spring Promo", RequestHash: "0123456789abcdef", Status: "created", Request: req}
				}
				if _, err := s.ClaimMany(ctx, "T", keys, run, false); err != nil {
					b.Fatal(err)
				}
				if err := s.Settle(ctx, run, done, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLedgerDesigns puts the ledger's cost a new person beside what
// other designs in this SQLite would cost, in one run, the way an import
// works: claims of 512 keys a transaction, then the 4,096 outcomes of those
// claims in one transaction, in key order, with their requests. ns/op is
// per person.
//
//   - store: this package's SQLite store (ClaimMany, then Settle).
//   - claim-rows: a sketch of a cheaper schema. A person is a row appended
//     in rowid order, found by an index on an 8-byte hash of its key; a
//     claim is a row of a small table of claims in flight (its pages stay
//     in the cache), deleted by the outcome; a settle's requests are one
//     JSON array, one row.
//   - no-claims: the sketch without claims (not safe for two importers).
//   - floor: the sketch's person rows alone, short (no request, no
//     lookup, no claim): the least one row a person costs.
func BenchmarkLedgerDesigns(b *testing.B) {
	const claimRows, settleRows, stmtRows = 512, 4096, 256
	req := `{"campaign":"Spring Promo","customer":{"first_name":"Ada","last_name":"Lovelace","phone":"+14155550100","address_line_1":"12 Analytical Way","city":"London","state":"","zip":"N1 9GU","country":"GBR"},"internal_customer_id":"C-1001"}`
	keysFor := func(n int) ([]string, []any) {
		keys, hashes := make([]string, settleRows), make([]any, settleRows)
		for i := range keys {
			keys[i] = fmt.Sprintf("email:%x@example.com", xxhash.Sum64String(fmt.Sprint(n+i)))
		}
		slices.Sort(keys)
		for i, k := range keys {
			hashes[i] = int64(xxhash.Sum64String(k))
		}
		return keys, hashes
	}
	open := func(b *testing.B) *SQLite {
		s, err := OpenSQLite(filepath.Join(b.TempDir(), "ledger.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}
	b.Run("store", func(b *testing.B) {
		ctx := context.Background()
		s := open(b)
		run, _ := s.StartRun(ctx, Run{Target: "T", Input: "in.csv", Results: "r.csv"})
		done := make([]Person, settleRows)
		for n := 0; n < b.N; n += settleRows {
			b.StopTimer()
			keys, _ := keysFor(n)
			for i, k := range keys {
				done[i] = Person{Target: "T", Key: k, CustomerID: "C0123456789", Campaign: "Spring Promo", RequestHash: "0123456789abcdef", Status: "created", Request: req}
			}
			rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
			b.StartTimer()
			for i := 0; i < settleRows; i += claimRows {
				if _, err := s.ClaimMany(ctx, "T", keys[i:i+claimRows], run, false); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.Settle(ctx, run, done, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	sketch := func(b *testing.B, lookup, claim, requests bool) {
		s := open(b)
		exec := func(q string) {
			if _, err := s.db.Exec(q); err != nil {
				b.Fatal(err)
			}
		}
		exec(`CREATE TABLE sketch_people (id INTEGER PRIMARY KEY, h INTEGER NOT NULL, target_id INTEGER NOT NULL, key TEXT NOT NULL,
			customer_id TEXT NOT NULL, campaign TEXT NOT NULL, request_hash TEXT NOT NULL, status TEXT NOT NULL,
			first_run INTEGER NOT NULL, last_run INTEGER NOT NULL, first_at INTEGER NOT NULL, last_at INTEGER NOT NULL,
			requests_id INTEGER NOT NULL, request_index INTEGER NOT NULL);
			CREATE INDEX sketch_people_h ON sketch_people (h);
			CREATE TABLE sketch_claims (h INTEGER NOT NULL, target_id INTEGER NOT NULL, key TEXT NOT NULL, run INTEGER NOT NULL, at INTEGER NOT NULL,
			  PRIMARY KEY (h, target_id)) WITHOUT ROWID;
			CREATE TABLE sketch_requests (id INTEGER PRIMARY KEY, requests TEXT NOT NULL)`)
		prepare := func(q string) *sql.Stmt {
			st, err := s.db.Prepare(q)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			return st
		}
		find := prepare(`SELECT key, customer_id, status FROM sketch_people WHERE target_id = 1 AND h IN (` + marks(stmtRows, 1) + `)`)
		take := prepare(`INSERT OR IGNORE INTO sketch_claims (h, target_id, key, run, at) VALUES ` + marks(stmtRows, 5) + ` RETURNING h`)
		add := prepare(`INSERT INTO sketch_people (h, target_id, key, customer_id, campaign, request_hash, status, first_run, last_run, first_at, last_at, requests_id, request_index) VALUES ` + marks(stmtRows, 13))
		drop := prepare(`DELETE FROM sketch_claims WHERE target_id = 1 AND h IN (` + marks(stmtRows, 1) + `)`)
		keep := prepare(`INSERT INTO sketch_requests (requests) VALUES (?)`)
		query := func(tx *sql.Tx, st *sql.Stmt, args []any) {
			rows, err := tx.Stmt(st).Query(args...)
			if err != nil {
				b.Fatal(err)
			}
			for rows.Next() {
			}
			if rows.Close(); rows.Err() != nil {
				b.Fatal(rows.Err())
			}
		}
		var args []any
		for n := 0; n < b.N; n += settleRows {
			b.StopTimer()
			keys, hashes := keysFor(n)
			order := rand.Perm(settleRows)
			b.StartTimer()
			if lookup || claim {
				for c := 0; c < settleRows; c += claimRows {
					tx, err := s.db.Begin()
					if err != nil {
						b.Fatal(err)
					}
					for i := c; i < c+claimRows; i += stmtRows {
						args = args[:0]
						for _, j := range order[i : i+stmtRows] {
							args = append(args, hashes[j])
						}
						query(tx, find, args)
						if claim {
							args = args[:0]
							for _, j := range order[i : i+stmtRows] {
								args = append(args, hashes[j], 1, keys[j], 7, 1765000000000)
							}
							query(tx, take, args)
						}
					}
					if err := tx.Commit(); err != nil {
						b.Fatal(err)
					}
				}
			}
			tx, err := s.db.Begin()
			if err != nil {
				b.Fatal(err)
			}
			var id int64
			if requests {
				var all strings.Builder
				all.WriteByte('[')
				for i := range settleRows {
					if i > 0 {
						all.WriteByte(',')
					}
					all.WriteString(req)
				}
				all.WriteByte(']')
				res, err := tx.Stmt(keep).Exec(all.String())
				if err != nil {
					b.Fatal(err)
				}
				id, _ = res.LastInsertId()
			}
			for i := 0; i < settleRows; i += stmtRows {
				args = args[:0]
				for j := i; j < i+stmtRows; j++ {
					if requests {
						args = append(args, hashes[j], 1, keys[j], "C0123456789", "Spring Promo", "0123456789abcdef", "created", 7, 7, 1765000000000, 1765000000000, id, j)
					} else {
						args = append(args, hashes[j], 1, keys[j], "C0123456789", "", "", "created", 7, 7, 1765000000000, 1765000000000, 0, 0)
					}
				}
				if _, err := tx.Stmt(add).Exec(args...); err != nil {
					b.Fatal(err)
				}
				if claim {
					if _, err := tx.Stmt(drop).Exec(hashes[i : i+stmtRows]...); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("claim-rows", func(b *testing.B) { sketch(b, true, true, true) })
	b.Run("no-claims", func(b *testing.B) { sketch(b, true, false, true) })
	b.Run("floor", func(b *testing.B) { sketch(b, false, false, false) })
}
