package results

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.csv")
	w, _ := Create(path)
	for _, r := range []Record{
		{Row: 1, Line: 2, Status: Pending, Attempts: 1},
		{Row: 1, Line: 2, Status: Created, CustomerID: "a", Attempts: 3, Throttled: 2},
		{Row: 2, Line: 3, Status: Invalid, ErrorCode: "invalid_field", Message: `line 3, column "Email": "x" is not an email address`},
		{Row: 3, Line: 4, Status: Pending, Attempts: 1},
		{Row: 3, Line: 4, Status: Failed, ErrorCode: "campaign_not_found", HTTPStatus: 404, Message: "no such campaign", Attempts: 1, Retryable: "no"},
		{Row: 4, Line: 5, Status: Pending, Attempts: 1},
		{Row: 5, Line: 6, Status: Failed, ErrorCode: "campaign_not_found", HTTPStatus: 404, Message: "no such campaign", Attempts: 1, Retryable: "no"},
		{Row: 6, Line: 7, Status: Failed, ErrorCode: "unavailable", HTTPStatus: 503, Message: "gave up", Attempts: 5, Retryable: "yes"},
	} {
		w.Write(&r)
	}
	w.Close()
	// A run killed mid-write leaves a torn line: the report still reads.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("7,8,crea")
	f.Close()

	rep, err := Summarize(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows != 6 || rep.ByStatus[Created] != 1 || rep.ByStatus[Failed] != 3 || rep.ByStatus[Invalid] != 1 || rep.InDoubt != 1 ||
		rep.Retries != 2+4 || rep.Throttled != 2 || rep.Retryable != 1 {
		t.Errorf("%+v", rep)
	}
	if len(rep.Errors) != 3 || rep.Errors[0].Code != "campaign_not_found" || rep.Errors[0].Rows != 2 || rep.Errors[0].ExampleLine != 4 {
		t.Errorf("errors %+v", rep.Errors)
	}
	var b strings.Builder
	rep.Print(&b)
	for _, want := range []string{"6 rows", "created           1", "1 rows in doubt", "2  failed campaign_not_found HTTP 404  e.g. line 4: no such campaign"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}
