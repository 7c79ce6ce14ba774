package source

import (
	"bufio"
	"bytes"
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

// errTooLong says the record being read has grown past the feeder's max.
var errTooLong = errors.New("record too long")

// feeder sits between the input and encoding/csv and keeps the raw bytes
// of the record being parsed: enough to read its lines again when a stray
// quote made csv misparse them. csv's bufio asks for more only when what
// it holds ends inside the current record, so everything fed since the
// last record boundary (mark) is that record, plus, after a Read, whatever
// else the chunk held.
type feeder struct {
	src   *bufio.Reader
	queue []byte // bytes to hand out before reading src (a replay)
	buf   []byte // bytes fed since the last mark start at buf[head]
	head  int
	off   int64 // the parser's stream offset of buf[head]
	nl    int   // newlines in buf[head:]
	err   error // src's error, returned once the queue is empty
	first int   // input line number of buf[head]'s line
	fed   int   // lines handed out, replays included (for tests)
	max   int   // bytes a record may hold; 0: no bound
}

func (f *feeder) Read(p []byte) (int, error) {
	if f.nl >= maxRecordLines {
		return 0, errRunaway
	}
	if f.max > 0 && len(f.buf)-f.head > f.max {
		return 0, errTooLong
	}
	var n int
	fresh := false
	switch {
	case len(f.queue) > 0:
		n = copy(p, f.queue)
		f.queue = f.queue[n:]
	case f.err != nil:
		return 0, f.err
	default:
		var err error
		n, err = f.src.Read(p)
		if err != nil {
			f.err = err
		}
		if n == 0 {
			return 0, err
		}
		fresh = true
	}
	k := bytes.Count(p[:n], newline)
	f.nl += k
	if fresh {
		f.fed += k
	}
	if f.head > 0 && f.head >= len(f.buf)/2 {
		f.buf = f.buf[:copy(f.buf, f.buf[f.head:])]
		f.head = 0
	}
	f.buf = append(f.buf, p[:n]...)
	return n, nil
}

var newline = []byte{'\n'}

// record returns the bytes of the record that ends at the parser's stream
// offset end.
func (f *feeder) record(end int64) []byte {
	return f.buf[f.head : f.head+int(end-f.off)]
}

// mark forgets the bytes before the parser's stream offset end: the
// records parsed so far.
func (f *feeder) mark(end int64) {
	done := f.record(end)
	k := bytes.Count(done, newline)
	f.first += k
	f.nl -= k
	f.head += len(done)
	f.off = end
}

// replay drops the current record and hands out what was fed after its
// line start again (its later lines, and whatever the parser held beyond
// them), before anything else. A new parser reads it, from offset 0. end
// is the old parser's offset: the lines before it are parsed twice, and
// count as fed again.
func (f *feeder) replay(start int, end int64) {
	rest := f.buf[f.head:]
	parsed := int(end - f.off)
	for range start - f.first + 1 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			i = len(rest) - 1
		}
		rest, parsed = rest[i+1:], parsed-(i+1)
	}
	if parsed > 0 {
		f.fed += bytes.Count(rest[:min(parsed, len(rest))], newline)
	}
	f.queue = append(append([]byte(nil), rest...), f.queue...)
	f.buf, f.head, f.off, f.nl, f.first = f.buf[:0], 0, 0, 0, start+1
}

// skipRecord drops the record being read, which has grown too long, and
// the rest of the input line it has reached, without holding it: reading
// goes on at the next line, whose number it returns.
func (f *feeder) skipRecord() (next int) {
	next = f.first + bytes.Count(f.buf[f.head:], newline)
	if len(f.buf) == f.head || f.buf[len(f.buf)-1] != '\n' {
		for {
			if i := bytes.IndexByte(f.queue, '\n'); i >= 0 {
				f.queue = f.queue[i+1:]
				next++
				break
			}
			f.queue = nil
			b, err := f.src.ReadSlice('\n')
			if err == nil {
				next++
				break
			}
			if err != bufio.ErrBufferFull {
				f.err = err
				break
			}
			_ = b
		}
	}
	f.buf, f.head, f.off, f.nl, f.first = f.buf[:0], 0, 0, 0, next
	return next
}

