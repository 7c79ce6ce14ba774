package main

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/revcent-import/revcent-import/internal/schemacheck"
	"github.com/revcent-import/revcent-import/revcent/sandbox"
)

// TestExportFamilies imports one sample of each export family, built from
// its published header list with realistic values (testdata/exports), with
// no mapping file, into a sandbox process, and checks that RevCent received
// exactly the expected request for every row (testdata/exports/*.want.jsonl,
// each field checked by hand against its row), and that each body passes
// RevCent's schema.
func TestExportFamilies(t *testing.T) {
	files, _ := filepath.Glob("testdata/exports/*.csv")
	if len(files) < 10 {
		t.Fatalf("%d samples", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".csv")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var want []map[string]any
			for _, line := range strings.Split(strings.TrimSpace(string(mustRead(t, "testdata/exports/"+name+".want.jsonl"))), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatal(err)
				}
				want = append(want, m)
			}
			base := startSandbox(t)
			in := write(t, name+".csv", string(mustRead(t, f)))
			code, out, stderr := importProcess(t, sandboxEnv, in, "--base-url", base, "--campaign", "Spring Promo", "--rate", "0", "--progress", "none")
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
			}
			d := dump(t, base, sandbox.DefaultAPIKey)
			if len(d.Customers) != len(want) {
				t.Fatalf("%d customers created, want %d", len(d.Customers), len(want))
			}
			byEmail := map[string]map[string]any{}
			for _, w := range want {
				byEmail[w["customer"].(map[string]any)["email"].(string)] = w
			}
			for i, c := range d.Customers { // in the order the requests arrived
				body, _ := json.Marshal(c.Request)
				var got map[string]any
				json.Unmarshal(body, &got)
				if w := byEmail[c.Request.Customer.Email]; !reflect.DeepEqual(got, w) {
					g, _ := json.Marshal(got)
					wj, _ := json.Marshal(w)
					t.Errorf("customer %d:\n got %s\nwant %s", i+1, g, wj)
				}
				if schemacheck.Available() == nil {
					if err := schemacheck.Check(body); err != nil {
						t.Errorf("row %d: RevCent's schema refuses %s: %v", i+1, body, err)
					}
				}
			}
		})
	}
}
