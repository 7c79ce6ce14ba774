package source

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
)

// readAll opens path with opts and returns every row as column->value maps,
// with the line numbers and row errors alongside.
type got struct {
	rows  []map[string]string
	lines []int
	errs  []string
}

func readAll(t testing.TB, path string, stdin io.Reader, opts Options) (got, Reader) {
	t.Helper()
	r, _, err := Open(path, stdin, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	var g got
	for want := 1; ; want++ {
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if row.Record != want {
			t.Fatalf("record %d, want %d", row.Record, want)
		}
		m := map[string]string{}
		for i, c := range r.Columns() {
			if v := row.Value(i); v != "" || i < len(row.Values) {
				m[c] = v
			}
		}
		g.rows = append(g.rows, m)
		g.lines = append(g.lines, row.Line)
		e := ""
		if row.Err != nil {
			e = row.Err.Error()
		}
		g.errs = append(g.errs, e)
	}
	return g, r
}

func write(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCSVSpectrum runs the csv-spectrum acid test. encoding/csv turns CRLF
// inside a quoted field into LF, which is what RevCent should receive, so
// the expectations are compared with CRLF folded.
func TestCSVSpectrum(t *testing.T) {
	files, _ := filepath.Glob("testdata/csv-spectrum/csvs/*.csv")
	if len(files) < 12 {
		t.Fatalf("found %d csv-spectrum files", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".csv")
		t.Run(name, func(t *testing.T) {
			if name == "location_coordinates" {
				// This case's JSON is an object, not a list, and disagrees
				// with its CSV; the CSV has a bare quote in an unquoted
				// field (37°36'37.8"N), which strict parsing reports as a
				// row error naming the column by its header.
				g, _ := readAll(t, f, nil, Options{})
				if len(g.errs) != 1 || !strings.Contains(g.errs[0], `column "Location Coordinates": a quote (") inside a field that does not start with one`) {
					t.Errorf("got errors %q, want one bare-quote error on line 2", g.errs)
				}
				return
			}
			b, err := os.ReadFile(filepath.Join("testdata/csv-spectrum/json", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var want []map[string]string
			if err := json.Unmarshal(bytes.ReplaceAll(b, []byte(`\r\n`), []byte(`\n`)), &want); err != nil {
				t.Fatal(err)
			}
			g, _ := readAll(t, f, nil, Options{})
			for i, e := range g.errs {
				if e != "" {
					t.Errorf("row %d: %s", i+1, e)
				}
			}
			if !reflect.DeepEqual(g.rows, want) {
				t.Errorf("got %q\nwant %q", g.rows, want)
			}
			if n, err := Count(f, Options{}); err != nil || n != len(want) {
				t.Errorf("Count = %d, %v; want %d", n, err, len(want))
			}
		})
	}
}

func TestCSVDialects(t *testing.T) {
	tests := []struct {
		name, content string
		opts          Options
		want          []map[string]string
		lines         []int
		errs          []string
	}{
		{name: "semicolons with BOM and CRLF",
			content: "\uFEFFFirst Name;Email\r\nAda;ada@x.io\r\n\"Lovelace; Ada\";\"a\r\nb\"\r\nGrace;g@x.io\r\n",
			want:    []map[string]string{{"First Name": "Ada", "Email": "ada@x.io"}, {"First Name": "Lovelace; Ada", "Email": "a\nb"}, {"First Name": "Grace", "Email": "g@x.io"}},
			lines:   []int{2, 3, 5}},
		{name: "tabs", content: "a\tb\n1\t2\n", want: []map[string]string{{"a": "1", "b": "2"}}, lines: []int{2}},
		{name: "pipes", content: "a|b|c\n1|2|3\n", want: []map[string]string{{"a": "1", "b": "2", "c": "3"}}, lines: []int{2}},
		{name: "comma despite quoted semicolons", content: "\"a;x\",\"b;y\"\n1,2\n", want: []map[string]string{{"a;x": "1", "b;y": "2"}}, lines: []int{2}},
		{name: "explicit delimiter", content: "a;b,c\n1;2,3\n", opts: Options{Delimiter: ','}, want: []map[string]string{{"a;b": "1;2", "c": "3"}}, lines: []int{2}},
		{name: "header names trimmed, blank lines skipped", content: " a , b \n\n1,2\n\n3,4", want: []map[string]string{{"a": "1", "b": "2"}, {"a": "3", "b": "4"}}, lines: []int{3, 5}},
		{name: "trailing empty fields tolerated", content: "a,b\n1,2,,\n", want: []map[string]string{{"a": "1", "b": "2"}}, lines: []int{2}},
		{name: "ragged rows are row errors", content: "a,b\n1,2,3\n4\n5,6\n",
			want:  []map[string]string{{"a": "1", "b": "2"}, {"a": "4"}, {"a": "5", "b": "6"}},
			lines: []int{2, 3, 4},
			errs:  []string{"has 3 fields, the header has 2", "has 1 fields, the header has 2", ""}},
		{name: "bare quote is a row error, reading goes on", content: "a,b\n1,x\"y\n3,4\n",
			want: []map[string]string{{}, {"a": "3", "b": "4"}}, lines: []int{2, 3},
			errs: []string{`column "b": a quote (") inside a field that does not start with one`, ""}},
		{name: "unbalanced quote: the rest of the file still imports", content: "a,b\n1,2\n3,\"oops\n5,6\n7,8\n",
			want: []map[string]string{{"a": "1", "b": "2"}, {}, {"a": "5", "b": "6"}, {"a": "7", "b": "8"}}, lines: []int{2, 3, 4, 5},
			errs: []string{"", "unbalanced quote: the field opened on line 3 does not close properly (csv read on to line 5); that line is skipped"}},
		{name: "two stray quotes, a legit multi-line field between", content: "a,b\n\"x,1\n2,\"multi\nline\"\n3,\"y\n\n4,5\n",
			want:  []map[string]string{{}, {"a": "2", "b": "multi\nline"}, {}, {"a": "4", "b": "5"}},
			lines: []int{2, 3, 5, 7},
			errs:  []string{"the field opened on line 2", "", "the field opened on line 5", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, _ := readAll(t, write(t, "in.csv", tt.content), nil, tt.opts)
			if !reflect.DeepEqual(g.rows, tt.want) || !reflect.DeepEqual(g.lines, tt.lines) {
				t.Errorf("got %q lines %v\nwant %q lines %v", g.rows, g.lines, tt.want, tt.lines)
			}
			for i, e := range g.errs {
				want := ""
				if i < len(tt.errs) {
					want = tt.errs[i]
				}
				if (want == "") != (e == "") || !strings.Contains(e, want) {
					t.Errorf("row %d error %q, want %q", i+1, e, want)
				}
			}
		})
	}
}

func TestCSVHeaderErrors(t *testing.T) {
	for name, content := range map[string]string{
		"empty":     "",
		"duplicate": "Email,Name,email,Email\n",
	} {
		_, _, err := Open(write(t, "in.csv", content), nil, Options{})
		if err == nil || !strings.Contains(err.Error(), "in.csv") {
			t.Errorf("%s: err = %v, want an error naming the file", name, err)
		}
	}
	_, _, err := Open(write(t, "in.csv", "Email,Name,Email\n"), nil, Options{})
	if err == nil || !strings.Contains(err.Error(), `columns 1 and 3 are both named "Email"`) {
		t.Errorf("duplicate header: %v", err)
	}
}

func TestGzipAndStdin(t *testing.T) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte("a,b\n1,2\n3,4\n"))
	zw.Close()
	p := write(t, "in.csv.gz", b.String())
	g, r := readAll(t, p, nil, Options{})
	if len(g.rows) != 2 || g.rows[1]["b"] != "4" {
		t.Errorf("gzip: %q", g.rows)
	}
	if r.BytesRead() != int64(b.Len()) {
		t.Errorf("BytesRead %d, want the compressed size %d", r.BytesRead(), b.Len())
	}
	if n, _ := Count(p, Options{}); n != -1 {
		t.Errorf("Count of gzip = %d, want -1 (unknown)", n)
	}
	g, _ = readAll(t, "-", strings.NewReader(`{"a":1}`+"\n"), Options{Format: JSONL})
	if len(g.rows) != 1 || g.rows[0]["a"] != "1" {
		t.Errorf("stdin: %q", g.rows)
	}
	if _, _, err := Open(write(t, "x.csv.gz", "not gzip"), nil, Options{}); err == nil || !strings.Contains(err.Error(), "gzip") {
		t.Errorf("bad gzip: %v", err)
	}
}

func TestEncodings(t *testing.T) {
	text := "First Name,Last Name\nJosé,Müller\nFrançois,Œuvre\n"
	want := []map[string]string{{"First Name": "José", "Last Name": "Müller"}, {"First Name": "François", "Last Name": "Œuvre"}}
	cp1252, _ := charmap.Windows1252.NewEncoder().String(text)
	utf16, _ := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().String(text)
	utf16be, _ := unicode.UTF16(unicode.BigEndian, unicode.UseBOM).NewEncoder().String(text)
	for name, tc := range map[string]struct {
		content string
		enc     string
	}{
		"windows-1252": {cp1252, "windows-1252"},
		"utf-16le bom": {utf16, ""},
		"utf-16be bom": {utf16be, ""},
		"utf-8 bom":    {"\uFEFF" + text, "windows-1252"}, // the BOM wins over the flag
	} {
		g, _ := readAll(t, write(t, "in.csv", tc.content), nil, Options{Encoding: tc.enc})
		if !reflect.DeepEqual(g.rows, want) {
			t.Errorf("%s: got %q", name, g.rows)
		}
	}
	if _, _, err := Open(write(t, "in.csv", text), nil, Options{Encoding: "ebcdic"}); err == nil || !strings.Contains(err.Error(), "unknown encoding") {
		t.Errorf("unknown encoding: %v", err)
	}
}

func TestJSONL(t *testing.T) {
	content := `{"firstName":"Ada","address":{"city":"London","geo":{"lat":51.5}},"tags":["a", "b"],"vip":true,"note":null}` + "\n" +
		"\n" +
		`  ["not","an","object"]` + "\n" +
		`{"firstName":"Grace","phone":"+1 555"}` + "\r\n" +
		`{"firstName": "Bad"` + "\n" +
		`42` + "\n" +
		`{"firstName":"Last"}`
	g, r := readAll(t, write(t, "in.jsonl", content), nil, Options{})
	want := []map[string]string{
		{"firstName": "Ada", "address.city": "London", "address.geo.lat": "51.5", "tags": `["a","b"]`, "vip": "true", "note": ""},
		{},
		{"firstName": "Grace", "address.city": "", "address.geo.lat": "", "tags": "", "vip": "", "note": "", "phone": "+1 555"},
		{},
		{},
		{"firstName": "Last", "address.city": "", "address.geo.lat": "", "tags": "", "vip": "", "note": "", "phone": ""},
	}
	if !reflect.DeepEqual(g.rows, want) {
		t.Errorf("got %q\nwant %q", g.rows, want)
	}
	if wl := []int{1, 3, 4, 5, 6, 7}; !reflect.DeepEqual(g.lines, wl) {
		t.Errorf("lines %v, want %v", g.lines, wl)
	}
	for i, w := range []string{"", "line 3 is an array, not a JSON object", "", "line 5 is not valid JSON", "line 6 is a number", ""} {
		if (w == "") != (g.errs[i] == "") || !strings.Contains(g.errs[i], w) {
			t.Errorf("row %d error %q, want %q", i+1, g.errs[i], w)
		}
	}
	if i := r.Index("later.key"); i != len(r.Columns())-1 || r.Columns()[i] != "later.key" {
		t.Errorf("Index of an unseen JSONL key = %d, columns %q", i, r.Columns())
	}
	if n, _ := Count(write(t, "c.jsonl", content), Options{}); n != 6 {
		t.Errorf("Count = %d, want 6", n)
	}
}

func TestJSONLColumnsFromFirstObject(t *testing.T) {
	r, _, err := Open(write(t, "in.ndjson", `{"b":1,"a":{"x":2}}`+"\n"+`{"c":3}`+"\n"), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Columns(); !reflect.DeepEqual(got, []string{"b", "a.x"}) {
		t.Errorf("Columns = %q, want the first object's keys in order", got)
	}
	if _, _, err := Open(write(t, "e.jsonl", "\n\n"), nil, Options{}); err == nil || !errors.Is(err, err) || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty JSONL: %v", err)
	}
}

func TestFormatOf(t *testing.T) {
	for p, want := range map[string]Format{"a.csv": CSV, "a.CSV.gz": CSV, "a.tsv": TSV, "a.jsonl.gz": JSONL, "a.ndjson": JSONL, "a.txt": CSV, "-": CSV} {
		if got := FormatOf(p); got != want {
			t.Errorf("FormatOf(%q) = %q, want %q", p, got, want)
		}
	}
}

func TestRunawayQuoteIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("a,b\n1,\"stray\n")
	for i := range maxRecordLines + 500 {
		fmt.Fprintf(&b, "%d,x\n", i)
	}
	g, _ := readAll(t, write(t, "in.csv", b.String()), nil, Options{})
	if len(g.rows) != maxRecordLines+501 || !strings.Contains(g.errs[0], "still open 1000 lines later") || g.lines[0] != 2 {
		t.Fatalf("%d rows, first error %q line %d", len(g.rows), g.errs[0], g.lines[0])
	}
	for i := 1; i < len(g.rows); i++ {
		if g.errs[i] != "" || g.rows[i]["a"] != fmt.Sprint(i-1) || g.lines[i] != i+2 {
			t.Fatalf("row %d: %q %q line %d", i+1, g.rows[i], g.errs[i], g.lines[i])
		}
	}
}

func TestNotUTF8IsReadAsWindows1252(t *testing.T) {
	cp1252, _ := charmap.Windows1252.NewEncoder().String("Name,City\nJosé,Zürich\n")
	mixed := "Name,City\nJosé,Zürich\n" + cp1252[len("Name,City\n"):]
	for name, content := range map[string]string{"windows-1252": cp1252, "mixed": mixed} {
		var warnings []string
		opts := Options{Warn: func(m string) { warnings = append(warnings, m) }}
		g, _ := readAll(t, write(t, "in.csv", content), nil, opts)
		for _, r := range g.rows {
			if r["Name"] != "José" || r["City"] != "Zürich" {
				t.Errorf("%s: %q", name, r)
			}
		}
		if len(warnings) != 1 || !strings.Contains(warnings[0], "Windows-1252") {
			t.Errorf("%s: warnings %q, want one naming the guess", name, warnings)
		}
	}
	jl, _ := charmap.Windows1252.NewEncoder().String(`{"name":"Ægir"}` + "\n")
	g, _ := readAll(t, write(t, "in.jsonl", jl), nil, Options{})
	if g.rows[0]["name"] != "Ægir" {
		t.Errorf("jsonl: %q", g.rows[0])
	}
	// Valid UTF-8 is never touched, and --encoding turns detection off.
	g, _ = readAll(t, write(t, "in.csv", "Name\nJosé\n"), nil, Options{Encoding: "utf-8", Warn: func(m string) { t.Errorf("warned %q", m) }})
	if g.rows[0]["Name"] != "José" {
		t.Errorf("utf-8: %q", g.rows[0])
	}
}

func TestUnnamedColumnsWarn(t *testing.T) {
	var warnings []string
	g, r := readAll(t, write(t, "in.csv", "a,,b,\n1,2,3,4\n"), nil, Options{Warn: func(m string) { warnings = append(warnings, m) }})
	if !reflect.DeepEqual(r.Columns(), []string{"a", "column 2", "b", "column 4"}) || g.rows[0]["column 2"] != "2" {
		t.Errorf("columns %q rows %q", r.Columns(), g.rows)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], `2 column(s) have no name; they are called ["column 2" "column 4"]`) {
		t.Errorf("warnings %q", warnings)
	}
}