// line returns the text of input line n, if the bytes since mark hold it.
func (f *feeder) line(n int) []byte {
	rest := f.buf[f.head:]
	for i := f.first; len(rest) > 0; i++ {
		l := rest
		if j := bytes.IndexByte(rest, '\n'); j >= 0 {
			l, rest = rest[:j], rest[j+1:]
		} else {
			rest = nil
		}
		if i == n {
			return bytes.TrimRight(l, "\r")
		}
	}
	return nil
}

// firstNonBlank returns the input line number of the first line since mark
// that is not empty: where csv starts a record.
func (f *feeder) firstNonBlank() int {
	rest := f.buf[f.head:]
	for n := f.first; len(rest) > 0; n++ {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if len(bytes.TrimRight(line, "\r")) > 0 {
			return n
		}
	}
	return f.first
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
func newCSV(r io.Reader, name string, delim rune, counted *counter, enc *autoDecoder, maxRecord int) (*csvReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(64 << 10)
	if loneCR(head) {
		// Old Excel for Mac ends lines with CR alone; a file may mix.
		br = bufio.NewReaderSize(&crToLF{r: br}, 64<<10)
		head, _ = br.Peek(64 << 10)
	}
	skipped := 0
	if d, n, ok := sepLine(head); ok {
		// Excel's "sep=;" first line names the delimiter; the header
		// follows it.
		br.Discard(n)
		skipped = 1
		if delim == 0 {
			delim = d
		}
		head, _ = br.Peek(64 << 10)
	}
	if delim == 0 {
		delim = detectDelimiter(head)
	}
	c := &csvReader{name: name, comma: delim, feed: &feeder{src: br, first: 1 + skipped, max: maxRecord}, counted: counted, enc: enc, base: skipped}
	c.r = c.newReader()
	header, err := c.r.Read()
	if err == io.EOF {
		return nil, ErrEmpty
	}
	if errors.Is(err, errTooLong) || errors.Is(err, errRunaway) {
		return nil, fmt.Errorf("line 1, the header, is over %d bytes or %d lines: is this a CSV file (not compressed, not binary)?", maxRecord, maxRecordLines)
	}
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	c.feed.mark(c.r.InputOffset())
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
	var raw []byte
	if err == nil {
		// One check of the record's raw lines instead of one per field:
		// when they are UTF-8, so is every field.
		end := c.r.InputOffset()
		raw = c.feed.record(end)
		checked := c.enc.valid(raw)
		if len(rec) != len(c.cols) {
			raw = bytes.Clone(raw) // kept for Row.Raw past the mark
		}
		c.feed.mark(end)
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
	case errors.Is(err, errTooLong):
		start := c.feed.firstNonBlank()
		next := c.feed.skipRecord()
		c.base, c.r = next-1, c.newReader()
		row.Line, row.Values = start, nil
		row.Err = fmt.Errorf("is over %d bytes, as no customer row is: skipped to line %d (if it is real, raise --max-record-size)", c.feed.max, next)
	case errors.Is(err, errRunaway):
		start := c.feed.firstNonBlank()
		row.Raw = c.rawText(c.feed.line(start), start)
		row.Line = c.recover(start)
		row.Values = nil
		row.Err = fmt.Errorf("unbalanced quote: the field opened on line %d is still open %d lines later; that line is skipped and the lines after it are read as rows: close the quote, or double it (\"\") inside the field",
			row.Line, maxRecordLines)
	case errors.As(err, &pe) && pe.Err == csv.ErrQuote && pe.Line > pe.StartLine:
		end := c.base + pe.Line
		row.Raw = c.rawText(c.feed.line(c.base+pe.StartLine), c.base+pe.StartLine)
		row.Line = c.recover(c.base + pe.StartLine)
		row.Values = nil
		row.Err = fmt.Errorf("unbalanced quote: the field opened on line %d does not close properly (csv read on to line %d); that line is skipped and the lines after it are read as rows: close the quote, or double it (\"\") inside the field",
			row.Line, end)
	case errors.As(err, &pe):
		row.Raw = c.rawText(c.feed.record(c.r.InputOffset()), c.base+pe.StartLine)
		c.feed.mark(c.r.InputOffset())
		row.Line = c.base + pe.StartLine
		row.Values = nil
		row.Err = fmt.Errorf("%s%s: %s", c.columnAt(row.Raw, pe), lineNote(pe), quoteProblem(pe.Err))
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
			row.Raw = c.rawText(raw, row.Line)
		}
	}
	if row.Err != nil && row.Line == 0 {
		row.Line = c.base + 1
	}
	return row, nil
}

