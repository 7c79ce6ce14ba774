// Package results owns the results file: the append-only CSV journal with
// one line per event, which is at once the audit trail of a run and the
// input of --resume. The last line of a row is its outcome.
package results

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gocarina/gocsv"

	"github.com/revcent-import/revcent-import/revcent"
)

// Status is a row's state in the journal.
type Status string

// The statuses of DESIGN.md.
const (
	// Pending is written, and reaches the OS, before the request is sent:
	// a row whose last line is pending may or may not have been created.
	Pending   Status = "pending"
	Created   Status = "created"
	Duplicate Status = "duplicate"
	Invalid   Status = "invalid"
	Failed    Status = "failed"
	// Existing: RevCent already had this person (its own answer, or a
	// search, said so); customer_id is that customer. Final, like created.
	Existing Status = "existing"
)

// RunStatus marks a run line: row 0, written when a run opens the file,
// whose message starts with "target=" and the target's name (see Target).
// It is not a row's status: readers of rows skip row 0.
const RunStatus Status = "run"

// Target is what a results file was made against: RevCent or a sandbox at
// a base URL with a key, or the in-process sandbox. The key is kept only
// as a fingerprint.
type Target struct {
	URL string // the API root; InProcessSandbox for the in-process one
	Key string // KeyFingerprint of the API key; "" for the in-process sandbox
}

// InProcessSandbox is the URL of the target of import --sandbox: a server
// that exists for one run, forgotten at exit.
const InProcessSandbox = "sandbox:in-process"

// KeyFingerprint is the first 12 hex digits of the key's SHA-256: enough
// to tell two keys apart, nothing to recover one from.
func KeyFingerprint(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:6])
}

// String is how the target is written in a run line: "URL key=FP".
func (t Target) String() string {
	if t.Key == "" {
		return t.URL
	}
	return t.URL + " key=" + t.Key
}

// Describe names the target for a person.
func (t Target) Describe() string {
	if t.URL == InProcessSandbox {
		return "the in-process sandbox (import --sandbox)"
	}
	if t.Key == "" {
		return t.URL
	}
	return t.URL + " with the key whose fingerprint is " + t.Key
}

// parseTarget reads a run line's message: "target=URL key=FP; ...".
func parseTarget(msg string) (Target, bool) {
	rest, ok := strings.CutPrefix(msg, "target=")
	if !ok {
		return Target{}, false
	}
	if i := strings.Index(rest, "; "); i >= 0 {
		rest = rest[:i]
	}
	url, key, _ := strings.Cut(rest, " key=")
	return Target{URL: url, Key: key}, url != ""
}

// WriteRun writes a run line: the target, and what the run is, for a
// person reading the journal.
func (w *Writer) WriteRun(t Target, about string) error {
	msg := "target=" + t.String()
	if about != "" {
		msg += "; " + about
	}
	return w.Write(&Record{Row: 0, Status: RunStatus, Message: msg})
}

// Header is the results file's header, in order. Readers find columns by
// name, so columns may be added at the end.
var Header = []string{"row", "line", "status", "customer_id", "error_code", "message", "http_status", "attempts", "email", "row_hash", "at", "retryable", "throttled", "request_hash"}

// Record is one line of the results file. The csv tags serve gocsv in
// reports and exports; the hot paths use encoding/csv directly.
type Record struct {
	Row        int    `csv:"row"`         // 1-based record number, header excluded
	Line       int    `csv:"line"`        // line of the input where the row starts
	Status     Status `csv:"status"`      //
	CustomerID string `csv:"customer_id"` // RevCent's id, for created and duplicate
	ErrorCode  string `csv:"error_code"`  // RevCent's error_code or a local code
	Message    string `csv:"message"`     // what happened, for a person
	HTTPStatus int    `csv:"http_status"` // 0 when no answer came
	Attempts   int    `csv:"attempts"`    // requests sent for the row so far
	Email      string `csv:"email"`       // the normalised email, for dedupe on resume
	RowHash    string `csv:"row_hash"`    // hash of the row's input values
	At         string `csv:"at"`          // RFC 3339 UTC with milliseconds
	// Retryable, on failed rows, says whether --retry-failed may help:
	// "yes" when retries ran out on a passing condition (429, 5xx,
	// network), "no" when RevCent refused the row itself.
	Retryable string `csv:"retryable"`
	Throttled int    `csv:"throttled"` // 429 answers the row got, on its outcome line
	// RequestHash, on created and existing lines written with a ledger, is
	// a hash of the mapped request without its card: `ledger import` reads
	// it, so that a person's later changes are seen.
	RequestHash string `csv:"request_hash"`
}