// TestSpreadsheetLineEnds: old Excel for Mac ends lines with CR alone,
// files can mix line ends, and Excel may write a "sep=" first line.
func TestSpreadsheetLineEnds(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		delim      rune
		lines      []int
	}{
		{"CR only", "First Name,Email\rAda,ada@x.co\rBo,\"two\rlines\"\rCy,cy@x.co\r", ',', []int{2, 3, 5}},
		{"mixed", "First Name,Email\r\nAda,ada@x.co\rBo,\"two\r\nlines\"\nCy,cy@x.co", ',', []int{2, 3, 5}},
		{"sep= line", "sep=;\nFirst Name;Email\nAda;ada@x.co\nBo;\"two\nlines\"\nCy;cy@x.co\n", ';', []int{3, 4, 6}},
		{"sep= with CRLF, delimiter detected otherwise", "SEP=|\r\nFirst Name|Email\r\nAda|ada@x.co\r\nBo|\"two\r\nlines\"\r\nCy|cy@x.co\r\n", '|', []int{3, 4, 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, in, err := Open("-", strings.NewReader(tc.data), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if in.Delimiter != tc.delim || !slices.Equal(r.Columns(), []string{"First Name", "Email"}) {
				t.Fatalf("delimiter %q, columns %q", in.Delimiter, r.Columns())
			}
			want := [][]string{{"Ada", "ada@x.co"}, {"Bo", "two\nlines"}, {"Cy", "cy@x.co"}}
			for i, w := range want {
				row, err := r.Next()
				if err != nil || row.Err != nil || !slices.Equal(row.Values, w) || row.Line != tc.lines[i] {
					t.Fatalf("row %d: %q line %d (%v %v), want %q line %d", i+1, row.Values, row.Line, err, row.Err, w, tc.lines[i])
				}
			}
			if _, err := r.Next(); err != io.EOF {
				t.Errorf("more rows: %v", err)
			}
		})
	}
}

