package source

import (
	"encoding/csv"
	"io"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
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
	f.Fuzz(func(t *testing.T, data string) {
		checkStream(t, data, Options{Format: CSV})
		sameAsEncodingCSV(t, data)
	})
}

// sameAsEncodingCSV checks the reader against encoding/csv on input that
// encoding/csv reads without an error, all records as wide as the header:
// the same values, starting on the same lines. The reader feeds csv
// through its own buffer (to replay lines after a stray quote); a byte lost
// or repeated there shows up here.
func sameAsEncodingCSV(t *testing.T, data string) {
	if !utf8.ValidString(data) || strings.HasPrefix(data, "\uFEFF") || strings.HasPrefix(strings.ToLower(data), "sep=") {
		return // decoded, stripped or taken as the delimiter before csv sees them
	}
	// A carriage return alone ends a line (old Excel for Mac): the
	// reference sees it as the line feed the reader makes of it.
	b := []byte(data)
	for i := range b {
		if b[i] == '\r' && (i+1 == len(b) || b[i+1] != '\n') {
			b[i] = '\n' // each CR not followed by LF, in the input as it was
		}
	}
	ref := string(b)
	data, orig := ref, data
	cr := csv.NewReader(strings.NewReader(data))
	want, err := cr.ReadAll()
	if err != nil || len(want) < 2 {
		return
	}
	var lines []int
	cr = csv.NewReader(strings.NewReader(data))
	for {
		if _, err := cr.Read(); err != nil {
			break
		}
		line, _ := cr.FieldPos(0)
		lines = append(lines, line)
	}
	for _, rec := range want {
		if len(rec) != len(want[0]) {
			return
		}
	}
	r, _, err := Open("-", strings.NewReader(orig), Options{Format: CSV, Delimiter: ','})
	if err != nil {
		return // a header the reader refuses (duplicate names): reported, not read
	}
	defer r.Close()
	for i, rec := range want[1:] {
		row, err := r.Next()
		if err != nil {
			t.Fatalf("record %d: %v; encoding/csv read %q", i+1, err, rec)
		}
		if row.Err != nil || !slices.Equal(row.Values, rec) || row.Line != lines[i+1] {
			t.Fatalf("record %d: %q (line %d, %v), encoding/csv read %q (line %d)", i+1, row.Values, row.Line, row.Err, rec, lines[i+1])
		}
	}
	if row, err := r.Next(); err != io.EOF {
		t.Fatalf("a record encoding/csv did not read: %q %v", row.Values, err)
	}
}

func FuzzJSONL(f *testing.F) {
	for _, s := range []string{
		`{"a":1}` + "\n", `{"a":{"b":{"c":[1,2]}}}` + "\n\n" + `[1]` + "\n", `{"a":"\u00e9"}{}`, `{"a":`, "null\n{}\n", `{"":""}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) { checkStream(t, data, Options{Format: JSONL}) })
}