// TimeFormat is the format of Record.At.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// Writer appends records. It is not safe for concurrent use: one goroutine
// owns the results file. Write buffers; Flush hands what is buffered to the
// OS in one write (it survives the process being killed); Sync makes it
// durable (it survives the machine losing power).
type Writer struct {
	f      *os.File
	bw     *bufio.Writer
	cw     *csv.Writer
	fields []string
	line   []byte // the record being joined
	err    error
	off    int64 // file offset of the next record; Flush moves nothing, Write moves it
	// at is the last formatted time, for the millisecond atMs: many
	// records share one at high rates.
	at   string
	atMs int64
}

// ErrExists means the results file exists and --resume was not given.
var ErrExists = errors.New("results file exists")

// ErrLocked means another run holds the results file.
var ErrLocked = errors.New("results file is in use by another run (an overlapping cron job?): wait for it to finish")

// Create creates a new results file and writes its header. It fails with
// ErrExists when the file is already there: an earlier run's journal is
// never overwritten.
func Create(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrExists)
	}
	if err != nil {
		return nil, err
	}
	if err := lock(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	w, err := headed(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// headed writes the header at f's offset, and returns a Writer after it.
func headed(f *os.File) (*Writer, error) {
	w := newWriter(f)
	w.bw.Write(headerLine)
	return w, w.Flush()
}

func newWriter(f *os.File) *Writer {
	w := &Writer{f: f, fields: make([]string, len(Header))}
	if off, err := f.Seek(0, io.SeekCurrent); err == nil {
		w.off = off
	}
	w.bw = bufio.NewWriterSize(countingWriter{f, &w.off}, 64<<10)
	w.cw = csv.NewWriter(w.bw)
	return w
}

// countingWriter advances *off by what reaches the file.
type countingWriter struct {
	w   io.Writer
	off *int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	*c.off += int64(n)
	return n, err
}

// Offset returns the file offset at which the next record will start.
func (w *Writer) Offset() int64 {
	return w.off + int64(w.bw.Buffered())
}

// CustomerID reads back the customer_id of the record written at off
// (from Offset), flushing first. It serves the rare row that needs an
// earlier row's id, so that no id is kept in memory per row.
func (w *Writer) CustomerID(off int64) (string, error) {
	if err := w.Flush(); err != nil {
		return "", err
	}
	rec, err := csv.NewReader(io.NewSectionReader(w.f, off, 1<<16)).Read()
	if err != nil {
		return "", fmt.Errorf("%s at byte %d: %w", w.f.Name(), off, err)
	}
	return rec[3], nil // Header[3] is customer_id
}

// Write buffers one record.
func (w *Writer) Write(r *Record) error {
	if w.err != nil {
		return w.err
	}
	if r.At == "" {
		now := time.Now()
		if ms := now.UnixMilli(); ms != w.atMs {
			w.at, w.atMs = now.UTC().Format(TimeFormat), ms
		}
		r.At = w.at
	}
	// One record per line: a line break inside a message (RevCent's, or a
	// row error quoting input) becomes " / ", so that the journal can be
	// split at any newline and read on several cores.
	// Anything shaped like a card number is masked, whatever wrote it.
	code, msg, email := oneLine(r.ErrorCode), revcent.Scrub(oneLine(r.Message), "", ""), oneLine(r.Email)
	for _, v := range [...]string{string(r.Status), r.CustomerID, code, msg, email, r.RowHash, r.At, r.Retryable, r.RequestHash} {
		if needsQuotes(v) {
			w.err = w.writeCSV(r, code, msg, email)
			return w.err
		}
	}
	// Nothing to quote (the numbers never need it): join the fields here,
	// at a fraction of csv.Writer's cost, with the same bytes.
	b := strconv.AppendInt(w.line[:0], int64(r.Row), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(r.Line), 10)
	b = append(append(append(b, ','), r.Status...), ',')
	b = append(append(b, r.CustomerID...), ',')
	b = append(append(b, code...), ',')
	b = append(append(b, msg...), ',')
	if r.HTTPStatus != 0 {
		b = strconv.AppendInt(b, int64(r.HTTPStatus), 10)
	}
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(r.Attempts), 10)
	b = append(b, ',')
	b = append(append(b, email...), ',')
	b = append(append(b, r.RowHash...), ',')
	b = append(append(b, r.At...), ',')
	b = append(append(b, r.Retryable...), ',')
	if r.Throttled != 0 {
		b = strconv.AppendInt(b, int64(r.Throttled), 10)
	}
	b = append(append(b, ','), r.RequestHash...)
	b = append(b, '\n')
	w.line = b
	_, w.err = w.bw.Write(b)
	return w.err
}

// writeCSV writes a record that needs quoting through csv.Writer, flushed
// into bw at once to keep the order.
func (w *Writer) writeCSV(r *Record, code, msg, email string) error {
	f := w.fields
	f[0], f[1], f[2], f[3] = strconv.Itoa(r.Row), strconv.Itoa(r.Line), string(r.Status), r.CustomerID
	f[4], f[5], f[6] = code, msg, ""
	if r.HTTPStatus != 0 {
		f[6] = strconv.Itoa(r.HTTPStatus)
	}
	f[7], f[8], f[9], f[10], f[11], f[12], f[13] = strconv.Itoa(r.Attempts), email, r.RowHash, r.At, r.Retryable, "", r.RequestHash
	if r.Throttled != 0 {
		f[12] = strconv.Itoa(r.Throttled)
	}
	if err := w.cw.Write(f); err != nil {
		return err
	}
	w.cw.Flush()
	return w.cw.Error()
}

// needsQuotes is encoding/csv's rule for a comma-separated field: a comma,
// quote or line break inside, a leading space, or the field \.
func needsQuotes(v string) bool {
	if v == "" {
		return false
	}
	if v == `\.` {
		return true
	}
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case ',', '"', '\r', '\n':
			return true
		}
	}
	r, _ := utf8.DecodeRuneInString(v)
	return unicode.IsSpace(r)
}

var lineBreaks = strings.NewReplacer("\r\n", " / ", "\n", " / ", "\r", " / ")

func oneLine(s string) string {
	if strings.ContainsAny(s, "\r\n") {
		return lineBreaks.Replace(s)
	}
	return s
}

// Flush writes everything buffered through to the OS.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	w.cw.Flush()
	if err := w.cw.Error(); err != nil {
		w.err = err
		return err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("results file %s: %w", w.f.Name(), err)
	}
	return w.err
}

// Sync flushes and makes the file durable.
func (w *Writer) Sync() error {
	if err := w.Flush(); err != nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		w.err = fmt.Errorf("results file %s: %w", w.f.Name(), err)
	}
	return w.err
}

// Close syncs and closes the file.
func (w *Writer) Close() error {
	err := w.Sync()
	return errors.Join(err, w.f.Close())
}

// Name returns the file's path.
func (w *Writer) Name() string { return w.f.Name() }

// Entry is what the journal says about one row: its last line. The
// customer id is not kept in memory: see Index.CustomerID.
type Entry struct {
	Status    Status
	RowHash   uint64 // the row_hash column; 0 when absent
	Attempts  int
	Retryable bool // a failed row whose retries ran out: it may have been in doubt
	// FirstSent is when the row's first pending line was written (whole
	// seconds): no request for the row left before it. Zero when the
	// journal has no pending line for the row.
	FirstSent time.Time
}

// entry is an Entry packed into 24 bytes, kept for every row: a million
// rows cost 24 MB.
type entry struct {
	off      int64 // where the row's last line starts in the file
	hash     uint64
	first    uint32 // unix seconds of the row's first pending line; 0: none
	attempts uint16
	status   uint8 // index into statuses; 0: no line for this row
	retry    bool
}

var statuses = []Status{"", Pending, Created, Duplicate, Invalid, Failed, Existing}

func statusCode(s []byte) uint8 {
	for i, st := range statuses[1:] {
		if string(st) == string(s) {
			return uint8(i + 1)
		}
	}
	return 0
}

// Index is the journal read back: the last line of every row.
type Index struct {
	path   string
	rows   []entry // by row number - 1
	n      int
	lines  int
	keep   int64          // bytes of complete lines, for readers after Load
	Counts map[Status]int // rows by last status
	Torn   bool           // the file ended in a partial line, which was dropped
	// Target is what the last run line names; zero in a journal written
	// before run lines were (such a file is bound at its next run).
	Target Target
	Runs   int // run lines: how many runs opened the file

	recMu sync.Mutex
	rf    *os.File // for Record, opened on first use
	head  []string
	br    *bufio.Reader // Record's, reset for each line
}

// Close releases the file Record reads lines from.
func (ix *Index) Close() error {
	ix.recMu.Lock()
	defer ix.recMu.Unlock()
	if ix.rf == nil {
		return nil
	}
	err := ix.rf.Close()
	ix.rf = nil
	return err
}

// Last returns the last entry for row.
func (ix *Index) Last(row int) (Entry, bool) {
	if row < 1 || row > len(ix.rows) || ix.rows[row-1].status == 0 {
		return Entry{}, false
	}
	e := ix.rows[row-1]
	out := Entry{Status: statuses[e.status], RowHash: e.hash, Attempts: int(e.attempts), Retryable: e.retry}
	if e.first != 0 {
		out.FirstSent = time.Unix(int64(e.first), 0)
	}
	return out, true
}

// CustomerID reads the customer_id of row's last line back from the file.
// It is for the rare row that needs it (a duplicate of a row created in an
// earlier run); keeping every id in memory would cost 20+ bytes a row.
func (ix *Index) CustomerID(row int) (string, error) {
	rec, err := ix.Record(row)
	return rec.CustomerID, err
}

// Record reads row's last line back from the file, for the few rows that
// need more than Last keeps (a row to reconcile needs its last line's time).
func (ix *Index) Record(row int) (Record, error) {
	if row < 1 || row > len(ix.rows) || ix.rows[row-1].status == 0 {
		return Record{}, fmt.Errorf("%s: no line for row %d", ix.path, row)
	}
	// One open file and one header read serve every call: under --force a
	// shifted input asks for every row.
	ix.recMu.Lock()
	if ix.rf == nil {
		f, err := os.Open(ix.path)
		if err != nil {
			ix.recMu.Unlock()
			return Record{}, err
		}
		head, err := csv.NewReader(bufio.NewReader(f)).Read()
		if err != nil {
			f.Close()
			ix.recMu.Unlock()
			return Record{}, err
		}
		if !slices.Contains(head, "customer_id") {
			f.Close()
			ix.recMu.Unlock()
			return Record{}, fmt.Errorf("%s: no customer_id column", ix.path)
		}
		ix.rf, ix.head, ix.br = f, head, bufio.NewReaderSize(nil, 4096)
	}
	// One buffer serves every call too: an export reads a million rows
	// back, one by one.
	head := ix.head
	ix.br.Reset(io.NewSectionReader(ix.rf, ix.rows[row-1].off, 1<<62))
	rec, err := csv.NewReader(ix.br).Read()
	ix.recMu.Unlock()
	if err != nil {
		return Record{}, fmt.Errorf("%s: row %d: %w", ix.path, row, err)
	}
	col := func(name string) string { // a header is a dozen names: no map
		for i, h := range head {
			if h == name && i < len(rec) {
				return rec[i]
			}
		}
		return ""
	}
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	return Record{Row: row, Line: atoi(col("line")), Status: Status(col("status")), CustomerID: col("customer_id"),
		ErrorCode: col("error_code"), Message: col("message"), HTTPStatus: atoi(col("http_status")), Attempts: atoi(col("attempts")),
		Email: col("email"), RowHash: col("row_hash"), At: col("at"), Retryable: col("retryable"), Throttled: atoi(col("throttled")),
		RequestHash: col("request_hash")}, nil
}

