package results

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
)

func TestWriteResumeRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.csv")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	recs := []Record{
		{Row: 1, Line: 2, Status: Pending, Attempts: 1, Email: "a@b.co", RowHash: "a1"},
		{Row: 2, Line: 3, Status: Invalid, Message: `line 3, column "Email": "x, ""y""" is not an email address`, RowHash: "h2"},
		{Row: 1, Line: 2, Status: Created, CustomerID: "abcdefghij0123456789", HTTPStatus: 200, Attempts: 1, Email: "a@b.co", RowHash: "a1"},
		{Row: 3, Line: 4, Status: Pending, Attempts: 1, Email: "c@d.co", RowHash: "h3"},
		{Row: 4, Line: 6, Status: Failed, ErrorCode: "invalid_request", Message: "multi\nline", HTTPStatus: 400, Attempts: 1, RowHash: "h4"},
	}
	for i := range recs {
		if err := w.Write(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	// The file reads back with gocsv, as reports do.
	back, err := ReadRecords(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(recs) || back[1].Message != recs[1].Message || back[4].Message != "multi / line" || back[2].HTTPStatus != 200 || back[0].At == "" {
		t.Errorf("read back %+v", back)
	}

	if _, err := Create(path); !errors.Is(err, ErrExists) {
		t.Errorf("Create over an existing file: %v, want ErrExists", err)
	}

	emails := map[int]string{}
	w, ix, err := Resume(path, func(row int, email []byte) { emails[row] = string(email) })
	if err != nil {
		t.Fatal(err)
	}
	if len(emails) != 1 || emails[1] != "a@b.co" {
		t.Errorf("created rows' emails: %v, want row 1 only", emails)
	}
	want := map[int]Status{1: Created, 2: Invalid, 3: Pending, 4: Failed}
	for row, st := range want {
		if e, ok := ix.Last(row); !ok || e.Status != st {
			t.Errorf("row %d: %+v, want %s", row, e, st)
		}
	}
	if e, _ := ix.Last(1); e.RowHash != 0xa1 || e.Attempts != 1 {
		t.Errorf("row 1 entry %+v", e)
	}
	if id, err := ix.CustomerID(1); err != nil || id != "abcdefghij0123456789" {
		t.Errorf("CustomerID(1) = %q, %v", id, err)
	}
	if _, err := ix.CustomerID(9); err == nil {
		t.Error("CustomerID of a row with no line succeeded")
	}
	if ix.Len() != 4 || ix.Counts[Created] != 1 || ix.Counts[Pending] != 1 || ix.Torn {
		t.Errorf("Len %d counts %v torn %v", ix.Len(), ix.Counts, ix.Torn)
	}
	w.Write(&Record{Row: 3, Line: 4, Status: Created, CustomerID: "x"})
	w.Close()
	ix, err = Load(path)
	if e, _ := ix.Last(3); err != nil || e.Status != Created {
		t.Errorf("after appending: %+v %v", e, err)
	}
}

func TestResumeRepairsTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.csv")
	w, _ := Create(path)
	w.Write(&Record{Row: 1, Line: 2, Status: Created, CustomerID: "id1"})
	w.Close()
	// A process killed mid-write leaves part of a line.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("2,3,crea")
	f.Close()

	w, ix, err := Resume(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !ix.Torn || ix.Len() != 1 {
		t.Errorf("torn %v len %d, want the partial line dropped", ix.Torn, ix.Len())
	}
	w.Write(&Record{Row: 2, Line: 3, Status: Created, CustomerID: "id2"})
	w.Close()
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), "crea\n") || strings.Count(string(b), "\n") != 3 {
		t.Errorf("file after repair:\n%s", b)
	}
	if ix, err := Load(path); err != nil || ix.Len() != 2 {
		t.Errorf("Load after repair: %v %v", ix, err)
	}
}

// TestResumeStartsAFileKilledBeforeItsHeader: a run killed between
// creating its results file and writing the header leaves it empty, or
// with part of the header; --resume starts it as a new one (it failed,
// "empty results file", and a nightly job with --resume stayed stuck).
func TestResumeStartsAFileKilledBeforeItsHeader(t *testing.T) {
	for name, content := range map[string]string{"empty": "", "part of the header": "row,line,sta"} {
		path := filepath.Join(t.TempDir(), "r.csv")
		os.WriteFile(path, []byte(content), 0o644)
		w, ix, err := Resume(path, nil)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if ix.Len() != 0 || ix.Torn {
			t.Errorf("%s: %d rows, torn %v", name, ix.Len(), ix.Torn)
		}
		w.Write(&Record{Row: 1, Line: 2, Status: Created, CustomerID: "id1"})
		w.Close()
		if ix, err := Load(path); err != nil || ix.Len() != 1 {
			t.Errorf("%s: Load after: %v %v", name, ix, err)
		}
		if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), strings.Join(Header, ",")+"\n1,2,created,id1") {
			t.Errorf("%s: file after:\n%s", name, b)
		}
	}
}

