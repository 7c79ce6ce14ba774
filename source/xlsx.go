package source

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/xuri/excelize/v2"
)

// XLSX workbooks are read with excelize, a row at a time from the sheet's
// XML (excelize extracts a large sheet to a temporary file rather than
// memory). Cells come as a person sees them: numbers without float
// artefacts (1000000000000, not 1.0E+12), text as typed (a zip code stored
// as text keeps its leading zero), the system date format as an ISO date
// (2026-12-01), other date formats as displayed. Line numbers are the
// sheet's row numbers.

// isoDate is the pattern excelize applies to the system date formats.
const isoDate = "yyyy-mm-dd"

// xlsxOptions: system dates as ISO dates; a sheet or shared-string table
// over 4 MiB unzipped goes to a temporary file and is streamed from there
// (excelize's default, 16 MiB in memory, held a 10,000-row sheet whole: 73
// MiB peak).
var xlsxOptions = excelize.Options{ShortDatePattern: isoDate, LongDatePattern: isoDate, UnzipXMLSizeLimit: 4 << 20}

type xlsxReader struct {
	f      *excelize.File
	rows   *excelize.Rows
	sheet  string
	cols   []string
	index  map[string]int
	row    int // the sheet row last read
	record int
	max    int
	size   int64
}

func openXLSX(path, sheet string, opts Options) (*xlsxReader, Input, error) {
	in := Input{Name: path, Size: -1, Format: XLSX}
	if path == "-" {
		return nil, in, errors.New("an XLSX workbook must be a file, not stdin (it is a zip archive, read out of order)")
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, in, err
	}
	if !st.Mode().IsRegular() {
		return nil, in, fmt.Errorf("%s: an XLSX workbook must be a regular file, not a pipe", path)
	}
	in.Size = st.Size()
	f, err := excelize.OpenFile(path, xlsxOptions)
	if err != nil {
		return nil, in, fmt.Errorf("%s is not an XLSX workbook that can be read (%v): save it again as .xlsx, or export it as CSV", path, plain(err))
	}
	sheets := f.GetSheetList()
	if sheet == "" && len(sheets) > 0 {
		sheet = sheets[0]
	}
	if idx, _ := f.GetSheetIndex(sheet); idx < 0 || sheet == "" {
		f.Close()
		return nil, in, fmt.Errorf("%s has no sheet %q: its sheets are %q (pass --sheet NAME)", path, sheet, sheets)
	}
	rows, err := f.Rows(sheet)
	if err != nil {
		f.Close()
		return nil, in, fmt.Errorf("%s, sheet %q: %v", path, sheet, plain(err))
	}
	x := &xlsxReader{f: f, rows: rows, sheet: sheet, index: map[string]int{}, max: maxRecord(opts), size: in.Size}
	in.Name = fmt.Sprintf("%s [%s]", path, sheet)
	// The header is the first row with a value.
	for {
		cells, ok, err := x.next()
		if err != nil {
			x.Close()
			return nil, in, err
		}
		if !ok {
			x.Close()
			return nil, in, ErrEmpty
		}
		if Blank(cells) {
			continue
		}
		for i, h := range cells {
			h = strings.TrimSpace(h)
			if h == "" {
				h = fmt.Sprintf("column %d", i+1)
			}
			if j, dup := x.index[h]; dup {
				x.Close()
				return nil, in, fmt.Errorf("row %d: columns %d and %d are both named %q: rename one so each column can be mapped", x.row, j+1, i+1, h)
			}
			x.index[h] = i
			x.cols = append(x.cols, h)
		}
		return x, in, nil
	}
}

// next reads the next sheet row's cells; ok is false after the last.
func (x *xlsxReader) next() ([]string, bool, error) {
	if !x.rows.Next() {
		if err := x.rows.Error(); err != nil {
			return nil, false, fmt.Errorf("sheet %q after row %d: %v", x.sheet, x.row, plain(err))
		}
		return nil, false, nil
	}
	x.row++
	cells, err := x.rows.Columns()
	if err != nil {
		return nil, false, fmt.Errorf("sheet %q row %d: %v", x.sheet, x.row, plain(err))
	}
	return cells, true, nil
}

func (x *xlsxReader) Columns() []string { return x.cols }
func (x *xlsxReader) BytesRead() int64  { return 0 }

func (x *xlsxReader) Index(name string) int {
	if i, ok := x.index[name]; ok {
		return i
	}
	return -1
}

func (x *xlsxReader) Next() (Row, error) {
	cells, ok, err := x.next()
	if err != nil {
		return Row{}, err
	}
	if !ok {
		return Row{}, io.EOF
	}
	x.record++
	row := Row{Record: x.record, Line: x.row, Values: cells}
	n := 0
	for _, c := range cells {
		n += len(c)
	}
	switch {
	case n > x.max:
		row.Values, row.Err = nil, fmt.Errorf("is over %d bytes, as no customer row is (if it is real, raise --max-record-size)", x.max)
	case len(cells) > len(x.cols):
		// Cells past the header's last column: kept in Raw, not mapped.
		extra := cells[len(x.cols):]
		if !Blank(extra) {
			row.Err = fmt.Errorf("has %d cells, the header has %d: name the extra columns in the header", len(cells), len(x.cols))
			row.Raw = strings.Join(cells, "\t")
		}
		row.Values = cells[:len(x.cols)]
	}
	return row, nil
}

func (x *xlsxReader) Close() error {
	x.rows.Close()
	return x.f.Close()
}

// xlsxRows returns the number of data rows a workbook's sheet (the first
// when sheet is empty) declares: its dimension, less the header. It is for
// progress; -1 when unknown.
func xlsxRows(path, sheet string) int {
	f, err := excelize.OpenFile(path, xlsxOptions)
	if err != nil {
		return -1
	}
	defer f.Close()
	if sheet == "" {
		if l := f.GetSheetList(); len(l) > 0 {
			sheet = l[0]
		}
	}
	if dim, err := f.GetSheetDimension(sheet); err == nil {
		if m := dimRE.FindStringSubmatch(dim); m != nil {
			n, _ := strconv.Atoi(m[1])
			return max(n-1, 0)
		}
	}
	// No dimension (some writers leave "A1"): count the rows. This runs
	// beside the import, on the second core, as a CSV count does.
	rows, err := f.Rows(sheet)
	if err != nil {
		return -1
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	return max(n-1, 0)
}

var dimRE = regexp.MustCompile(`:[A-Z]+(\d+)$`)

// plain is an error's text without Go's wrapping of file paths.
func plain(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
