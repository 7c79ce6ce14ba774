package ledger

import (
	"context"
	"fmt"
	"path/filepath"
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