// TestHostileSizes: a record over the bound, a cell over it and deep
// nesting are row errors naming their line; the rows after them are read.
func TestHostileSizes(t *testing.T) {
	big := strings.Repeat("x", 3<<20)
	for _, tc := range []struct {
		name, data string
		format     Format
		want       string
		lines      []int // of the good rows after
	}{
		{"a long line", "First Name,Email\n" + big + "\nAda,ada@x.co\nBo,bo@x.co\n", CSV, "line 2 ... is over", []int{3, 4}},
		{"a long quoted cell", "First Name,Email\n\"" + big + "\",x@x.co\nAda,ada@x.co\nBo,bo@x.co\n", CSV, "is over", []int{3, 4}},
		{"a long JSONL line", `{"email":"` + big + `"}` + "\n" + `{"email":"ada@x.co"}` + "\n" + `{"email":"bo@x.co"}` + "\n", JSONL, "line 1 is over", []int{2, 3}},
		{"deep nesting", strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000) + "\n" + `{"email":"ada@x.co"}` + "\n" + `{"email":"bo@x.co"}` + "\n", JSONL, "nests objects or arrays 33 deep", []int{2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The good first row (JSONL learns its columns from it) comes
			// after the bad one here; a CSV header is read first.
			r, _, err := Open("-", strings.NewReader(tc.data), Options{Format: tc.format, MaxRecordBytes: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			row, err := r.Next()
			if err != nil || row.Err == nil || !strings.Contains(row.Err.Error(), strings.Split(tc.want, " ... ")[len(strings.Split(tc.want, " ... "))-1]) {
				t.Fatalf("first row: %v %v, want %q", err, row.Err, tc.want)
			}
			for _, line := range tc.lines {
				row, err := r.Next()
				if err != nil || row.Err != nil || row.Line != line {
					t.Fatalf("after it: line %d %v %v, want line %d", row.Line, err, row.Err, line)
				}
			}
		})
	}
}

// TestCRAtChunkBoundary: a CR that ends one read of the input and the LF
// (or not) that starts the next are read as one line end (or two).
func TestCRAtChunkBoundary(t *testing.T) {
	for _, tc := range []struct {
		name, tail string
		lines      []int
	}{{"CRLF split", "\r\nBo,b@x.co\r", []int{2, 3}}, {"lone CR, then a lone CR", "\rBo,b@x.co\r", []int{2, 3}}} {
		t.Run(tc.name, func(t *testing.T) {
			// The header's line end is a lone CR, so that lone CRs are
			// detected; the first row ends exactly at 64 KiB.
			head := "First Name,Email\r"
			row := "Ada," + strings.Repeat("a", 64<<10-len(head)-len("Ada,")-len("@x.co")) + "@x.co"
			data := head + row + tc.tail
			r, _, err := Open("-", iotest.OneByteReader(strings.NewReader(data)), Options{MaxRecordBytes: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for i, want := range tc.lines {
				row, err := r.Next()
				if err != nil || row.Err != nil || row.Line != want {
					t.Fatalf("row %d: line %d %v %v, want line %d", i+1, row.Line, err, row.Err, want)
				}
			}
			if _, err := r.Next(); err != io.EOF {
				t.Errorf("a row more: %v", err)
			}
		})
	}
}

// TestCRToLFOneByteAtATime: a reader asking for one byte at a time (as
// bufio does when its buffer is nearly full) gets every byte; an earlier
// version held a trailing CR back and asked again forever.
func TestCRToLFOneByteAtATime(t *testing.T) {
	c := &crToLF{r: bufio.NewReader(strings.NewReader("a\r\r\nb\r"))}
	var got []byte
	buf := make([]byte, 1)
	for range 20 {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
	}
	if string(got) != "a\n\r\nb\n" {
		t.Errorf("read %q", got)
	}
}
