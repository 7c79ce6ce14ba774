// Package source streams rows from CSV, TSV and JSONL inputs, from files or
// standard input, gunzipped when the name ends in .gz, with the byte-order
// mark stripped and the delimiter detected. Each row carries its record
// number and the line it starts on, so every later message can point at it.
package source

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// Format is an input format.
type Format string

// The formats a Reader understands.
const (
	CSV   Format = "csv"
	TSV   Format = "tsv"
	JSONL Format = "jsonl"
	XLSX  Format = "xlsx"
)

// Options says how to read an input. The zero value detects everything.
type Options struct {
	// Format is csv, tsv or jsonl; empty picks by file extension
	// (.jsonl, .ndjson, .tsv, with any .gz), else csv.
	Format Format
	// Delimiter separates CSV fields; 0 detects it among , ; tab and |
	// from the header line.
	Delimiter rune
	// Encoding names the input's character set: utf-8 (the default),
	// utf-16, windows-1252 or iso-8859-1. A UTF-8 or UTF-16 byte-order mark
	// always wins. Without it, text that is not valid UTF-8 is read as
	// Windows-1252, with a warning.
	Encoding string
	// Warn, when set, receives warnings about the input: a guessed
	// encoding, unnamed columns. Each comes once.
	Warn func(msg string)
	// Sheet names the XLSX sheet to read; the first when empty.
	Sheet string
	// MaxRecordBytes bounds one record (a CSV record, a JSONL line):
	// longer ones become a row error and are skipped, so that memory does
	// not grow with a hostile line. DefaultMaxRecordBytes when 0.
	MaxRecordBytes int
}

// DefaultMaxRecordBytes is the default bound on one record: 1 MiB, some
// thousand times a real customer row.
const DefaultMaxRecordBytes = 1 << 20

// MaxDepth bounds how deeply a JSONL object may nest.
const MaxDepth = 32

// ErrEmpty is the error of Open for an input with no header, not even a
// line: an export with nothing in it.
var ErrEmpty = errors.New("the input is empty: no header line, and no rows")

// Blank reports whether every value is empty or spaces: a row that
// spreadsheets leave behind (";;;;"), not a person.
func Blank(values []string) bool {
	for _, v := range values {
		if strings.TrimSpace(v) != "" {
			return false
		}
	}
	return true
}

// Row is one record of the input.
type Row struct {
	Record int // 1-based record number, header excluded
	Line   int // line of the input on which the record starts
	// Values are the row's fields in the order of the Reader's Columns. It
	// may be shorter than Columns (missing fields are empty). The slice is
	// reused by the next call to Next; the strings are not.
	Values []string
	// Err is a problem with this row alone (a ragged CSV row, a JSONL line
	// that is not an object). The row cannot be imported; reading goes on.
	Err error
	// Raw is the record's text as read (decoded to UTF-8, without its
	// line end), for a row that could not be split into the header's
	// columns: a stray quote, more or fewer fields than the header, a
	// JSONL line that does not parse. An errors export carries it, so
	// that nothing of the row is lost. Empty otherwise.
	Raw string
}

// Value returns the field at column index i, or "" when the row has none.
func (r *Row) Value(i int) string {
	if i < 0 || i >= len(r.Values) {
		return ""
	}
	return r.Values[i]
}

// Reader streams the rows of one input. It is not safe for concurrent use,
// except BytesRead, which may be called from any goroutine.
type Reader interface {
	// Columns returns the column names: the CSV header, or for JSONL the
	// flattened keys of the first object (later objects may add more).
	Columns() []string
	// Index returns the position of the named column in Row.Values, or -1
	// when a CSV input has no such column. A JSONL reader reserves a
	// position for a name it has not seen yet, since any later object may
	// carry it.
	Index(name string) int
	// Next returns the next row, or io.EOF after the last one. Any other
	// error is fatal to the input; row-level problems come in Row.Err.
	Next() (Row, error)
	// BytesRead is how many bytes of the file (compressed, for .gz) have
	// been consumed so far.
	BytesRead() int64
	// Close releases the input.
	Close() error
}

