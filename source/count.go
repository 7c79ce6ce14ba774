package source

import (
	"bytes"
	"io"
	"os"
	"strings"
)

// Count returns the number of records in the plain (not compressed) file
// at path without parsing them, so that progress can show a row total: for
// CSV the non-empty lines outside quotes less the header, for JSONL the
// non-blank lines. It returns -1 when the input cannot be counted cheaply
// (stdin, gzip, UTF-16), and when it is not a regular file: a FIFO, a
// process substitution (<(zcat list.gz)) or a device can be read only
// once, and that once is the import's.
// opts gives the format (empty: from the name), the encoding and, for a
// workbook, the sheet.
func Count(path string, opts Options) (int, error) {
	format, encoding := opts.Format, opts.Encoding
	lower := strings.ToLower(path)
	if path == "-" || strings.HasSuffix(lower, ".gz") || strings.HasPrefix(strings.ToLower(encoding), "utf-16") {
		return -1, nil
	}
	if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
		return -1, nil
	}
	if format == XLSX || (format == "" && FormatOf(path) == XLSX) {
		return xlsxRows(path, opts.Sheet), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if format == "" {
		format = FormatOf(path)
	}
	buf := make([]byte, 256<<10)
	n, inQuote, blank := 0, false, true
	first := true
	for {
		m, err := f.Read(buf)
		chunk := buf[:m]
		if first && m >= 2 && (bytes.HasPrefix(chunk, bomUTF16LE) || bytes.HasPrefix(chunk, bomUTF16BE)) {
			return -1, nil
		}
		first = false
		for _, b := range chunk {
			switch {
			case b == '"' && format != JSONL:
				inQuote = !inQuote
				blank = false
			case b == '\n' && !inQuote:
				if !blank {
					n++
				}
				blank = true
			case b != '\r' && b != '\n' && (format != JSONL || (b != ' ' && b != '\t')):
				blank = false
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	if !blank {
		n++
	}
	if format != JSONL && n > 0 {
		n-- // the header
	}
	return n, nil
}
