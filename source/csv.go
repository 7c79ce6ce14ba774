package source

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

type csvReader struct {
	name    string
	r       *csv.Reader
	cols    []string
	index   map[string]int
	record  int
	counted *counter
}

// newCSV reads the header of a CSV input. delim 0 detects the delimiter.
func newCSV(r io.Reader, name string, delim rune, counted *counter) (*csvReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if delim == 0 {
		head, _ := br.Peek(64 << 10)
		delim = detectDelimiter(head)
	}
	cr := csv.NewReader(br)
	cr.Comma = delim
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("the file is empty: want a header line naming the columns")
	}
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	c := &csvReader{name: name, r: cr, index: make(map[string]int, len(header)), counted: counted}
	for i, h := range header {
		h = strings.TrimSpace(h)
		if h == "" {
			h = fmt.Sprintf("column %d", i+1)
		}
		if j, dup := c.index[h]; dup {
			return nil, fmt.Errorf("line 1: columns %d and %d are both named %q: rename one so each column can be mapped", j+1, i+1, h)
		}
		c.index[h] = i
		c.cols = append(c.cols, h)
	}
	return c, nil
}

func (c *csvReader) Columns() []string { return c.cols }
func (c *csvReader) BytesRead() int64  { return c.counted.n.Load() }

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
	if err == nil && len(rec) > 0 {
		row.Line, _ = c.r.FieldPos(0)
	}
	var pe *csv.ParseError
	switch {
	case errors.As(err, &pe):
		row.Line = pe.StartLine
		row.Values = nil
		if pe.Err == csv.ErrQuote && pe.Line > pe.StartLine {
			row.Err = fmt.Errorf("unbalanced quote: the field opened on line %d runs to line %d, so lines %d-%d were not read as rows; close the quote or double it (\"\") inside the field",
				pe.StartLine, pe.Line, pe.StartLine, pe.Line)
		} else {
			row.Err = fmt.Errorf("line %d, column %d: %v; double a quote (\"\") inside a quoted field, or quote the whole field", pe.Line, pe.Column, pe.Err)
		}
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
			row.Err = fmt.Errorf("has %d fields, the header has %d: check for an unquoted %q inside a value", len(rec), len(c.cols), c.r.Comma)
		}
	}
	return row, nil
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

func (c *csvReader) Close() error { return nil }
