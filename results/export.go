package results

import (
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/revcent-import/revcent-import/revcent"
	"github.com/revcent-import/revcent-import/source"
)

// RowHash is the row_hash of a row with these values (written in hex): a
// 64-bit xxHash over the values, each followed by 0x1f. It is stable across
// runs and machines, so a resume or an export can tell that the input's
// row is the one the journal describes.
func RowHash(values []string) uint64 {
	n := len(values)
	for _, v := range values {
		n += len(v)
	}
	if n > 512 {
		d := xxhash.New()
		for _, v := range values {
			d.WriteString(v)
			d.Write(unitSep)
		}
		return d.Sum64()
	}
	// One call over the values joined: the same bytes, so the same hash,
	// without two Digest writes a field. The array is small because Go
	// clears it on every call.
	var buf [512]byte
	b := buf[:0]
	for _, v := range values {
		b = append(b, v...)
		b = append(b, 0x1f)
	}
	return xxhash.Sum64(b)
}

var unitSep = []byte{0x1f}

// The columns an export adds after the input's own. Prefixed so as not to
// meet an input column, and left unmapped when the file is imported again.
const (
	ColRow        = "import_row"
	ColLine       = "import_line"
	ColError      = "import_error"
	ColCustomerID = "import_customer_id"
	// ColRaw holds, in an errors file, the original text of a row that
	// could not be split into the header's columns (a stray quote, a
	// field too many or too few), so that nothing of it is lost.
	ColRaw = "import_raw"
)

// bom starts every export: Excel reads a CSV as UTF-8 only when it starts
// with one (else "José" shows as "JosÃ©"). The importer strips it again.
const bom = "\ufeff"

// ExportCounts says how many rows each export received.
type ExportCounts struct {
	Errors  int
	Created int
}

// Exporter writes rows of the input that a results file describes: the
// rows whose last status is invalid or failed (an errors file), and those
// created or found existing, with their customer ids (a success file).
// Write reads the journal's index (24 bytes a row) and then the input,
// reading each exported row's last line back from the journal as the row
// comes: memory does not grow with the rows exported (holding each one's
// id and message took 450 MiB for a million).
type Exporter struct {
	results       string
	errs, created bool
	// Index, when set, is the results file's index already read (a
	// Report's): Write reads it again otherwise.
	Index *Index
	// Cards names, given the input's columns, those holding card numbers
	// (masked to their last four digits) and card codes (blanked). Any
	// other cell shaped like a card number is masked too.
	Cards func(columns []string) (numbers, codes []string)
}

// Neutralise guards a cell that a spreadsheet would run as a formula, as
// OWASP's CSV injection advice says: one that starts with =, +, -, @, a
// tab or a carriage return gets a leading apostrophe, which Excel and
// LibreOffice show as text and do not run. The importer drops that
// apostrophe again (see mapping's unguard), so a fixed export imports
// with the values it had.
func Neutralise(v string) string {
	if v == "" {
		return v
	}
	switch v[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + v
	}
	return v
}

// NewExporter returns an Exporter for the results file at resultsPath
// that writes the errors file (errs), the success file (created), or both.
func NewExporter(resultsPath string, errs, created bool) *Exporter {
	return &Exporter{results: resultsPath, errs: errs, created: created}
}

