package results

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
)

// Report summarises a results file by each row's last line. It reads the
// file without locking it, so it works on a run in progress or one that
// was killed.
type Report struct {
	Results   string         `json:"results"`
	Lines     int            `json:"lines"` // journal lines read
	Rows      int            `json:"rows"`  // rows the journal mentions
	ByStatus  map[Status]int `json:"by_status"`
	InDoubt   int            `json:"in_doubt"`  // last line pending: sent, outcome unknown
	Retries   int            `json:"retries"`   // requests beyond the first, over all rows
	Throttled int            `json:"throttled"` // 429 answers, over all rows
	Errors    []ErrorCount   `json:"errors"`    // invalid and failed rows by error code, most frequent first
	Retryable int            `json:"retryable"` // failed rows --retry-failed may help

	// Index is the journal's index, as read: an export (Exporter.Index)
	// reads its rows back through it rather than reading it again.
	Index *Index `json:"-"`
}

// ErrorCount is one error code with how many rows ended with it and one
// example.
type ErrorCount struct {
	Status      Status `json:"status"`
	Code        string `json:"error_code"`
	HTTPStatus  int    `json:"http_status,omitempty"`
	Rows        int    `json:"rows"`
	Example     string `json:"example"`
	ExampleLine int    `json:"example_line"` // the input line of the example row
}

// Outcomes reads a results file and calls fn with the last line of every
// row, in file order of those lines. It makes two passes: the first finds
// each row's last line, the second reads them.
func Outcomes(path string, fn func(Record) error) (*Index, error) {
	ix, err := LoadSmall(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cr := csv.NewReader(bufio.NewReaderSize(io.LimitReader(f, ix.keep), 256<<10))
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return nil, err
	}
	col := map[string]int{}
	for i, h := range head {
		col[h] = i
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return rec[i]
		}
		return ""
	}
	off := cr.InputOffset()
	lines := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			// A torn last line (a run killed mid-write) ends the read.
			break
		}
		start := off
		off = cr.InputOffset()
		lines++
		row, _ := strconv.Atoi(get(rec, "row"))
		if row < 1 || row > len(ix.rows) || ix.rows[row-1].off != start {
			continue // not the row's last line
		}
		num := func(s string) int { n, _ := strconv.Atoi(s); return n }
		o := Record{Row: row, Line: num(get(rec, "line")), Status: Status(get(rec, "status")), CustomerID: get(rec, "customer_id"),
			ErrorCode: get(rec, "error_code"), Message: get(rec, "message"), HTTPStatus: num(get(rec, "http_status")),
			Attempts: num(get(rec, "attempts")), Email: get(rec, "email"), RowHash: get(rec, "row_hash"), At: get(rec, "at"),
			Retryable: get(rec, "retryable"), Throttled: num(get(rec, "throttled")), RequestHash: get(rec, "request_hash")}
		if err := fn(o); err != nil {
			return nil, err
		}
	}
	ix.lines = lines
	return ix, nil
}

// Summarize reads a results file into a Report. also, when not nil, is
// called with every outcome too (an Exporter's Collect), in the same pass.
func Summarize(path string, also func(Record) error) (*Report, error) {
	rep := &Report{Results: path, ByStatus: map[Status]int{}}
	errs := map[string]*ErrorCount{}
	ix, err := Outcomes(path, func(o Record) error {
		if also != nil {
			if err := also(o); err != nil {
				return err
			}
		}
		rep.Retries += max(o.Attempts-1, 0)
		rep.Throttled += o.Throttled
		if o.Status != Invalid && o.Status != Failed {
			return nil
		}
		if o.Retryable == "yes" {
			rep.Retryable++
		}
		code := o.ErrorCode
		if code == "" {
			code = "(none)"
		}
		key := string(o.Status) + "\x00" + code + "\x00" + strconv.Itoa(o.HTTPStatus)
		e := errs[key]
		if e == nil {
			e = &ErrorCount{Status: o.Status, Code: code, HTTPStatus: o.HTTPStatus, Example: o.Message, ExampleLine: o.Line}
			errs[key] = e
		}
		e.Rows++
		return nil
	})
	if err != nil {
		return nil, err
	}
	rep.Lines, rep.Rows, rep.Index = ix.lines, ix.Len(), ix
	for st, n := range ix.Counts {
		if n > 0 {
			rep.ByStatus[st] = n
		}
	}
	rep.InDoubt = ix.Counts[Pending]
	for _, e := range errs {
		rep.Errors = append(rep.Errors, *e)
	}
	sort.Slice(rep.Errors, func(i, j int) bool {
		a, b := rep.Errors[i], rep.Errors[j]
		return a.Rows > b.Rows || (a.Rows == b.Rows && a.ExampleLine < b.ExampleLine)
	})
	return rep, nil
}

// Print writes r for a person.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "%s: %d rows (%d journal lines)\n\n", r.Results, r.Rows, r.Lines)
	for _, st := range []Status{Created, Existing, Duplicate, Invalid, Failed, Pending} {
		fmt.Fprintf(w, "  %-10s %8d\n", st, r.ByStatus[st])
	}
	fmt.Fprintf(w, "\n  retries %d, 429 answers %d", r.Retries, r.Throttled)
	if r.InDoubt > 0 {
		fmt.Fprintf(w, ", %d rows in doubt (pending: import --resume reconciles them)", r.InDoubt)
	}
	fmt.Fprintln(w)
	if len(r.Errors) == 0 {
		return
	}
	fmt.Fprintf(w, "\ninvalid and failed rows by error (%d failed rows may succeed with --resume --retry-failed):\n", r.Retryable)
	for _, e := range r.Errors {
		status := ""
		if e.HTTPStatus != 0 {
			status = fmt.Sprintf(" HTTP %d", e.HTTPStatus)
		}
		fmt.Fprintf(w, "  %7d  %s %s%s  e.g. line %d: %s\n", e.Rows, e.Status, e.Code, status, e.ExampleLine, e.Example)
	}
}
