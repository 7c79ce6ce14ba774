package source

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// writeWorkbook saves rows (the first is the header) to a new .xlsx, with
// dates in the system date format and numbers as numbers.
func writeWorkbook(t testing.TB, sheet string, rows [][]any) string {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	if sheet != "Sheet1" {
		f.NewSheet(sheet)
	}
	date, _ := f.NewStyle(&excelize.Style{NumFmt: 14})
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow(sheet, cell, &r); err != nil {
			t.Fatal(err)
		}
		for j, v := range r {
			if _, ok := v.(time.Time); ok {
				c, _ := excelize.CoordinatesToCellName(j+1, i+1)
				f.SetCellStyle(sheet, c, c, date)
			}
		}
	}
	p := filepath.Join(t.TempDir(), "book.xlsx")
	if err := f.SaveAs(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestXLSXCellsAsAPersonSeesThem(t *testing.T) {
	p := writeWorkbook(t, "Prospects", [][]any{
		{"First Name", "Last Name", "Email", "Zip", "Phone", "Customer Id", "Signed Up", "Score"},
		{"Ada", "Lovelace", "ada@example.com", "01234", 4155551234, 1e12, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), 0.1 + 0.2},
		{},
		{"Bo", "Diddley", "bo@example.com", "02134", "+1 617 555 0100", "C-2", "", ""},
	})
	// The first sheet, read by default, is the empty Sheet1.
	if _, _, err := Open(p, nil, Options{}); !errors.Is(err, ErrEmpty) {
		t.Errorf("the first sheet, empty: %v, want ErrEmpty", err)
	}
	r, in, err := Open(p, nil, Options{Sheet: "Prospects"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if in.Format != XLSX || !slices.Equal(r.Columns(), []string{"First Name", "Last Name", "Email", "Zip", "Phone", "Customer Id", "Signed Up", "Score"}) {
		t.Fatalf("%+v %q", in, r.Columns())
	}
	want := []struct {
		line   int
		values []string
	}{
		{2, []string{"Ada", "Lovelace", "ada@example.com", "01234", "4155551234", "1000000000000", "2026-12-01", "0.3"}},
		{3, nil},
		{4, []string{"Bo", "Diddley", "bo@example.com", "02134", "+1 617 555 0100", "C-2"}},
	}
	for _, w := range want {
		row, err := r.Next()
		if err != nil || row.Err != nil || row.Line != w.line || !slices.Equal(row.Values, w.values) {
			t.Fatalf("row %+v %v; want line %d %q", row, err, w.line, w.values)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after the last row: %v", err)
	}
	if n, err := Count(p, Options{Sheet: "Prospects"}); err != nil || n != 3 {
		t.Errorf("Count = %d, %v; want 3", n, err)
	}
	if _, _, err := Open(p, nil, Options{Sheet: "Nope"}); err == nil || !strings.Contains(err.Error(), `its sheets are`) {
		t.Errorf("unknown sheet: %v", err)
	}
}

func TestXLSXRefusals(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.xlsx")
	os.WriteFile(bad, []byte("First Name,Email\nAda,ada@x.co\n"), 0o644)
	if _, _, err := Open(bad, nil, Options{}); err == nil || !strings.Contains(err.Error(), "is not an XLSX workbook") || !strings.Contains(err.Error(), "export it as CSV") {
		t.Errorf("a CSV named .xlsx: %v", err)
	}
	if _, _, err := Open("-", strings.NewReader("x"), Options{Format: XLSX}); err == nil || !strings.Contains(err.Error(), "must be a file") {
		t.Errorf("stdin: %v", err)
	}
}

// FuzzXLSX writes the fuzzer's cells into a workbook and reads them back:
// every text cell comes back as written (spreadsheets keep text), and no
// input makes the reader fail other than with an error.
func FuzzXLSX(f *testing.F) {
	f.Add("Ada", "ada@example.com", "01234", "=1+1")
	f.Add("José", "", "  padded  ", "line\nbreak")
	f.Fuzz(func(t *testing.T, a, b, c, d string) {
		for _, s := range []string{a, b, c, d} {
			if len(s) > 200 {
				return // a workbook a run: keep each one quick
			}
			if !utf8Valid(s) || strings.ContainsAny(s, "\x00\r") || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\t' }) || len(s) > 32767 {
				return // XML cannot hold it, or Excel would not
			}
		}
		p := writeWorkbook(t, "Sheet1", [][]any{{"A", "B", "C", "D"}, {a, b, c, d}})
		r, _, err := Open(p, nil, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		row, err := r.Next()
		if err != nil || row.Err != nil {
			t.Fatalf("%v %v", err, row.Err)
		}
		got := append(row.Values, make([]string, 4)...)[:4]
		if !slices.Equal(got, []string{a, b, c, d}) {
			t.Fatalf("read back %q, wrote %q", got, []string{a, b, c, d})
		}
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }
