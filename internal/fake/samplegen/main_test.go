package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestSampleDataIsGenerated keeps sample_data/ equal to what samplegen
// writes: change the generator, then run make sample.
func TestSampleDataIsGenerated(t *testing.T) {
	dir := t.TempDir()
	if err := write(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"prospects.csv", "prospects.jsonl"} {
		got, _ := os.ReadFile(filepath.Join(dir, name))
		want, err := os.ReadFile(filepath.Join("../../../sample_data", name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("sample_data/%s differs from what samplegen writes (%v): run make sample", name, err)
		}
	}
	p := filepath.Join(dir, "n.csv")
	if err := export(p, 10); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); bytes.Count(b, []byte("\n")) != 11 {
		t.Errorf("-rows 10 wrote %d lines", bytes.Count(b, []byte("\n")))
	}
}
