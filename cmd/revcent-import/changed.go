package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/revcent-import/revcent-import/importer"
	"github.com/revcent-import/revcent-import/ledger"
	"github.com/revcent-import/revcent-import/results"
)

// changedColumns are the columns of report --changed-csv: one line per
// field that differs between the request last sent and the row's.
var changedColumns = []string{"import_row", "import_line", "email", "customer_id", "field", "old", "new", "sent_on", "note"}

// writeChanged writes, for every row of rows (the results file's existing
// and changed rows, collected as report reads the file once), the fields
// whose values differ between the request the ledger last sent for that
// person and the one the row mapped to (which the ledger keeps, since
// RevCent was not sent it). The ledger keeps no card field, so none can
// show. target is the results file's; path is the file, for the runs that
// wrote it. It returns how many rows it listed.
func writeChanged(ctx context.Context, w io.Writer, path, target string, rows []results.Record, store ledger.Store) (int, error) {
	if target == "" {
		return 0, fmt.Errorf("%s does not record its target (it predates run lines): its changes cannot be found in the ledger", path)
	}
	people, err := store.Changed(ctx, target)
	if err != nil {
		return 0, fmt.Errorf("ledger: %w", err)
	}
	byCustomer := make(map[string]ledger.Person, len(people))
	for _, p := range people {
		byCustomer[p.CustomerID] = p
	}
	abs, _ := filepath.Abs(path)
	runs, err := store.Runs(ctx)
	if err != nil {
		return 0, fmt.Errorf("ledger: %w", err)
	}
	ours := map[int64]bool{} // the runs that wrote this results file
	for _, r := range runs {
		if r.Results == abs {
			ours[r.ID] = true
		}
	}
	io.WriteString(w, "\ufeff") // as every export: Excel reads it as UTF-8
	cw := csv.NewWriter(w)
	cw.Write(changedColumns)
	for _, rec := range rows {
		row, line := strconv.Itoa(rec.Row), strconv.Itoa(rec.Line)
		p, ok := byCustomer[rec.CustomerID]
		if !ok {
			cw.Write([]string{row, line, rec.Email, rec.CustomerID, "", "", "", "",
				"the ledger holds no change for this customer now: sent since, or forgotten"})
			continue
		}
		note := ""
		if !ours[p.ChangedRun] {
			note = fmt.Sprintf("the new values are run %d's, which found it changed again", p.ChangedRun)
		}
		sent := ""
		if !p.LastAt.IsZero() {
			sent = p.LastAt.UTC().Format(time.DateOnly)
		}
		if p.Request == "" {
			note = join(note, "the request sent was not recorded (filled by ledger import, or before version 3): every new value is listed")
		}
		for _, d := range diffRequests(p.Request, p.ChangedRequest) {
			cw.Write([]string{row, line, rec.Email, rec.CustomerID, d.field, d.old, d.new, sent, note})
		}
	}
	cw.Flush()
	return len(rows), cw.Error()
}

// isChanged says whether an outcome is a row report --changed-csv lists.
func isChanged(rec results.Record) bool {
	return rec.Status == results.Existing && rec.ErrorCode == importer.ChangedCode
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

type fieldChange struct{ field, old, new string }

// diffRequests compares two requests' JSON field by field ("customer.phone",
// "bill_to.city", "metadata.source"): the fields whose values differ, in
// name order.
func diffRequests(old, new string) []fieldChange {
	a, b := flatRequest(old), flatRequest(new)
	var names []string
	for k := range a {
		names = append(names, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var out []fieldChange
	for _, k := range names {
		if a[k] != b[k] {
			out = append(out, fieldChange{k, a[k], b[k]})
		}
	}
	return out
}

// flatRequest reads a request's JSON as dotted field names and values:
// objects by their keys, metadata by each entry's name.
func flatRequest(s string) map[string]string {
	out := map[string]string{}
	if s == "" {
		return out
	}
	var v any
	if json.Unmarshal([]byte(s), &v) != nil {
		return out
	}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch t := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(t))
			for k := range t {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				walk(dot(prefix, k), t[k])
			}
		case []any:
			for i, e := range t {
				if m, ok := e.(map[string]any); ok {
					if name, ok := m["name"].(string); ok {
						out[dot(prefix, name)] = fmt.Sprint(m["value"])
						continue
					}
				}
				walk(dot(prefix, strconv.Itoa(i)), e)
			}
		case nil:
		default:
			out[prefix] = fmt.Sprint(t)
		}
	}
	walk("", v)
	return out
}

func dot(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}
