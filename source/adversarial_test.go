package source

import (
	"io"
	"strings"
	"testing"
)

// TestStrayQuoteRecoveryIsLinear reads inputs built to make quote recovery
// replay as much as it can, and counts the lines handed to the CSV parser,
// replays included: at most twice the input's, whatever its size.
func TestStrayQuoteRecoveryIsLinear(t *testing.T) {
	patterns := map[string]func(i int) string{
		"every line opens a quote": func(i int) string { return "1,\"x\n" },
		"quotes that close oddly":  func(i int) string { return "\"a\"b,\"c\n" },
		"a stray quote every 10": func(i int) string {
			if i%10 == 0 {
				return "1,\"x\n"
			}
			return "1,2\n"
		},
		"a stray quote, then 999 lines": func(i int) string {
			if i%1000 == 0 {
				return "1,\"x\n"
			}
			return "1,2\n"
		},
		"a stray quote, then 5000 lines": func(i int) string {
			if i%5000 == 0 {
				return "1,\"x\n"
			}
			return "1,2\n"
		},
	}
	for name, line := range patterns {
		for _, n := range []int{5000, 50000} {
			var b strings.Builder
			b.WriteString("a,b\n")
			for i := range n {
				b.WriteString(line(i))
			}
			r, _, err := Open("-", strings.NewReader(b.String()), Options{})
			if err != nil {
				t.Fatal(err)
			}
			rows := 0
			for {
				_, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				rows++
			}
			fed := r.(*closing).Reader.(*csvReader).feed.fed
			if rows == 0 || fed > 2*(n+1) {
				t.Errorf("%s, %d lines: %d rows, %d lines fed to the parser (more than twice the input)", name, n, rows, fed)
			}
		}
	}
}
