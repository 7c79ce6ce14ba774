package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/revcent-import/revcent-import/internal/fake"
	"github.com/revcent-import/revcent-import/revcent/sandbox"
)

// writeXLSX writes the prospects as a workbook, sheet "Customers", the
// same cells as fake.WriteCSV.
func writeXLSX(t *testing.T, ps []fake.Prospect) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "customers.xlsx")
	if err := fake.WriteXLSX(path, ps); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestXLSXImportsLikeCSV: the same rows as a workbook and as a CSV make
// the same requests; validate, the errors export and resume work on it.
func TestXLSXImportsLikeCSV(t *testing.T) {
	ps := fake.Prospects(300, 700)
	var b bytes.Buffer
	fake.WriteCSV(&b, ps)
	csvPath := write(t, "customers.csv", b.String())
	xlsxPath := writeXLSX(t, ps)
	requests := func(in string) map[string]string {
		base := startSandbox(t)
		code, out, stderr := importProcess(t, sandboxEnv, in, "--base-url", base, "--campaign", "Spring Promo", "--rate", "0", "--progress", "none")
		if code > exitRowsFailed {
			t.Fatalf("%s: exit %d\n%s\n%s", in, code, out, stderr)
		}
		m := map[string]string{}
		for _, c := range dump(t, base, sandbox.DefaultAPIKey).Customers {
			j, _ := json.Marshal(c.Request)
			m[c.Request.Customer.Email] = string(j)
		}
		return m
	}
	fromCSV, fromXLSX := requests(csvPath), requests(xlsxPath)
	if len(fromCSV) < 250 || len(fromXLSX) != len(fromCSV) {
		t.Fatalf("%d customers from the CSV, %d from the workbook", len(fromCSV), len(fromXLSX))
	}
	for email, want := range fromCSV {
		if got := fromXLSX[email]; got != want {
			t.Errorf("%s:\n xlsx %s\n  csv %s", email, got, want)
			break
		}
	}
	// A rerun of the workbook skips every row it recorded.
	base := startSandbox(t)
	args := []string{xlsxPath, "--base-url", base, "--campaign", "Spring Promo", "--rate", "0", "--progress", "none", "--results", xlsxPath + ".2.csv"}
	importProcess(t, sandboxEnv, args...)
	code, out, _ := importProcess(t, sandboxEnv, append(args, "--resume")...)
	if code > exitRowsFailed || !strings.Contains(out, "skipped") || dump(t, base, sandbox.DefaultAPIKey).Created != int64(len(fromXLSX)) {
		t.Errorf("resume of a workbook: exit %d\n%s", code, out)
	}
	// validate and the errors export read it too, with sheet row numbers.
	if code, out, _ := runCLI(t, nil, "validate", xlsxPath, "--sheet", "Customers", "--campaign", "Spring Promo"); code > exitRowsFailed || !strings.Contains(out, "300 rows read") {
		t.Errorf("validate: exit %d\n%s", code, out)
	}
	if code, _, stderr := runCLI(t, nil, "validate", xlsxPath, "--sheet", "Nope"); code != exitUsage || !strings.Contains(stderr, `has no sheet "Nope": its sheets are ["Customers"]`) {
		t.Errorf("an unknown sheet: exit %d, want 2\n%s", code, stderr)
	}
}