func TestLoadRejectsForeignFiles(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"not-results.csv": "First Name,Email\nAda,a@b.co\n",
		"bad-status.csv":  strings.Join(Header, ",") + "\n1,2,done,,,,,1,,,,,\n",
		"bad-row.csv":     strings.Join(Header, ",") + "\nx,2,created,,,,,1,,,,,\n",
		"short.csv":       strings.Join(Header, ",") + "\n1,2,created\n",
		"no-newline.csv":  "First Name,Email",
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		if _, _, err := Resume(p, nil); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v, want an error naming the file", name, err)
		}
	}
}

func TestWriteErrorSticks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.csv")
	w, _ := Create(path)
	w.f.Close() // the disk goes away under the writer
	w.Write(&Record{Row: 1, Status: Pending})
	if err := w.Flush(); err == nil {
		t.Fatal("Flush to a closed file succeeded")
	}
	if err := w.Write(&Record{Row: 2, Status: Pending}); err == nil {
		t.Error("Write after a failed Flush succeeded: a lost record must stop the run")
	}
}

func TestLockKeepsOutASecondRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.csv")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Resume(path, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("second run while the first holds the file: %v, want ErrLocked", err)
	}
	w.Close()
	w2, _, err := Resume(path, nil)
	if err != nil {
		t.Fatalf("after the first run closed: %v", err)
	}
	w2.Close()
}

// TestParallelLoadMatchesSequential writes a journal past parallelFrom
// whose rows have lines on both sides of the split, and checks the
// two-core load against one pass; then a journal with a raw line break in
// a message (as written before lines were kept single), which must fall
// back to one pass and still be right.
func TestParallelLoadMatchesSequential(t *testing.T) {
	for _, oldStyle := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "big.csv")
		w, _ := Create(path)
		const rows = 40000
		emails := 0
		for i := 1; i <= rows; i++ {
			w.Write(&Record{Row: i, Line: i + 1, Status: Pending, Attempts: 1, Email: fmt.Sprintf("p%d@example.com", i), RowHash: "ab", Message: strings.Repeat("x", 60)})
		}
		for i := rows; i >= 1; i-- { // outcomes in reverse: many rows span the split
			st := Created
			if i%7 == 0 {
				st = Failed
			}
			email := fmt.Sprintf("p%d@example.com", i)
			if i%5 == 0 {
				email = fmt.Sprintf(`"p,%d"@example.com`, i) // quoted in the journal
			}
			msg := ""
			if st == Failed {
				msg = `RevCent said: "no", twice`
			}
			w.Write(&Record{Row: i, Line: i + 1, Status: st, CustomerID: fmt.Sprintf("%020d", i), Attempts: 2, Email: email, RowHash: fmt.Sprintf("%x", i*977), Retryable: "yes", Message: msg})
			if st == Created {
				emails++
			}
		}
		w.Close()
		if oldStyle {
			// A quoted line break in the middle of the file.
			b, _ := os.ReadFile(path)
			mid := bytes.IndexByte(b[len(b)/2:], '\n') + len(b)/2 + 1
			line := `20001,20002,failed,,x,"multi` + "\n" + `line",400,1,,ef,2026-11-26T00:00:00.000Z,no,,` + "\n"
			b = append(b[:mid], append([]byte(line), b[mid:]...)...)
			os.WriteFile(path, b, 0o644)
		}
		if st, _ := os.Stat(path); st.Size() < parallelFrom {
			t.Fatalf("journal of %d bytes, want more than %d", st.Size(), parallelFrom)
		}
		f, _ := os.Open(path)
		st, _ := f.Stat()
		got := map[int]string{}
		par, err := loadFile(f, st.Size(), path, func(row int, email []byte) { got[row] = string(email) })
		if err != nil {
			t.Fatal(err)
		}
		seq := &Index{path: path}
		cr := csv.NewReader(f)
		f.Seek(0, io.SeekStart)
		head, _ := cr.Read()
		l, _ := newLoader(head, path, nil)
		f.Seek(0, io.SeekStart)
		headEnd := int64(len(strings.Join(head, ",")) + 1)
		if err := l.parseCSV(io.NewSectionReader(f, headEnd, st.Size()-headEnd), headEnd, seq, 0); err != nil {
			t.Fatal(err)
		}
		seq.count()
		f.Close()
		if !reflect.DeepEqual(par.rows, seq.rows) || !reflect.DeepEqual(par.Counts, seq.Counts) || par.n != seq.n {
			t.Fatalf("old style %v: the parallel load differs from one pass (counts %v vs %v)", oldStyle, par.Counts, seq.Counts)
		}
		if par.Counts[Created] != emails || len(got) != emails {
			t.Errorf("old style %v: %d created, %d emails reported; want %d", oldStyle, par.Counts[Created], len(got), emails)
		}
		if got[10] != `"p,10"@example.com` || got[11] != "p11@example.com" || par.rows[9].hash != 10*977 {
			t.Errorf("old style %v: row 10 %q %x, row 11 %q", oldStyle, got[10], par.rows[9].hash, got[11])
		}
		if id, err := par.CustomerID(12345); err != nil || id != fmt.Sprintf("%020d", 12345) {
			t.Errorf("CustomerID after the parallel load: %q %v", id, err)
		}
	}
}

func TestWriterKeepsOneRecordPerLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.csv")
	w, _ := Create(path)
	w.Write(&Record{Row: 1, Status: Failed, Message: "RevCent said:\r\nno\nreally", ErrorCode: "a\nb"})
	w.Close()
	b, _ := os.ReadFile(path)
	if strings.Count(string(b), "\n") != 2 || !strings.Contains(string(b), "RevCent said: / no / really") {
		t.Errorf("journal:\n%s", b)
	}
}

// TestRowHashIsStable holds RowHash to its definition (xxHash64 of each
// value followed by 0x1f) and to a value written by earlier versions:
// journals on disk depend on it.
func TestRowHashIsStable(t *testing.T) {
	byDefinition := func(values []string) uint64 {
		d := xxhash.New()
		for _, v := range values {
			d.WriteString(v)
			d.Write([]byte{0x1f})
		}
		return d.Sum64()
	}
	for _, values := range [][]string{
		nil,
		{""},
		{"ada@example.com", "Ada", "Lovelace", "GBR"},
		{strings.Repeat("x", 5000), "y"}, // past the stack buffer
		{strings.Repeat("é", 255), "z"},  // 512 bytes with separators: the most in the stack buffer
		{strings.Repeat("é", 255), "zz"}, // one byte past it
	} {
		if got, want := RowHash(values), byDefinition(values); got != want {
			t.Errorf("RowHash of %d values (%d bytes): %x, want %x", len(values), len(strings.Join(values, "")), got, want)
		}
	}
	if got := fmt.Sprintf("%x", RowHash([]string{"1", "ada@example.com", "Ada"})); got != "d3d3a62db84be7a4" {
		t.Errorf("RowHash changed: %s; journals written before would read as changed input", got)
	}
}

// TestRecordsAsEncodingCSVWritesThem holds the journal's writer to
// encoding/csv's output, byte for byte, on records that do and do not need
// quoting.
func TestRecordsAsEncodingCSVWritesThem(t *testing.T) {
	plain := []string{"", "a", "ada@example.com", "trail ", "é", "\x85next", "1", "2026-11-26T00:00:00.000Z", `\.x`, "a\\."}
	tricky := []string{"x,y", `say "hi"`, " lead", "\tlead", "\u00a0nbsp", "\u2003em", `\.`, "\u0085nel", "two\nlines"}
	rnd := rand.New(rand.NewPCG(3, 4))
	pick := func(tr bool) string {
		if tr {
			return tricky[rnd.IntN(len(tricky))]
		}
		return plain[rnd.IntN(len(plain))]
	}
	for n := range 3000 {
		tr := n%2 == 0 // one string field in two records needs quoting
		which := rnd.IntN(8)
		str := func(i int) string { return pick(tr && i == which) }
		r := Record{Row: rnd.IntN(2000000), Line: rnd.IntN(2000000), Status: Status(str(0)), CustomerID: str(1), ErrorCode: str(2),
			Message: str(3), HTTPStatus: rnd.IntN(3) * 200, Attempts: rnd.IntN(5), Email: str(4), RowHash: str(5), At: str(6),
			Retryable: str(7), Throttled: rnd.IntN(2) * rnd.IntN(1000)}
		if n%3 == 0 {
			r.RequestHash = strconv.FormatUint(rnd.Uint64(), 16)
		}
		if r.At == "" {
			r.At = "2026-11-26T00:00:00.000Z" // Write would fill in the time
		}
		itoa := func(v int) string {
			if v == 0 {
				return ""
			}
			return strconv.Itoa(v)
		}
		fields := []string{strconv.Itoa(r.Row), strconv.Itoa(r.Line), string(r.Status), r.CustomerID, oneLine(r.ErrorCode), oneLine(r.Message),
			itoa(r.HTTPStatus), strconv.Itoa(r.Attempts), oneLine(r.Email), r.RowHash, r.At, r.Retryable, itoa(r.Throttled), r.RequestHash}
		var want bytes.Buffer
		cw := csv.NewWriter(&want)
		cw.Write(fields)
		cw.Flush()
		var got bytes.Buffer
		w := &Writer{bw: bufio.NewWriter(&got), fields: make([]string, len(Header))}
		w.cw = csv.NewWriter(w.bw)
		if err := w.Write(&r); err != nil {
			t.Fatal(err)
		}
		w.bw.Flush()
		if got.String() != want.String() {
			t.Fatalf("record %+v:\n got %q\nwant %q", r, got.String(), want.String())
		}
	}
}