// Rows returns the rows whose last status is st, in order.
func (ix *Index) Rows(st Status) []int {
	var out []int
	for i, e := range ix.rows {
		if e.status != 0 && statuses[e.status] == st {
			out = append(out, i+1)
		}
	}
	return out
}

// Len returns the number of rows the journal mentions.
func (ix *Index) Len() int { return ix.n }

// Resume opens an existing results file to continue a run: it drops a
// partial last line left by a process killed mid-write, reads the journal
// into an Index, and returns a Writer appending after it. created, when
// not nil, is called for each row whose last line is created, with its
// email (valid during the call only; a row may be reported twice), so
// that the caller can index emails without the Index keeping them.
func Resume(path string, created func(row int, email []byte)) (*Writer, *Index, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := lock(f); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	// A run killed between creating the file and writing its header
	// leaves it empty, or with part of the header: nothing was sent under
	// it (a request leaves only after its pending line). It starts again,
	// as a new file does.
	if unstarted, err := headerOnlyPart(f); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	} else if unstarted {
		err := f.Truncate(0)
		if err == nil {
			_, err = headed(f)
		}
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	// The journal is read, and must read as one, before anything is cut:
	// only a partial last line after a valid journal is dropped (a run
	// killed mid-write). Any other file is left as it was.
	keep, size, err := completeLines(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	ix, err := loadFile(f, keep, path, created)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if keep < size {
		if err := f.Truncate(keep); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		ix.Torn = true
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, nil, err
	}
	return newWriter(f), ix, nil
}

// ReadRecords returns every row line of a results file, in order (run
// lines left out). It holds the whole file: use Load for resume.
func ReadRecords(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs []Record
	if err := gocsv.UnmarshalFile(f, &recs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return slices.DeleteFunc(recs, func(r Record) bool { return r.Row == 0 && r.Status == RunStatus }), nil
}

// Load reads a results file into an Index without changing it or locking
// it: a partial last line (a run killed mid-write, or one still writing)
// is left out.
func Load(path string) (*Index, error) { return load(path, true) }

// LoadSmall is Load on one core: the index of the file is built in one
// slice, not two halves a row number long each (a million rows: 26 MB at
// the peak, not 52). Reports and exports use it; a resume, whose start-up
// is what it waits on, uses Load.
func LoadSmall(path string) (*Index, error) { return load(path, false) }

func load(path string, parallel bool) (*Index, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	keep, _, err := completeLines(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	size := keep
	if !parallel {
		size = -keep // loadFile's sign for one core
	}
	ix, err := loadFile(f, size, path, nil)
	if ix != nil {
		ix.keep = keep
	}
	return ix, err
}

// headerLine is the header as a results file starts with it (its names
// need no quotes).
var headerLine = []byte(strings.Join(Header, ",") + "\n")

// headerOnlyPart says whether f holds no more than the start of the
// header line: nothing at all, or part of it with no newline.
func headerOnlyPart(f *os.File) (bool, error) {
	st, err := f.Stat()
	if err != nil || st.Size() >= int64(len(headerLine)) {
		return false, err
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		return false, err
	}
	return bytes.HasPrefix(headerLine, b), nil
}

// completeLines returns how many bytes of f end with its last newline, and
// f's size: a reader that ignores the rest never sees a partial last line.
func completeLines(f *os.File) (keep, size int64, err error) {
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	size = st.Size()
	if size == 0 {
		return 0, 0, errors.New("empty results file: delete it, or run without --resume")
	}
	buf := make([]byte, 64<<10)
	for end := size; end > 0; {
		start := max(0, end-int64(len(buf)))
		n, err := f.ReadAt(buf[:end-start], start)
		if err != nil && err != io.EOF {
			return 0, 0, err
		}
		for i := n - 1; i >= 0; i-- {
			if buf[i] == '\n' {
				return start + int64(i) + 1, size, nil
			}
		}
		end = start
	}
	return 0, size, errors.New("no complete line: not a results file")
}

// loader parses journal records, given the header's column positions.
type loader struct {
	name                               string
	nFields                            int
	iRow, iStatus, iEmail, iHash, iAtt int
	iRetry, iAt, iMsg                  int
	hasRetry, hasAt                    bool
	created                            func(row int, email []byte)
}

func newLoader(head []string, name string, created func(row int, email []byte)) (*loader, error) {
	col := map[string]int{}
	for i, h := range head {
		col[h] = i
	}
	for _, need := range []string{"row", "status", "customer_id", "email", "row_hash", "attempts"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("%s: not a results file: no %q column in the header", name, need)
		}
	}
	l := &loader{name: name, nFields: len(head), iRow: col["row"], iStatus: col["status"], iEmail: col["email"],
		iHash: col["row_hash"], iAtt: col["attempts"], created: created}
	l.iRetry, l.hasRetry = col["retryable"]
	l.iAt, l.hasAt = col["at"]
	l.iMsg = -1
	if i, ok := col["message"]; ok {
		l.iMsg = i
	}
	return l, nil
}

// errNotOneLine says a journal line did not parse on its own: a journal
// written before records were kept to one line each. loadFile then reads
// the whole file with encoding/csv.
var errNotOneLine = errors.New("a record spans lines")

// parseLines reads the records of a journal written one record per line
// (see oneLine) from r, which starts at byte base of the file, into ix. A
// line without a quote is split at its commas, which is what encoding/csv
// does with it; a line with one is read by encoding/csv. rows sizes ix for
// that many rows at once (0: grow as needed). Line numbers in its errors
// count from r's start: loadFile reports errors from parseCSV instead.
func (l *loader) parseLines(r *bufio.Reader, base int64, ix *Index, rows int) error {
	if rows > 0 {
		ix.rows = make([]entry, 0, rows)
	}
	fields := make([][]byte, 0, l.nFields+1)
	off, line := base, 0
	for {
		b, err := r.ReadSlice('\n')
		if err == io.EOF && len(b) == 0 {
			return nil
		}
		if err != nil {
			// A line longer than r's buffer, or a missing newline (loadFile
			// reads only up to the last one): leave it to encoding/csv.
			return errNotOneLine
		}
		line++
		start := off
		off += int64(len(b))
		b = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
		if len(b) == 0 {
			continue // encoding/csv skips empty lines too
		}
		fields = fields[:0]
		if bytes.IndexByte(b, '"') < 0 {
			for {
				i := bytes.IndexByte(b, ',')
				if i < 0 {
					fields = append(fields, b)
					break
				}
				fields = append(fields, b[:i])
				b = b[i+1:]
			}
		} else {
			cr := csv.NewReader(bytes.NewReader(b))
			cr.FieldsPerRecord = -1
			rec, err := cr.Read()
			if err != nil {
				return errNotOneLine
			}
			for _, f := range rec {
				fields = append(fields, []byte(f))
			}
		}
		if err := l.add(fields, line, start, ix); err != nil {
			return err
		}
	}
}

// parseCSV reads records from r, which starts at byte base of the file,
// with encoding/csv: any journal, including one whose records span lines.
func (l *loader) parseCSV(r io.Reader, base int64, ix *Index, rows int) error {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	if rows > 0 {
		ix.rows = make([]entry, 0, rows)
	}
	var fields [][]byte
	off := base
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", l.name, err)
		}
		start := off
		off = base + cr.InputOffset()
		line, _ := cr.FieldPos(0)
		fields = fields[:0]
		for _, f := range rec {
			fields = append(fields, []byte(f))
		}
		if err := l.add(fields, line+1, start, ix); err != nil {
			return err
		}
	}
}

