package source

import (
	"io"
	"strings"
	"testing"
)

// checkStream reads every row of an input and checks the Reader's
// invariants: no panic, records numbered 1, 2, 3..., lines never going
// backwards, a row error or values but never a silent gap.
func checkStream(t *testing.T, data string, opts Options) {
	r, _, err := Open("-", strings.NewReader(data), opts)
	if err != nil {
		return // a bad header is reported, not a panic
	}
	defer r.Close()
	prevLine := 0
	for want := 1; ; want++ {
		row, err := r.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			return // an I/O or decoding error ends the input with an error
		}
		if row.Record != want {
			t.Fatalf("record %d, want %d", row.Record, want)
		}
		if row.Line < prevLine || row.Line < 1 {
			t.Fatalf("record %d starts on line %d after line %d", row.Record, row.Line, prevLine)
		}
		prevLine = row.Line
		if len(row.Values) > len(r.Columns()) {
			t.Fatalf("record %d has %d values for %d columns", row.Record, len(row.Values), len(r.Columns()))
		}
	}
}

func FuzzCSV(f *testing.F) {
	for _, s := range []string{
		"a,b\n1,2\n", "\uFEFFa;b\r\n1;\"x\r\ny\"\r\n", "a,b\n1,\"oops\n3,4\n", "a\tb\n\"\"\"\"\t2\n",
		"a,b\n1,x\"y\n", "a,a\n", ",\n,\n", "a|b|c\n1|2|3|||\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) { checkStream(t, data, Options{Format: CSV}) })
}

func FuzzJSONL(f *testing.F) {
	for _, s := range []string{
		`{"a":1}` + "\n", `{"a":{"b":{"c":[1,2]}}}` + "\n\n" + `[1]` + "\n", `{"a":"\u00e9"}{}`, `{"a":`, "null\n{}\n", `{"":""}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) { checkStream(t, data, Options{Format: JSONL}) })
}