// TestWriterTimesEachRecord: the time format is reused within one
// millisecond only; records written later carry their own time.
func TestWriterTimesEachRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.csv")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	var ats []string
	for i := range 3 {
		r := Record{Row: i + 1, Status: Pending, Attempts: 1}
		w.Write(&r)
		ats = append(ats, r.At)
		time.Sleep(2 * time.Millisecond)
	}
	w.Close()
	if ats[0] == ats[1] || ats[1] == ats[2] {
		t.Errorf("records 2 ms apart share a time: %q", ats)
	}
	back, err := ReadRecords(path)
	if err != nil || len(back) != 3 {
		t.Fatalf("%d records, %v", len(back), err)
	}
	for i, r := range back {
		if r.At != ats[i] {
			t.Errorf("line %d: at %q, want %q", i+1, r.At, ats[i])
		}
	}
}

// TestFirstSentAndExisting: the index keeps when each row's first pending
// line was written (a later pending or failed line does not move it), in
// one pass and in the two-core load; an existing row counts as done and
// reports its email like a created one; Record reads a row's last line.
func TestFirstSentAndExisting(t *testing.T) {
	for _, big := range []bool{false, true} {
		t.Run(fmt.Sprintf("parallel=%v", big), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "r.csv")
			w, err := Create(path)
			if err != nil {
				t.Fatal(err)
			}
			n := 10
			if big {
				n = 200000 // past parallelFrom
			}
			for i := 1; i <= n; i++ {
				w.Write(&Record{Row: i, Status: Pending, Attempts: 1, Email: fmt.Sprintf("p%d@x.co", i), At: "2026-12-01T10:00:00.000Z"})
			}
			// Row 2's later lines, in the second half when big.
			w.Write(&Record{Row: 2, Status: Failed, Attempts: 1, Message: "HTTP 503", At: "2026-12-01T10:00:09.000Z"})
			w.Write(&Record{Row: 2, Status: Pending, Attempts: 2, At: "2026-12-01T11:00:00.000Z"})
			w.Write(&Record{Row: 3, Status: Existing, CustomerID: "abcdefghij0123456789", Email: "p3@x.co", At: "2026-12-01T10:00:01.000Z"})
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if st, _ := os.Stat(path); big != (st.Size() >= parallelFrom) {
				t.Fatalf("journal of %d bytes: parallel=%v wanted", st.Size(), big)
			}
			emails := map[int]string{}
			w, ix, err := Resume(path, func(row int, email []byte) { emails[row] = string(email) })
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			want := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
			if e, _ := ix.Last(2); e.Status != Pending || e.Attempts != 2 || !e.FirstSent.Equal(want) {
				t.Errorf("row 2: %+v, want pending, first sent %v", e, want)
			}
			if e, _ := ix.Last(3); e.Status != Existing || emails[3] != "p3@x.co" {
				t.Errorf("row 3: %+v, email %q", e, emails[3])
			}
			if rec, err := ix.Record(2); err != nil || rec.At != "2026-12-01T11:00:00.000Z" || rec.Attempts != 2 {
				t.Errorf("Record(2) = %+v, %v", rec, err)
			}
			if ix.Counts[Existing] != 1 {
				t.Errorf("counts %v", ix.Counts)
			}
		})
	}
	if got := unixSeconds([]byte("2026-12-01T10:00:00.000Z")); got != uint32(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).Unix()) {
		t.Errorf("unixSeconds = %d", got)
	}
	for _, bad := range []string{"", "2026-13-01T10:00:00.000Z", "yesterday", "1969-12-31T23:59:59.000Z"} {
		if got := unixSeconds([]byte(bad)); got != 0 {
			t.Errorf("unixSeconds(%q) = %d, want 0", bad, got)
		}
	}
}
