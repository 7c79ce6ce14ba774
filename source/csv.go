package source

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// maxRecordLines bounds how many lines one record may span. A quoted field
// left open by a stray quote would otherwise swallow the rest of the file
// (and hold it in memory); past this many lines the record is reported and
// the lines after its first are read again as rows.
const maxRecordLines = 1000

var errRunaway = errors.New("record spans too many lines")

// feeder hands encoding/csv one line per Read. bufio (inside csv.Reader)
// refills only when no newline is buffered, so csv never reads past the
// record it is parsing, and the feeder knows the raw lines of that record:
// enough to read them again when a stray quote made csv misparse them.
type feeder struct {
	src   *bufio.Reader
	queue [][]byte // lines to hand out before reading src (a replay)
	buf   []byte   // the lines of the current record, as handed out
	ends  []int    // end offset in buf of each line
	pos   int      // how much of buf was handed out
	err   error    // src's error, returned once buf is exhausted
	first int      // input line number of buf's first line
	next  int      // input line number of the next line to hand out
	fed   int      // lines handed out, replays included (for tests)
}

func (f *feeder) Read(p []byte) (int, error) {
	if f.pos == len(f.buf) {
		if len(f.ends) >= maxRecordLines {
			return 0, errRunaway
		}
		var line []byte
		switch {
		case len(f.queue) > 0:
			line, f.queue = f.queue[0], f.queue[1:]
		case f.err != nil:
			return 0, f.err
		default:
			var err error
			line, err = f.src.ReadSlice('\n')
			for err == bufio.ErrBufferFull {
				f.buf = append(f.buf, line...)
				line, err = f.src.ReadSlice('\n')
			}
			if err != nil {
				f.err = err
			}
			if len(line) == 0 && len(f.buf) == f.pos {
				if err == nil {
					err = io.EOF
				}
				return 0, err
			}
		}
		f.buf = append(f.buf, line...)
		f.ends = append(f.ends, len(f.buf))
		f.next++
		f.fed++
	}
	n := copy(p, f.buf[f.pos:])
	f.pos += n
	return n, nil
}

// mark forgets the lines of the record just parsed.
func (f *feeder) mark() {
	f.buf, f.ends, f.pos, f.first = f.buf[:0], f.ends[:0], 0, f.next
}

// replay drops the current record and hands out its lines after line
// start again, before anything else.
func (f *feeder) replay(start int) {
	lines := f.lines()
	skip := start - f.first + 1
	again := lines[min(max(skip, 0), len(lines)):]
	f.queue = append(again, f.queue...)
	f.next = start + 1
	f.mark()
}

// firstNonBlank returns the input line number of the first line since mark
// that is not empty: where csv starts a record.
func (f *feeder) firstNonBlank() int {
	start := 0
	for i, end := range f.ends {
		if l := strings.TrimRight(string(f.buf[start:end]), "\r\n"); l != "" {
			return f.first + i
		}
		start = end
	}
	return f.first
}

// lines returns the raw lines handed out since mark.
func (f *feeder) lines() [][]byte {
	out := make([][]byte, len(f.ends))
	start := 0
	for i, end := range f.ends {
		out[i] = append([]byte(nil), f.buf[start:end]...)
		start = end
	}
	return out
}

type csvReader struct {
	name    string
	comma   rune
	feed    *feeder
	r       *csv.Reader
	base    int // lines of the input before r's first line
	cols    []string
	index   map[string]int
	record  int
	counted *counter
	enc     *autoDecoder
}

// newCSV reads the header of a CSV input. delim 0 detects the delimiter.
func newCSV(r io.Reader, name string, delim rune, counted *counter, enc *autoDecoder) (*csvReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if delim == 0 {
		head, _ := br.Peek(64 << 10)
		delim = detectDelimiter(head)
	}
	c := &csvReader{name: name, comma: delim, feed: &feeder{src: br, first: 1, next: 1}, counted: counted, enc: enc}
	c.r = c.newReader()
	header, err := c.r.Read()
	if err == io.EOF {
		return nil, errors.New("the file is empty: want a header line naming the columns")
	}
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	c.feed.mark()
	c.index = make(map[string]int, len(header))
	var unnamed []string
	for i, h := range header {
		h = strings.TrimSpace(c.enc.field(h, 1))
		if h == "" {
			h = fmt.Sprintf("column %d", i+1)
			unnamed = append(unnamed, h)
		}
		if j, dup := c.index[h]; dup {
			return nil, fmt.Errorf("line 1: columns %d and %d are both named %q: rename one so each column can be mapped", j+1, i+1, h)
		}
		c.index[h] = i
		c.cols = append(c.cols, h)
	}
	if len(unnamed) > 0 {
		enc.warn(fmt.Sprintf("line 1: %d column(s) have no name; they are called %q", len(unnamed), unnamed))
	}
	return c, nil
}

func (c *csvReader) newReader() *csv.Reader {
	r := csv.NewReader(c.feed)
	r.Comma = c.comma
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	return r
}

