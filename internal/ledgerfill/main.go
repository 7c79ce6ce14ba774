// Command ledgerfill fills a ledger with N people on one target, for
// measuring an import against a large ledger:
//
//	go run ./internal/ledgerfill -ledger /tmp/big.db -n 1000000 -target 'http://127.0.0.1:8080/v2 key=...'
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/revcent-import/revcent-import/ledger"
)

func main() {
	path := flag.String("ledger", "", "the ledger file")
	n := flag.Int("n", 1000000, "people")
	target := flag.String("target", "", "the target, as a results file's run line names it")
	prefix := flag.String("prefix", "fill", "emails are PREFIXi@example.com")
	flag.Parse()
	s, err := ledger.OpenSQLite(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer s.Close()
	ctx := context.Background()
	run, _ := s.StartRun(ctx, ledger.Run{Target: *target, Input: "(ledgerfill)"})
	start := time.Now()
	batch := make([]ledger.Person, 0, 10000)
	for i := 0; i < *n; i++ {
		batch = append(batch, ledger.Person{Target: *target, Key: fmt.Sprintf("email:%s%d@example.com", *prefix, i), CustomerID: fmt.Sprintf("C%019d", i),
			Campaign: "Spring Promo", RequestHash: "0", Status: "created"})
		if len(batch) == cap(batch) || i == *n-1 {
			if err := s.Settle(ctx, run, batch, nil); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			batch = batch[:0]
		}
	}
	fmt.Printf("%d people in %v\n", *n, time.Since(start).Round(time.Millisecond))
}