// rawText is a record's raw bytes as text: decoded like its fields, and
// without the line end.
func (c *csvReader) rawText(b []byte, line int) string {
	b = bytes.TrimRight(b, "\r\n")
	return string(c.enc.bytes(b, line))
}

// recover abandons the csv.Reader after a quoted field ran away, and
// starts a new one on the lines after start, the record's first line.
func (c *csvReader) recover(start int) int {
	c.feed.replay(start, c.r.InputOffset())
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

// sepLine reads Excel's "sep=X" first line: the delimiter, and the line's
// length with its end.
func sepLine(head []byte) (rune, int, bool) {
	if len(head) < 5 || !bytes.EqualFold(head[:4], []byte("sep=")) {
		return 0, 0, false
	}
	end := bytes.IndexByte(head, '\n')
	if end < 0 {
		return 0, 0, false
	}
	v := bytes.TrimRight(head[4:end], "\r")
	if r, size := utf8.DecodeRune(v); size == len(v) && size > 0 && r != '"' {
		return r, end + 1, true
	}
	return 0, 0, false
}

// loneCR reports whether b has a carriage return not followed by a line
// feed (the last byte aside, whose next is not known).
func loneCR(b []byte) bool {
	for i := bytes.IndexByte(b, '\r'); i >= 0 && i < len(b)-1; {
		if b[i+1] != '\n' {
			return true
		}
		j := bytes.IndexByte(b[i+1:], '\r')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

// crToLF turns every carriage return not followed by a line feed into a
// line feed, so that lines ended by CR alone, or by a mix, read as lines.
// It reads a byte at a time from its bufio.Reader, peeking past each CR;
// only files found to hold a lone CR pay for it.
type crToLF struct {
	r *bufio.Reader
}

func (c *crToLF) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		b, err := c.r.ReadByte()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		if b == '\r' {
			if next, err := c.r.Peek(1); err != nil || next[0] != '\n' {
				b = '\n'
			}
		}
		p[n] = b
		n++
		if b == '\n' && n > 0 && c.r.Buffered() == 0 {
			break // hand over what we have rather than wait on the input
		}
	}
	return n, nil
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

// columnAt names, by its header, the column in which a parse error
// stands: csv.ParseError gives a character position in the line, which
// tells a person nothing.
func (c *csvReader) columnAt(raw string, pe *csv.ParseError) string {
	lines := strings.Split(raw, "\n")
	k := pe.Line - pe.StartLine
	if k < 0 || k >= len(lines) {
		return "a field"
	}
	field := 0
	// Count the delimiters outside quotes before the error's position,
	// from the record's start.
	quoted := false
	pos := 0
	for li, l := range lines[:k+1] {
		for _, r := range l {
			if li == k && pos >= pe.Column-1 {
				break
			}
			switch {
			case r == '"':
				quoted = !quoted
			case r == c.comma && !quoted:
				field++
			}
			if li == k {
				pos++
			}
		}
	}
	if field < len(c.cols) {
		return fmt.Sprintf("column %q", c.cols[field])
	}
	return fmt.Sprintf("field %d (the header has %d columns)", field+1, len(c.cols))
}

// lineNote says where a record's error is when it is not on the line the
// record starts on.
func lineNote(pe *csv.ParseError) string {
	if pe.Line > pe.StartLine {
		return fmt.Sprintf(" (on the record's line %d)", pe.Line-pe.StartLine+1)
	}
	return ""
}

// quoteProblem says what encoding/csv's quote errors mean, and what to do.
func quoteProblem(err error) string {
	switch {
	case errors.Is(err, csv.ErrBareQuote):
		return `a quote (") inside a field that does not start with one: double it (""), or quote the whole field`
	case errors.Is(err, csv.ErrQuote):
		return `a quoted field has a quote (") inside it that is not doubled, or text after its closing quote: double a quote ("") inside a quoted field, or quote the whole field`
	case errors.Is(err, csv.ErrFieldCount):
		return "the wrong number of fields"
	}
	return "the row cannot be read as CSV"
}