func (c *csvReader) Columns() []string { return c.cols }
func (c *csvReader) BytesRead() int64  { return c.counted.n.Load() }
func (c *csvReader) Close() error      { return nil }

func (c *csvReader) Index(name string) int {
	if i, ok := c.index[name]; ok {
		return i
	}
	return -1
}

func (c *csvReader) Next() (Row, error) {
	rec, err := c.r.Read()
	if err == io.EOF {
		return Row{}, io.EOF
	}
	c.record++
	row := Row{Record: c.record, Values: rec}
	if err == nil {
		// One check of the record's raw lines instead of one per field:
		// when they are UTF-8, so is every field.
		checked := c.enc.valid(c.feed.buf)
		c.feed.mark()
		if len(rec) > 0 {
			line, _ := c.r.FieldPos(0)
			row.Line = c.base + line
		}
		if !checked {
			for i, v := range rec {
				rec[i] = c.enc.field(v, row.Line)
			}
		}
	}
	var pe *csv.ParseError
	switch {
	case errors.Is(err, errRunaway):
		row.Line = c.recover(c.feed.firstNonBlank())
		row.Values = nil
		row.Err = fmt.Errorf("unbalanced quote: the field opened on line %d is still open %d lines later; that line is skipped and the lines after it are read as rows: close the quote, or double it (\"\") inside the field",
			row.Line, maxRecordLines)
	case errors.As(err, &pe) && pe.Err == csv.ErrQuote && pe.Line > pe.StartLine:
		end := c.base + pe.Line
		row.Line = c.recover(c.base + pe.StartLine)
		row.Values = nil
		row.Err = fmt.Errorf("unbalanced quote: the field opened on line %d does not close properly (csv read on to line %d); that line is skipped and the lines after it are read as rows: close the quote, or double it (\"\") inside the field",
			row.Line, end)
	case errors.As(err, &pe):
		c.feed.mark()
		row.Line = c.base + pe.StartLine
		row.Values = nil
		row.Err = fmt.Errorf("line %d, column %d: %v; double a quote (\"\") inside a quoted field, or quote the whole field", c.base+pe.Line, pe.Column, pe.Err)
	case err != nil:
		return Row{}, err
	case len(rec) != len(c.cols):
		// Spreadsheets often pad rows with empty trailing fields.
		n := len(rec)
		for n > len(c.cols) && strings.TrimSpace(rec[n-1]) == "" {
			n--
		}
		row.Values = rec[:min(n, len(c.cols))]
		if n != len(c.cols) {
			row.Err = fmt.Errorf("has %d fields, the header has %d: check for an unquoted %q inside a value", len(rec), len(c.cols), c.comma)
		}
	}
	if row.Err != nil && row.Line == 0 {
		row.Line = c.base + 1
	}
	return row, nil
}

// recover abandons the csv.Reader after a quoted field ran away, and
// starts a new one on the lines after start, the record's first line.
func (c *csvReader) recover(start int) int {
	c.feed.replay(start)
	c.base = start
	c.r = c.newReader()
	return start
}

// autoDecoder reads fields of an input whose encoding was not given: UTF-8,
// except that a field that is not valid UTF-8 is read as Windows-1252 (what
// Excel writes on Windows), with a warning the first time.
type autoDecoder struct {
	auto   bool
	warned bool
	warnf  func(string)
}

func (a *autoDecoder) field(v string, line int) string {
	if a == nil || !a.auto || utf8.ValidString(v) {
		return v
	}
	d, err := charmap.Windows1252.NewDecoder().String(v)
	if err != nil {
		return v
	}
	if !a.warned {
		a.warned = true
		a.warn(fmt.Sprintf("line %d is not valid UTF-8: reading such text as Windows-1252 (pass --encoding to choose another)", line))
	}
	return d
}

// valid says that text b needs no decoding: it is UTF-8, or the encoding
// was given (and applied before the parser).
func (a *autoDecoder) valid(b []byte) bool {
	return a == nil || !a.auto || utf8.Valid(b)
}

func (a *autoDecoder) bytes(b []byte, line int) []byte {
	if a == nil || !a.auto || utf8.Valid(b) {
		return b
	}
	return []byte(a.field(string(b), line))
}

func (a *autoDecoder) warn(msg string) {
	if a != nil && a.warnf != nil {
		a.warnf(msg)
	}
}

// detectDelimiter picks the candidate that splits the header line most
// often outside quotes; a comma when none appears.
func detectDelimiter(head []byte) rune {
	counts := map[byte]int{}
	inQuote := false
	for _, b := range head {
		if b == '"' {
			inQuote = !inQuote
			continue
		}
		if inQuote {
			continue
		}
		if b == '\n' || b == '\r' {
			break
		}
		switch b {
		case ',', ';', '\t', '|':
			counts[b]++
		}
	}
	best, n := byte(','), 0
	for _, d := range []byte{',', ';', '\t', '|'} {
		if counts[d] > n {
			best, n = d, counts[d]
		}
	}
	return rune(best)
}