// Input describes an opened input for progress reporting.
type Input struct {
	Name      string // the path, or "stdin"
	Size      int64  // bytes of the file, -1 when unknown (stdin)
	Format    Format
	Delimiter rune // the CSV delimiter used (given or detected); 0 for JSONL
	// EstimatedRows guesses the row count from the file's size and the
	// length of its first lines, for sizing indexes; 0 when unknown.
	EstimatedRows int
}

// Open opens path ("-" for stdin) with opts.
func Open(path string, stdin io.Reader, opts Options) (Reader, Input, error) {
	if opts.Format == XLSX || (opts.Format == "" && FormatOf(path) == XLSX) {
		x, in, err := openXLSX(path, opts.Sheet, opts)
		if err != nil {
			return nil, in, err
		}
		return x, in, nil
	}
	in := Input{Name: path, Size: -1}
	var raw io.ReadCloser
	if path == "-" {
		in.Name = "stdin"
		raw = io.NopCloser(stdin)
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, in, err
		}
		st, err := f.Stat()
		if err == nil && st.IsDir() {
			f.Close()
			return nil, in, fmt.Errorf("%s is a directory: name a file in it", path)
		}
		if err == nil && st.Mode().IsRegular() {
			in.Size = st.Size()
		}
		raw = f
	}
	counted := &counter{r: raw}
	var r io.Reader = counted
	closers := []io.Closer{raw}
	fail := func(err error) (Reader, Input, error) {
		for _, c := range closers {
			c.Close()
		}
		return nil, in, fmt.Errorf("%s: %w", in.Name, err)
	}
	gzipped := strings.HasSuffix(strings.ToLower(path), ".gz")
	if !gzipped {
		// Binary bytes read as text would become a "header" of garbage.
		br := bufio.NewReaderSize(r, 64<<10)
		head, _ := br.Peek(512)
		if what := binaryKind(head, opts.Encoding); strings.HasPrefix(what, "UTF-16") {
			return fail(fmt.Errorf("this looks like %s", what))
		} else if what != "" {
			return fail(fmt.Errorf("this is not text: is it compressed? It starts like %s", what))
		}
		r = br
	}
	if gzipped {
		gz, err := gzip.NewReader(bufio.NewReaderSize(r, 64<<10))
		if err != nil {
			return fail(fmt.Errorf("not a gzip file: %w", err))
		}
		closers = append(closers, gz)
		r = gz
	}
	var err error
	var auto bool
	if r, auto, err = decode(r, opts.Encoding); err != nil {
		return fail(err)
	}
	if br, ok := r.(*bufio.Reader); ok && in.Size > 0 && !strings.HasSuffix(strings.ToLower(path), ".gz") {
		if head, _ := br.Peek(64 << 10); len(head) > 0 {
			if lines := bytes.Count(head, []byte{'\n'}); lines > 1 {
				in.EstimatedRows = int(in.Size / int64(len(head)/lines))
			}
		}
	}
	enc := &autoDecoder{auto: auto, warnf: opts.Warn}
	in.Format = opts.Format
	if in.Format == "" {
		in.Format = FormatOf(path)
	}
	var rd Reader
	switch in.Format {
	case CSV, TSV:
		delim := opts.Delimiter
		if delim == 0 && in.Format == TSV {
			delim = '\t'
		}
		var c *csvReader
		c, err = newCSV(r, in.Name, delim, counted, enc, maxRecord(opts))
		if err == nil {
			rd, in.Delimiter = c, c.comma
		}
	case JSONL:
		rd, err = newJSONL(r, in.Name, counted, enc, maxRecord(opts))
	default:
		return fail(fmt.Errorf("unknown format %q (want csv, tsv, jsonl or xlsx)", in.Format))
	}
	if err != nil {
		return fail(err)
	}
	return &closing{Reader: rd, closers: closers}, in, nil
}

func maxRecord(o Options) int {
	if o.MaxRecordBytes > 0 {
		return o.MaxRecordBytes
	}
	return DefaultMaxRecordBytes
}