// Write writes the collected rows to errs and created (either may be nil).
// Each gets the input's own columns, in its own dialect (CSV delimiter;
// JSONL becomes CSV with dotted column names), then import_row,
// import_line and import_error or import_customer_id, so that the error
// file can be fixed and imported as it is. open opens the input; it is
// called twice for JSONL, whose columns are known only once read to the
// end. A row whose content differs from the one the journal recorded stops
// the export: the input is not the one that was imported.
func (x *Exporter) Write(open func() (source.Reader, source.Input, error), errs, created io.Writer) (ExportCounts, error) {
	var n ExportCounts
	resultsPath := x.results
	ix := x.Index
	if ix == nil {
		var err error
		if ix, err = Load(resultsPath); err != nil {
			return n, err
		}
		defer ix.Close()
	}
	src, info, err := open()
	if err != nil {
		return n, err
	}
	if info.Format == source.JSONL {
		// Learn every column first: later objects may add keys.
		for {
			if _, err := src.Next(); err != nil {
				break
			}
		}
		cols := src.Columns()
		src.Close()
		if src, info, err = open(); err != nil {
			return n, err
		}
		for _, c := range cols {
			src.Index(c)
		}
	}
	defer src.Close()
	delim := info.Delimiter
	if delim == 0 {
		delim = ','
	}
	cols := src.Columns()
	newWriter := func(w io.Writer, extra ...string) *csv.Writer {
		if w == nil {
			return nil
		}
		io.WriteString(w, bom)
		cw := csv.NewWriter(w)
		cw.Comma = delim
		cw.Write(append(append([]string{}, cols...), extra...))
		return cw
	}
	numberCol, codeCol := map[int]bool{}, map[int]bool{}
	var codeNames []string
	if x.Cards != nil {
		numbers, codes := x.Cards(cols)
		for i, c := range cols {
			numberCol[i] = slices.Contains(numbers, c)
			codeCol[i] = slices.Contains(codes, c)
		}
		codeNames = codes
	}
	ew := newWriter(errs, ColRow, ColLine, ColError, ColRaw)
	cw := newWriter(created, ColRow, ColLine, ColCustomerID)
	out := make([]string, len(cols)+4)
	for {
		row, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, fmt.Errorf("%s: %w", info.Name, err)
		}
		last, ok := ix.Last(row.Record)
		if !ok || !(x.errs && (last.Status == Invalid || last.Status == Failed) || x.created && (last.Status == Created || last.Status == Existing)) {
			continue
		}
		if row.Err == nil && last.RowHash != 0 && last.RowHash != RowHash(row.Values) {
			return n, fmt.Errorf("%s line %d (row %d) differs from the row recorded in %s: is this the input that was imported?",
				info.Name, row.Line, row.Record, resultsPath)
		}
		clear(out)
		copy(out, row.Values)
		var codes []string // this row's card codes, to hide in its raw text
		for i := range cols {
			switch {
			case codeCol[i]:
				if out[i] != "" {
					codes = append(codes, strings.TrimSpace(out[i]))
				}
				out[i] = ""
			case numberCol[i]:
				out[i] = maskNumber(out[i])
			}
		}
		w, err := ix.Record(row.Record) // its id or its message
		if err != nil {
			return n, err
		}
		out[len(cols)], out[len(cols)+1] = strconv.Itoa(row.Record), strconv.Itoa(row.Line)
		if w.Status == Created || w.Status == Existing {
			out[len(cols)+2] = w.CustomerID
			guard(out[:len(cols)+3])
			cw.Write(out[:len(cols)+3])
			n.Created++
		} else {
			out[len(cols)+2], out[len(cols)+3] = w.Message, scrubRaw(row.Raw, delim, cols, codeNames, codes)
			guard(out)
			ew.Write(out)
			n.Errors++
		}
	}
	for _, w := range []*csv.Writer{ew, cw} {
		if w != nil {
			w.Flush()
			if err := w.Error(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// guard neutralises every cell, and masks anything shaped like a card
// number that a column the mapping does not use may hold.
func guard(cells []string) {
	for i, c := range cells {
		cells[i] = Neutralise(revcent.Scrub(c, "", ""))
	}
}

// maskNumber masks a card number cell to its last four digits, keeping
// what is not a digit ("4111 1111 1111 1111" becomes "**** **** **** 1111").
func maskNumber(v string) string {
	digits := 0
	for i := 0; i < len(v); i++ {
		if v[i] >= '0' && v[i] <= '9' {
			digits++
		}
	}
	b := []byte(v)
	for i := range b {
		if b[i] >= '0' && b[i] <= '9' {
			if digits > 4 {
				b[i] = '*'
			}
			digits--
		}
	}
	return string(b)
}

// scrubRaw hides card data in the raw text of a row that could not be
// split into columns: card-number-shaped digits are masked, and where the
// text splits at the delimiter into the header's width (it often does: a
// stray quote inside a cell), the card code columns are blanked. A card
// code the split cannot place is hidden wherever it stands alone.
func scrubRaw(raw string, delim rune, cols, codeNames, codes []string) string {
	if raw == "" {
		return raw
	}
	raw = revcent.Scrub(raw, "", "")
	if len(codeNames) == 0 {
		return raw
	}
	parts := strings.Split(raw, string(delim))
	if len(parts) == len(cols) {
		for i, c := range cols {
			if slices.Contains(codeNames, c) {
				parts[i] = ""
			}
		}
		return strings.Join(parts, string(delim))
	}
	if len(codes) > 0 {
		for _, c := range codes {
			raw = revcent.Scrub(raw, "", c)
		}
		return raw
	}
	// Nothing says which digits are the code: every run of 3 or 4 digits
	// standing alone is hidden (a zip code too, in this one row).
	b := []byte(raw)
	for i := 0; i < len(b); {
		j := i
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == i {
			i++
			continue
		}
		if n := j - i; n == 3 || n == 4 {
			for k := i; k < j; k++ {
				b[k] = '*'
			}
		}
		i = j
	}
	return string(b)
}