// batched returns a copy of l for one of two halves parsed at once: it
// collects the created rows' emails and reports them under mu a batch at a
// time, rather than taking mu for each. flush reports the rest.
func (l *loader) batched(mu *sync.Mutex) (c *loader, flush func()) {
	c = new(loader)
	*c = *l
	if l.created == nil {
		return c, func() {}
	}
	var rows, ends []int
	var emails []byte
	flush = func() {
		mu.Lock()
		start := 0
		for i, row := range rows {
			l.created(row, emails[start:ends[i]])
			start = ends[i]
		}
		mu.Unlock()
		rows, ends, emails = rows[:0], ends[:0], emails[:0]
	}
	c.created = func(row int, email []byte) {
		rows = append(rows, row)
		emails = append(emails, email...)
		ends = append(ends, len(emails))
		if len(rows) == 4096 {
			flush()
		}
	}
	return c, flush
}

// add records one journal line, which starts at byte start of the file and
// is line lineNo of the part being parsed.
func (l *loader) add(rec [][]byte, lineNo int, start int64, ix *Index) error {
	if len(rec) < l.nFields {
		return fmt.Errorf("%s line %d: %d fields, the header has %d: the file was edited or damaged", l.name, lineNo, len(rec), l.nFields)
	}
	row, ok := decimal(rec[l.iRow])
	if ok && row == 0 && string(rec[l.iStatus]) == string(RunStatus) {
		ix.Runs++
		if l.iMsg >= 0 {
			if t, ok := parseTarget(string(rec[l.iMsg])); ok {
				ix.Target = t
			}
		}
		return nil
	}
	if !ok || row < 1 || row > 1<<31 {
		return fmt.Errorf("%s line %d: row %q is not a row number", l.name, lineNo, rec[l.iRow])
	}
	st := statusCode(rec[l.iStatus])
	if st == 0 {
		return fmt.Errorf("%s line %d: unknown status %q", l.name, lineNo, rec[l.iStatus])
	}
	att, _ := decimal(rec[l.iAtt])
	hash, _ := hex64(rec[l.iHash])
	for len(ix.rows) < row {
		ix.rows = append(ix.rows, entry{})
	}
	first := ix.rows[row-1].first
	if first == 0 && l.hasAt && statuses[st] == Pending {
		first = unixSeconds(rec[l.iAt])
	}
	ix.rows[row-1] = entry{off: start, hash: hash, first: first, attempts: uint16(min(att, 1<<16-1)), status: st,
		retry: l.hasRetry && string(rec[l.iRetry]) == "yes"}
	// created and existing are final for a row: no later line supersedes them.
	if l.created != nil && (statuses[st] == Created || statuses[st] == Existing) && len(rec[l.iEmail]) > 0 {
		l.created(row, rec[l.iEmail])
	}
	return nil
}

