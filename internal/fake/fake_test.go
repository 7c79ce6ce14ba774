package fake

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestProspectsDeterministicAndUnique(t *testing.T) {
	a, b := Prospects(500, 1), Prospects(500, 1)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave different prospects")
	}
	if reflect.DeepEqual(a, Prospects(500, 2)) {
		t.Fatal("different seeds gave the same prospects")
	}
	seen := map[string]bool{}
	for _, p := range a {
		e := strings.ToLower(p.Email)
		if seen[e] || !strings.Contains(e, "@") || p.Alpha2() == "" {
			t.Errorf("prospect %+v: duplicate email or no alpha-2", p)
		}
		seen[e] = true
	}
}

func TestWriters(t *testing.T) {
	ps := Prospects(20, 3)
	var b bytes.Buffer
	if err := WriteCSV(&b, ps); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil || len(recs) != 21 || !reflect.DeepEqual(recs[0], Header) || !reflect.DeepEqual(recs[5], ps[4].Record()) {
		t.Fatalf("CSV: %v %d records", err, len(recs))
	}
	b.Reset()
	WriteJSONL(&b, ps)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	var m map[string]any
	if len(lines) != 20 || json.Unmarshal([]byte(lines[0]), &m) != nil || m["emailAddress"] != ps[0].Email {
		t.Fatalf("JSONL: %d lines, first %v", len(lines), m)
	}
}