// FormatOf guesses the format from a file name.
func FormatOf(path string) Format {
	p := strings.TrimSuffix(strings.ToLower(path), ".gz")
	switch filepath.Ext(p) {
	case ".jsonl", ".ndjson", ".json":
		return JSONL
	case ".tsv", ".tab":
		return TSV
	case ".xlsx", ".xlsm":
		return XLSX
	}
	return CSV
}

type closing struct {
	Reader
	closers []io.Closer
}

func (c *closing) Close() error {
	var errs []error
	for i := len(c.closers) - 1; i >= 0; i-- {
		errs = append(errs, c.closers[i].Close())
	}
	return errors.Join(errs...)
}

// counter counts the bytes read from the raw input.
type counter struct {
	r io.Reader
	n atomic.Int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

var (
	bomUTF8    = []byte{0xEF, 0xBB, 0xBF}
	bomUTF16LE = []byte{0xFF, 0xFE}
	bomUTF16BE = []byte{0xFE, 0xFF}
)

// decode returns a reader of UTF-8 text without a byte-order mark. auto
// is true when neither a BOM nor name chose the encoding.
func decode(r io.Reader, name string) (_ io.Reader, auto bool, _ error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(3)
	switch {
	case bytes.HasPrefix(head, bomUTF8):
		br.Discard(3)
		return br, false, nil
	case bytes.HasPrefix(head, bomUTF16LE), bytes.HasPrefix(head, bomUTF16BE):
		return transform.NewReader(br, unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM).NewDecoder()), false, nil
	}
	var enc encoding.Encoding
	switch strings.ToLower(strings.ReplaceAll(name, "_", "-")) {
	case "":
		return br, true, nil
	case "utf-8", "utf8":
		return br, false, nil
	case "utf-16", "utf16", "utf-16le":
		enc = unicode.UTF16(unicode.LittleEndian, unicode.UseBOM)
	case "utf-16be":
		enc = unicode.UTF16(unicode.BigEndian, unicode.UseBOM)
	case "windows-1252", "cp1252", "win-1252":
		enc = charmap.Windows1252
	case "iso-8859-1", "latin1", "latin-1", "iso8859-1":
		enc = charmap.ISO8859_1
	default:
		return nil, false, fmt.Errorf("unknown encoding %q (want utf-8, utf-16, windows-1252 or iso-8859-1)", name)
	}
	return transform.NewReader(br, enc.NewDecoder()), false, nil
}

// binaryKind names what head, the first bytes of an input, looks like when
// it is not text: "" for text.
func binaryKind(head []byte, encoding string) string {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return "a gzip file: name it .gz, or pipe it through gunzip -c"
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return "a zip archive (an Excel workbook? pass --format xlsx, or name it .xlsx)"
	case bytes.HasPrefix(head, []byte("%PDF")):
		return "a PDF document"
	case bytes.HasPrefix(head, []byte("\x89PNG")), bytes.HasPrefix(head, []byte{0xff, 0xd8, 0xff}), bytes.HasPrefix(head, []byte("GIF8")):
		return "an image"
	case bytes.HasPrefix(head, []byte("BZh")), bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z'}), bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "a bzip2, xz or zstd file: decompress it first"
	case bytes.HasPrefix(head, []byte{0xd0, 0xcf, 0x11, 0xe0}):
		return "an old Excel .xls workbook: save it as .xlsx or CSV"
	}
	if strings.HasPrefix(strings.ToLower(encoding), "utf-16") || bytes.HasPrefix(head, []byte{0xff, 0xfe}) || bytes.HasPrefix(head, []byte{0xfe, 0xff}) {
		return "" // UTF-16 text holds NUL bytes
	}
	if n := bytes.Count(head, []byte{0}); n > 0 && n*4 >= len(head)/8 {
		odd, even := 0, 0
		for i, b := range head {
			if b == 0 && i%2 == 1 {
				odd++
			} else if b == 0 {
				even++
			}
		}
		if odd*2 >= len(head)/2 || even*2 >= len(head)/2 {
			return "UTF-16 text without a byte-order mark: pass --encoding utf-16 (or utf-16be)"
		}
		return "binary data (it holds NUL bytes)"
	}
	return ""
}