// unixSeconds reads an at value (TimeFormat) as unix seconds; 0 when it
// does not parse. Only pending lines are read, so it need not be fast,
// but it is: no time.Parse for a million lines on resume.
func unixSeconds(b []byte) uint32 {
	// 2006-01-02T15:04:05...
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return 0
	}
	num := func(b []byte) int {
		n, ok := decimal(b)
		if !ok {
			return -1
		}
		return n
	}
	y, mo, d, h, mi, sec := num(b[0:4]), num(b[5:7]), num(b[8:10]), num(b[11:13]), num(b[14:16]), num(b[17:19])
	if y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60 {
		return 0
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC).Unix()
	if t <= 0 || t > 1<<32-1 {
		return 0
	}
	return uint32(t)
}

// decimal parses a non-negative decimal of up to 18 digits.
func decimal(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// hex64 parses up to 16 hexadecimal digits, as RowHash's are written.
func hex64(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		n = n<<4 | uint64(c)
	}
	return n, true
}

// count fills ix.n and ix.Counts from its entries.
func (ix *Index) count() {
	ix.n, ix.Counts = 0, map[Status]int{}
	for _, e := range ix.rows {
		if e.status != 0 {
			ix.n++
			ix.Counts[statuses[e.status]]++
		}
	}
}

