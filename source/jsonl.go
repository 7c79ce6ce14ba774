package source

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

type jsonlReader struct {
	name    string
	br      *bufio.Reader
	cols    []string
	index   map[string]int
	values  []string
	line    int
	record  int
	ahead   *Row // the first row, read by newJSONL to learn the columns
	counted *counter
	buf     []byte
	enc     *autoDecoder
	max     int  // bytes a line may hold
	long    bool // the line being read is over max: dropped
}

func newJSONL(r io.Reader, name string, counted *counter, enc *autoDecoder, maxRecord int) (*jsonlReader, error) {
	j := &jsonlReader{name: name, br: bufio.NewReaderSize(r, 64<<10), index: map[string]int{}, counted: counted, enc: enc, max: maxRecord}
	row, err := j.next()
	if err == io.EOF {
		return nil, errors.New("the file is empty: want one JSON object per line")
	}
	if err != nil {
		return nil, err
	}
	// Keep the first row; its Values must survive until Next hands it out.
	row.Values = append([]string(nil), row.Values...)
	j.ahead = &row
	return j, nil
}

func (j *jsonlReader) Columns() []string { return j.cols }
func (j *jsonlReader) BytesRead() int64  { return j.counted.n.Load() }

func (j *jsonlReader) Index(name string) int {
	if i, ok := j.index[name]; ok {
		return i
	}
	j.index[name] = len(j.cols)
	j.cols = append(j.cols, name)
	return len(j.cols) - 1
}

func (j *jsonlReader) Next() (Row, error) {
	if j.ahead != nil {
		r := *j.ahead
		j.ahead = nil
		return r, nil
	}
	return j.next()
}

func (j *jsonlReader) next() (Row, error) {
	for {
		line, err := j.readLine()
		if err != nil {
			return Row{}, err
		}
		j.line++
		if j.long {
			j.record++
			return Row{Record: j.record, Line: j.line,
				Err: fmt.Errorf("line %d is over %d bytes, as no customer row is: skipped (if it is real, raise --max-record-size)", j.line, j.max)}, nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		line = j.enc.bytes(line, j.line)
		j.record++
		row := Row{Record: j.record, Line: j.line}
		clear(j.values)
		if d := depth(line); d > MaxDepth {
			row.Err = fmt.Errorf("line %d nests objects or arrays %d deep; at most %d are read", j.line, d, MaxDepth)
			row.Raw = string(line[:min(len(line), 200)])
			return row, nil
		}
		if line[0] != '{' {
			row.Err = fmt.Errorf("line %d is %s, not a JSON object: write one object per line", j.line, describe(line))
			row.Raw = string(line)
			return row, nil
		}
		if err := j.flatten("", line); err != nil {
			row.Err = fmt.Errorf("line %d is not valid JSON: %v", j.line, err)
			row.Raw = string(line)
			return row, nil
		}
		row.Values = j.values
		return row, nil
	}
}

// readLine returns the next line without its newline; the slice is valid
// until the next call. It returns io.EOF only when no bytes are left.
func (j *jsonlReader) readLine() ([]byte, error) {
	j.buf = j.buf[:0]
	j.long = false
	for {
		chunk, err := j.br.ReadSlice('\n')
		if !j.long {
			j.buf = append(j.buf, chunk...)
			if j.max > 0 && len(j.buf) > j.max {
				// Too long to be a customer: keep reading to the line's
				// end, but keep none of it.
				j.long, j.buf = true, j.buf[:0]
			}
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && (len(j.buf) > 0 || j.long):
			return j.buf, nil
		case err != nil:
			return nil, err
		}
		if j.long {
			return j.buf, nil // Next reports it
		}
		return j.buf[:len(j.buf)-1], nil
	}
}

// flatten stores the fields of the JSON object obj, keeping their order,
// with nested objects under dotted names (address.city). Strings are
// stored as they are, null as empty, numbers and booleans as written,
// arrays as their compact JSON text.
func (j *jsonlReader) flatten(prefix string, obj []byte) error {
	dec := json.NewDecoder(bytes.NewReader(obj))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // {
		return err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key := prefix + strings.TrimSpace(tok.(string))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		var v string
		switch raw[0] {
		case '{':
			if err := j.flatten(key+".", raw); err != nil {
				return err
			}
			continue
		case '"':
			if err := json.Unmarshal(raw, &v); err != nil {
				return err
			}
		case 'n':
			v = ""
		case '[':
			var b bytes.Buffer
			if err := json.Compact(&b, raw); err != nil {
				return err
			}
			v = b.String()
		default:
			v = string(raw)
		}
		i := j.Index(key)
		for len(j.values) <= i {
			j.values = append(j.values, "")
		}
		j.values[i] = v
	}
	if _, err := dec.Token(); err != nil { // }
		return err
	}
	if prefix == "" {
		if _, err := dec.Token(); err != io.EOF {
			return errors.New("data after the object's closing brace")
		}
	}
	return nil
}

// depth returns how deeply line's objects and arrays nest, outside
// strings, stopping once past MaxDepth.
func depth(line []byte) int {
	d, most, inString, escaped := 0, 0, false, false
	for _, c := range line {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			d++
			if d > most {
				most = d
				if most > MaxDepth {
					return most
				}
			}
		case c == '}' || c == ']':
			d--
		}
	}
	return most
}

func describe(line []byte) string {
	switch line[0] {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	if line[0] == '-' || (line[0] >= '0' && line[0] <= '9') {
		return "a number"
	}
	return fmt.Sprintf("text starting %q", string(line[:min(len(line), 12)]))
}

func (j *jsonlReader) Close() error { return nil }
