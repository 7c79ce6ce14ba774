package ledger

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkLedgerRow is the ledger's work for one new person, as an import
// does it in batches of 64: its claim, then its outcome. ns/op is per
// person.
func BenchmarkLedgerRow(b *testing.B) {
	ctx := context.Background()
	s, err := OpenSQLite(filepath.Join(b.TempDir(), "ledger.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	run, _ := s.StartRun(ctx, Run{Target: "T", Input: "in.csv", Results: "r.csv"})
	const batch = 64
	keys := make([]string, batch)
	done := make([]Person, batch)
	b.ResetTimer()
	for n := 0; n < b.N; n += batch {
		for i := range keys {
			keys[i] = fmt.Sprintf("email:p%d@example.com", n+i)
			done[i] = Person{Target: "T", Key: keys[i], CustomerID: fmt.Sprint("C", n+i), Campaign: "Spring Promo", RequestHash: "0123456789abcdef", Status: "created"}
		}
		if _, err := s.ClaimMany(ctx, "T", keys, run, false); err != nil {
			b.Fatal(err)
		}
		if err := s.Settle(ctx, run, done, nil); err != nil {
			b.Fatal(err)
		}
	}
}
