// Command samplegen writes sample_data/prospects.csv and prospects.jsonl:
// realistic CRM exports with a few deliberately bad rows, the same every
// time (make sample). With -rows N -o FILE it writes an N-row clean CRM
// export instead, for measurements.
//
//	go run ./internal/fake/samplegen [-dir sample_data]
//	go run ./internal/fake/samplegen -rows 100000 -o /tmp/customers-100000.csv
package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/revcent-import/revcent-import/internal/fake"
)

func main() {
	dir := flag.String("dir", "sample_data", "where to write the samples")
	rows := flag.Int("rows", 0, "write an N-row CRM export to -o instead")
	out := flag.String("o", "", "output file for -rows (.jsonl for JSONL)")
	flag.Parse()
	var err error
	if *rows > 0 {
		err = export(*out, *rows)
	} else {
		err = write(*dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "samplegen:", err)
		os.Exit(1)
	}
}

func export(path string, n int) error {
	if path == "" {
		return fmt.Errorf("-rows needs -o FILE")
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	ps := fake.Prospects(n, 100)
	if strings.HasSuffix(path, ".jsonl") {
		err = fake.WriteJSONL(w, ps)
	} else {
		err = fake.WriteCSV(w, ps)
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func write(dir string) error {
	ps := fake.Prospects(300, 2026)
	// Deliberately bad or awkward rows, as real exports have them.
	ps[16].Last = ""                                                                    // row 17: no last name: invalid
	ps[41].Email = "jane.doe@"                                                          // row 42: malformed email: invalid
	ps[87].Country = "Atlantis"                                                         // row 88: unknown country: invalid
	ps[122].Email = strings.ToUpper(ps[4].Email)                                        // row 123: row 5's email in capitals: duplicate
	ps[199].Email = "  " + strings.ToUpper(ps[199].Email[:1]) + ps[199].Email[1:] + " " // row 200: spaces, capital: fine
	ps[209].Country = "usa"                                                             // lower-case alpha-3: fine
	ps[210].Country = "de"                                                              // lower-case alpha-2: fine
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	cw.Write(fake.Header)
	for i, p := range ps {
		rec := p.Record()
		if i == 249 {
			// row 250: a company with an unquoted comma: one field too many.
			cw.Flush()
			rec[4] = "Smith, Jones and Partners"
			fmt.Fprintln(&b, strings.Join(rec, ","))
			continue
		}
		cw.Write(rec)
	}
	cw.Flush()
	if err := os.WriteFile(filepath.Join(dir, "prospects.csv"), b.Bytes(), 0o644); err != nil {
		return err
	}

	js := fake.Prospects(100, 2027)
	js[9].Email = "" // record 10: no email: invalid
	b.Reset()
	if err := fake.WriteJSONL(&b, js); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "prospects.jsonl"), b.Bytes(), 0o644)
}