// parallelFrom is the journal size above which loadFile parses the two
// halves on two cores. Journals are written one record per line (see
// oneLine), so any newline is a record boundary.
const parallelFrom = 8 << 20

// loadFile reads the first size bytes of a results file into an Index.
// Past parallelFrom it parses the halves at once, the later half winning
// where a row has lines in both. A journal from before records were kept
// to one line (a quoted line break in a message), or a damaged one, is
// read again in one pass by encoding/csv, whose errors name the line.
func loadFile(f *os.File, size int64, name string, created func(row int, email []byte)) (*Index, error) {
	serial := size < 0 // LoadSmall's
	size = max(size, -size)
	cr := csv.NewReader(io.NewSectionReader(f, 0, size))
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: not a results file: %w", name, err)
	}
	headEnd := cr.InputOffset()
	l, err := newLoader(head, name, created)
	if err != nil {
		return nil, err
	}
	estimate := int(size / 120) // about 150 bytes a line
	lines := func(l *loader, from, to int64, ix *Index) error {
		return l.parseLines(bufio.NewReaderSize(io.NewSectionReader(f, from, to-from), 256<<10), from, ix, estimate)
	}
	legacy := func() (*Index, error) {
		ix := &Index{path: name}
		if err := l.parseCSV(bufio.NewReaderSize(io.NewSectionReader(f, headEnd, size-headEnd), 256<<10), headEnd, ix, estimate); err != nil {
			return nil, err
		}
		ix.count()
		return ix, nil
	}
	split := int64(-1)
	if size >= parallelFrom && !serial {
		split = nextLine(f, size/2, size)
	}
	if split <= headEnd || split >= size {
		ix := &Index{path: name}
		if err := lines(l, headEnd, size, ix); err != nil {
			return legacy()
		}
		ix.count()
		return ix, nil
	}
	a, b := &Index{path: name}, &Index{path: name}
	var errA, errB error
	var wg sync.WaitGroup
	var mu sync.Mutex // created is called by one half at a time
	la, flushA := l.batched(&mu)
	lb, flushB := l.batched(&mu)
	wg.Go(func() { errA = lines(la, headEnd, split, a) })
	errB = lines(lb, split, size, b)
	wg.Wait()
	flushA()
	flushB()
	if errA != nil || errB != nil {
		return legacy()
	}
	for len(a.rows) < len(b.rows) {
		a.rows = append(a.rows, entry{})
	}
	for i, e := range b.rows {
		if e.status != 0 {
			if a.rows[i].first != 0 {
				e.first = a.rows[i].first // the earlier half saw the first pending line
			}
			a.rows[i] = e
		}
	}
	a.Runs += b.Runs
	if b.Target.URL != "" {
		a.Target = b.Target // the later run line
	}
	a.count()
	return a, nil
}

// nextLine returns the offset just after the first newline at or after
// from, or -1.
func nextLine(f *os.File, from, size int64) int64 {
	buf := make([]byte, 64<<10)
	for off := from; off < size; off += int64(len(buf)) {
		n, _ := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			return off + int64(i) + 1
		}
		if n == 0 {
			break
		}
	}
	return -1
}
