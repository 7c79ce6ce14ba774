package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/revcent-import/revcent-import/revcent/sandbox"
)

// TestErrorsCSVRoundTrip is issue 6's case: report --errors-csv of a messy
// import gives exactly the invalid and failed rows in the input's own
// columns and dialect plus the error; fixed and imported again, it creates
// exactly those rows.
func TestErrorsCSVRoundTrip(t *testing.T) {
	var b strings.Builder
	b.WriteString("First Name;Last Name;Email;Country;Campaign\n")
	bad := map[int]string{4: "no last name", 9: "bad email", 13: "unknown country", 17: "unknown campaign", 18: "unknown campaign"}
	for i := 1; i <= 20; i++ {
		last, email, country, campaign := fmt.Sprintf("L%d", i), fmt.Sprintf("p%d@example.com", i), "de", "Spring Promo"
		switch bad[i] {
		case "no last name":
			last = ""
		case "bad email":
			email = "p9-at-example.com"
		case "unknown country":
			country = "Narnia"
		case "unknown campaign":
			campaign = "Old Promo" // RevCent answers 404: failed
		}
		fmt.Fprintf(&b, "F%d;%s;%s;%s;%s\n", i, last, email, country, campaign)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "list.csv")
	os.WriteFile(in, []byte(b.String()), 0o644)
	base := startSandbox(t)

	code, out, stderr := importProcess(t, sandboxEnv, in, "--base-url", base, "--rate", "0")
	if code != exitRowsFailed {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(out, "report "+in+".results.csv --input "+in+" --errors-csv") {
		t.Errorf("the summary does not show the report command:\n%s", out)
	}
	fix := filepath.Join(dir, "fix.csv")
	code, out, stderr = runCLI(t, nil, "report", in+".results.csv", "--input", in, "--errors-csv", fix)
	if code != 0 || !strings.Contains(out, "5 invalid and failed rows written") {
		t.Fatalf("report: %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{`created +15\n`, `invalid +3\n`, `failed +2\n`, `2  failed campaign_not_found HTTP 404  e\.g\. line 1[89]`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	f, _ := os.Open(fix)
	r := csv.NewReader(f)
	r.Comma = ';'
	recs, err := r.ReadAll()
	f.Close()
	if err != nil || len(recs) != 6 {
		t.Fatalf("fix.csv: %v, %d records", err, len(recs))
	}
	if got := strings.Join(recs[0], ";"); got != "\ufeffFirst Name;Last Name;Email;Country;Campaign;import_row;import_line;import_error;import_raw" {
		t.Errorf("header %q", got)
	}
	for _, rec := range recs[1:] {
		row := 0
		fmt.Sscan(rec[5], &row)
		if bad[row] == "" || rec[0] != fmt.Sprintf("F%d", row) || rec[7] == "" {
			t.Errorf("exported %q: not one of the bad rows, or without its error", rec)
		}
	}
	// The operator fixes the cells, and imports the file as it is.
	for _, rec := range recs[1:] {
		rec[1], rec[2], rec[3], rec[4] = "Fixed", strings.Replace(rec[2], "-at-", "@", 1), "fr", "Spring Promo"
		if rec[1] == "" {
			rec[1] = "Fixed"
		}
	}
	f, _ = os.Create(fix)
	w := csv.NewWriter(f)
	w.Comma = ';'
	w.WriteAll(recs)
	f.Close()
	code, out, stderr = importProcess(t, sandboxEnv, fix, "--base-url", base, "--rate", "0")
	if code != 0 || !regexp.MustCompile(`created +5 +5\n`).MatchString(out) {
		t.Fatalf("re-import: exit %d\n%s\n%s", code, out, stderr)
	}
	d := dump(t, base, sandbox.DefaultAPIKey)
	seen := map[string]int{}
	for _, c := range d.Customers {
		seen[c.Request.Customer.Email]++
	}
	if d.Created != 20 || len(seen) != 20 {
		t.Errorf("created %d customers, %d emails; want all 20 rows once", d.Created, len(seen))
	}
	for email, n := range seen {
		if n != 1 {
			t.Errorf("%s created %d times", email, n)
		}
	}

	// Created rows, and the JSON form.
	okCSV := filepath.Join(dir, "created.csv")
	code, out, _ = runCLI(t, nil, "report", in+".results.csv", "--input", in, "--success-csv", okCSV, "--format", "json")
	var rep struct {
		Rows            int            `json:"rows"`
		ByStatus        map[string]int `json:"by_status"`
		CreatedExported *int           `json:"created_exported"`
		Errors          []struct {
			Code string `json:"error_code"`
			Rows int    `json:"rows"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || rep.Rows != 20 || rep.ByStatus["created"] != 15 ||
		rep.CreatedExported == nil || *rep.CreatedExported != 15 || len(rep.Errors) == 0 {
		t.Errorf("json report: %v %+v\n%s", err, rep, out)
	}
	data, _ := os.ReadFile(okCSV)
	if lines := strings.Count(string(data), "\n"); lines != 16 || !strings.Contains(string(data), "import_customer_id") {
		t.Errorf("created.csv has %d lines:\n%s", lines, data)
	}
	// An input that is not the one imported is refused.
	os.WriteFile(in, []byte(strings.Replace(b.String(), "F4;", "X4;", 1)), 0o644)
	if code, _, stderr := runCLI(t, nil, "report", in+".results.csv", "--input", in, "--errors-csv", fix); code != exitUsage || !strings.Contains(stderr, "differs from the row recorded") {
		t.Errorf("changed input: %d %s", code, stderr)
	}
}

// readExport reads an export as a second parser sees it, without the BOM
// that starts it.
func readExport(t *testing.T, path string, comma rune) [][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "\ufeff") {
		t.Errorf("%s does not start with a UTF-8 BOM (Excel would misread its accents)", path)
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(data), "\ufeff")))
	r.Comma = comma
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// importThenExportErrors imports in into the in-process sandbox, where
// some rows are invalid (exit 1), and returns the errors file report
// writes, as a second parser reads it.
func importThenExportErrors(t *testing.T, in string, flags ...string) [][]string {
	t.Helper()
	res := in + ".results.csv"
	code, out, stderr := runCLI(t, nil, append([]string{"import", in, "--sandbox", "--campaign", "Spring Promo", "--rate", "0", "--progress", "none", "--results", res}, flags...)...)
	if code != exitRowsFailed {
		t.Fatalf("exit %d, want 1 (rows that cannot be customers)\n%s\n%s", code, out, stderr)
	}
	fix := in + ".errors.csv"
	if code, out, stderr := runCLI(t, nil, "report", res, "--input", in, "--errors-csv", fix); code != 0 {
		t.Fatalf("report: %d\n%s\n%s", code, out, stderr)
	}
	return readExport(t, fix, ',')
}

// TestErrorsCSVKeepsEveryCell: csv-spectrum's files, mapped so that no
// row can be a customer (its first column as the email), come back in the
// errors file with every cell as csv-spectrum's own JSON says it is.
func TestErrorsCSVKeepsEveryCell(t *testing.T) {
	const dir = "../../../shared/testdata/csv-spectrum" // shared/ beside the repository
	files, _ := filepath.Glob(dir + "/csvs/*.csv")
	if len(files) == 0 {
		t.Skip("no csv-spectrum files beside the repository")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".csv")
		t.Run(name, func(t *testing.T) {
			var doc any
			if err := json.Unmarshal(mustRead(t, filepath.Join(dir, "json", name+".json")), &doc); err != nil {
				t.Fatal(err)
			}
			var want []map[string]any
			switch d := doc.(type) {
			case []any:
				for _, o := range d {
					want = append(want, o.(map[string]any))
				}
			case map[string]any:
				want = []map[string]any{d}
			}
			input := string(mustRead(t, f))
			in := write(t, name+".csv", input)
			head, _ := csv.NewReader(strings.NewReader(input)).Read()
			col := strings.TrimPrefix(head[0], "\ufeff")
			m := write(t, "m.yaml", fmt.Sprintf("campaign: {value: Spring Promo}\ncustomer.first_name: %q\ncustomer.last_name: %q\ncustomer.email: %q\n", col, col, col))
			recs := importThenExportErrors(t, in, "--mapping", m)
			if len(recs) != len(want)+1 {
				t.Fatalf("%d rows exported, want %d", len(recs)-1, len(want))
			}
			iRaw := slices.Index(recs[0], "import_raw")
			checked := 0
			for i, w := range want {
				raw := recs[i+1][iRaw]
				for j, c := range recs[0] {
					v, ok := w[strings.TrimPrefix(c, "\ufeff")].(string)
					if !ok {
						continue
					}
					checked++
					// encoding/csv reads a CRLF inside a quoted field as LF:
					// the one change a cell can undergo.
					v = strings.ReplaceAll(v, "\r\n", "\n")
					if name == "location_coordinates" && c == "Contact Phone Number" {
						continue // csv-spectrum's JSON says 1234567890; its CSV holds 2095257564
					}
					switch {
					case raw != "":
						// A row that did not parse (a bare quote) keeps its
						// text whole in import_raw.
						if !strings.Contains(raw, v) {
							t.Errorf("row %d: import_raw %q lacks %q", i+1, raw, v)
						}
					case recs[i+1][j] != v:
						t.Errorf("row %d, column %q: exported %q, want %q", i+1, c, recs[i+1][j], v)
					}
				}
			}
			if checked == 0 {
				t.Errorf("no cell compared")
			}
		})
	}
}

// TestErrorsCSVKeepsBrokenRows: rows that cannot be split into the
// header's columns (a stray quote, a field too many or too few) come back
// with their original text, as messytables' and QuickBooks' files have
// them.
func TestErrorsCSVKeepsBrokenRows(t *testing.T) {
	content := "First Name,Last Name,Email,Company,City,Country\n" +
		"Ada,Lovelace,ada@example.com,Analytical,London,GB\n" +
		"Bo,\"Stray,bo@example.com,Acme \"Widgets\",Austin,US\n" + // a stray quote opens a field
		"Cy,Young,cy@example.com,Young, Sons & Co,Boston,US\n" + // an unquoted comma: a field too many
		"Di,Short,di@example.com\n" + // fields missing
		"Ed,Ok,ed@example.com,Ok Inc,Paris,FR\n"
	recs := importThenExportErrors(t, write(t, "broken.csv", content))
	raw := map[string]bool{}
	iRaw := slices.Index(recs[0], "import_raw")
	for _, r := range recs[1:] {
		raw[r[iRaw]] = true
	}
	for _, line := range strings.Split(content, "\n")[2:5] {
		if !raw[line] {
			t.Errorf("the errors file lost %q; it has %q", line, recs[1:])
		}
	}
	// The fields a short row has are in its cells too.
	for _, r := range recs[1:] {
		if r[iRaw] == "Di,Short,di@example.com" && (r[0] != "Di" || r[2] != "di@example.com") {
			t.Errorf("short row exported as %q", r)
		}
	}
}
