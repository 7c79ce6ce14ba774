package schemacheck

import (
	"strings"
	"testing"
)

// TestTheJudgeJudges: the validator really refuses what the schema does,
// so that a test passing through it means something.
func TestTheJudgeJudges(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("schema not beside the repository: %v", err)
	}
	ok := `{"campaign":"X","customer":{"first_name":"A","last_name":"B","email":"a@example.com"}}`
	if err := Check([]byte(ok)); err != nil {
		t.Errorf("a minimal body: %v", err)
	}
	for name, body := range map[string]string{
		"bad email":      strings.Replace(ok, "a@example.com", "josé@example.com", 1),
		"unknown field":  strings.Replace(ok, `"campaign":"X"`, `"campaign":"X","extra":1`, 1),
		"no last name":   strings.Replace(ok, `,"last_name":"B"`, "", 1),
		"metadata value": strings.Replace(ok, `}}`, `},"metadata":[{"name":"a","value":"`+strings.Repeat("x", 256)+`"}]}`, 1),
	} {
		if Check([]byte(body)) == nil {
			t.Errorf("%s: accepted %s", name, body)
		}
	}
}
