package importer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revcent-import/revcent-import/internal/fake"
	"github.com/revcent-import/revcent-import/ratelimit"
	"github.com/revcent-import/revcent-import/results"
	"github.com/revcent-import/revcent-import/revcent"
	"github.com/revcent-import/revcent-import/revcent/sandbox"
)

// env is a sandbox behind an httptest server whose answers a test can
// alter, plus a temp dir for inputs and results.
type env struct {
	t     *testing.T
	sb    *sandbox.Server
	srv   *httptest.Server
	dir   string
	posts atomic.Int64
	// fault, when set, may answer a create request instead of the sandbox;
	// it returns true when it did.
	fault func(w http.ResponseWriter, r *http.Request, n int64) bool
	// getFault, when set, may answer a search or get request instead.
	getFault func(w http.ResponseWriter, r *http.Request) bool
	mu       sync.Mutex
}

func newEnv(t *testing.T, opts sandbox.Options) *env {
	e := &env{t: t, sb: sandbox.New(opts), dir: t.TempDir()}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			e.mu.Lock()
			f := e.getFault
			e.mu.Unlock()
			if f != nil && f(w, r) {
				return
			}
		}
		if r.Method == http.MethodPost {
			n := e.posts.Add(1)
			e.mu.Lock()
			f := e.fault
			e.mu.Unlock()
			if f != nil && f(w, r, n) {
				return
			}
		}
		e.sb.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) setFault(f func(w http.ResponseWriter, r *http.Request, n int64) bool) {
	e.mu.Lock()
	e.fault = f
	e.mu.Unlock()
}

func (e *env) setGetFault(f func(w http.ResponseWriter, r *http.Request) bool) {
	e.mu.Lock()
	e.getFault = f
	e.mu.Unlock()
}

func (e *env) file(name, content string) string {
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) config(input string) Config {
	c, err := revcent.NewClient(revcent.Config{BaseURL: e.srv.URL + "/v2", APIKey: sandbox.DefaultAPIKey, Timeout: 5 * time.Second, MaxConns: 8})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Close)
	return Config{Input: Input{Path: input, Campaign: "Spring Promo"}, Results: input + ".results.csv", Client: c,
		Limiter: ratelimit.New(0, 1), Concurrency: 8, MaxAttempts: 5, RetryBase: time.Millisecond, RetryMax: 20 * time.Millisecond, Settle: 200 * time.Millisecond}
}

func readResults(t *testing.T, path string) []results.Record {
	t.Helper()
	recs, err := results.ReadRecords(path)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// last returns each row's last record.
func last(recs []results.Record) map[int]results.Record {
	m := map[int]results.Record{}
	for _, r := range recs {
		m[r.Row] = r
	}
	return m
}

func crmCSV(t *testing.T, n int) (string, []fake.Prospect) {
	ps := fake.Prospects(n, 7)
	var b bytes.Buffer
	if err := fake.WriteCSV(&b, ps); err != nil {
		t.Fatal(err)
	}
	return b.String(), ps
}

// checkExactlyOnce asserts that the sandbox holds exactly one customer per
// prospect, with the right fields, and that every row's last journal line
// is created with that customer's id.
func checkExactlyOnce(t *testing.T, e *env, ps []fake.Prospect, resultsPath string, alpha2 bool) {
	t.Helper()
	byEmail := map[string][]sandbox.Customer{}
	for _, c := range e.sb.Customers() {
		byEmail[c.Request.Customer.Email] = append(byEmail[c.Request.Customer.Email], c)
	}
	lasts := last(readResults(t, resultsPath))
	for _, p := range ps {
		cs := byEmail[strings.ToLower(p.Email)]
		if len(cs) != 1 {
			t.Errorf("row %d (%s): created %d times", p.Index, p.Email, len(cs))
			continue
		}
		c := cs[0].Request
		if c.Customer.FirstName != p.First || c.Customer.LastName != p.Last || c.InternalCustomerID != p.CustomerID ||
			c.Customer.Phone != p.Phone1 || len(c.Customer.Country) != 3 || c.Campaign != "Spring Promo" || c.Customer.City != p.City {
			t.Errorf("row %d: sent %+v for %+v", p.Index, c, p)
		}
		if r := lasts[p.Index]; r.Status != results.Created || r.CustomerID != cs[0].ID {
			t.Errorf("row %d: journal ends %+v, want created %s", p.Index, r, cs[0].ID)
		}
	}
	if int(e.sb.Created()) != len(ps) {
		t.Errorf("sandbox created %d customers for %d rows", e.sb.Created(), len(ps))
	}
}

func TestImportCRMExport(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	content, ps := crmCSV(t, 2000)
	in := e.file("customers-2000.csv", content)
	sum, err := Run(context.Background(), e.config(in))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Created != 2000 || !sum.OK() || sum.Requests != 2000 {
		t.Errorf("summary %+v", sum)
	}
	checkExactlyOnce(t, e, ps, in+".results.csv", false)
	// Spot-check the mapping: English country names became alpha-3.
	for _, c := range e.sb.Customers()[:50] {
		if c.Request.Customer.Country == "" || strings.ToUpper(c.Request.Customer.Country) != c.Request.Customer.Country {
			t.Errorf("country %q", c.Request.Customer.Country)
		}
	}
}

func TestImportJSONLCamelCase(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	ps := fake.Prospects(300, 11)
	var b bytes.Buffer
	fake.WriteJSONL(&b, ps)
	in := e.file("app-export.jsonl", b.String())
	sum, err := Run(context.Background(), e.config(in))
	if err != nil || sum.Created != 300 {
		t.Fatalf("%+v %v", sum, err)
	}
	checkExactlyOnce(t, e, ps, in+".results.csv", true)
	want := map[string]string{"US": "USA", "DE": "DEU", "GB": "GBR", "CH": "CHE"}
	for _, c := range e.sb.Customers() {
		for _, p := range ps {
			if strings.ToLower(p.Email) == c.Request.Customer.Email {
				if a3, ok := want[p.Alpha2()]; ok && c.Request.Customer.Country != a3 {
					t.Errorf("%s -> %s, want %s", p.Alpha2(), c.Request.Customer.Country, a3)
				}
			}
		}
	}
}

func TestInvalidAndDuplicateRows(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	in := e.file("messy.csv", "First Name;Last Name;Email Address;Country\r\n"+
		"Ada;Lovelace;ADA@example.com ;gb\r\n"+ // 1 ok
		"Grace;;grace@example.com;USA\r\n"+ // 2 missing last name
		"Alan;Turing;alan@;GBR\r\n"+ // 3 bad email
		"Edsger;Dijkstra;ed@example.com;Atlantis\r\n"+ // 4 unknown country
		"Ada;Again;ada@EXAMPLE.com;GB\r\n"+ // 5 duplicate of 1
		"Grace;Hopper;grace@example.com;United States\r\n"+ // 6 ok: row 2 was invalid
		"\"Barbara\";\"Liskov\";\"barbara@example.com\";\"us\";extra\r\n") // 7 ragged
	sum, err := Run(context.Background(), e.config(in))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Created != 2 || sum.Invalid != 4 || sum.Duplicate != 1 || sum.OK() || e.posts.Load() != 2 {
		t.Errorf("summary %+v, posts %d", sum, e.posts.Load())
	}
	recs := readResults(t, in+".results.csv")
	lasts := last(recs)
	want := map[int]struct {
		status results.Status
		msg    string
	}{
		1: {results.Created, ""},
		2: {results.Invalid, `line 3, column "Last Name" is empty`},
		3: {results.Invalid, `line 4, column "Email Address": "alan@" is not an email address`},
		4: {results.Invalid, `line 5, column "Country": "Atlantis" is not a country`},
		5: {results.Duplicate, "same email as row 1"},
		6: {results.Created, ""},
		7: {results.Invalid, "line 8: has 5 fields, the header has 4"},
	}
	for row, w := range want {
		got := lasts[row]
		if got.Status != w.status || !strings.Contains(got.Message, w.msg) {
			t.Errorf("row %d: %s %q, want %s %q", row, got.Status, got.Message, w.status, w.msg)
		}
	}
	if lasts[5].CustomerID == "" || lasts[5].CustomerID != lasts[1].CustomerID {
		t.Errorf("duplicate carries %q, row 1 is %q", lasts[5].CustomerID, lasts[1].CustomerID)
	}
	for _, r := range recs {
		if r.Status == results.Pending && r.Row != 1 && r.Row != 6 {
			t.Errorf("row %d got a pending line but must never be sent", r.Row)
		}
	}
}

func TestExistingResultsNeedResume(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	content, _ := crmCSV(t, 10)
	in := e.file("c.csv", content)
	cfg := e.config(in)
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(cfg.Results)
	_, err := Run(context.Background(), cfg)
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("second run without --resume: %v, want a ConfigError saying --resume", err)
	}
	after, _ := os.ReadFile(cfg.Results)
	if !bytes.Equal(before, after) || e.sb.Created() != 10 {
		t.Errorf("the refused run touched the journal or the server")
	}
	cfg.Resume = true
	sum, err := Run(context.Background(), cfg)
	if err != nil || sum.Skipped != 10 || sum.Created != 0 || e.sb.Created() != 10 || !sum.OK() {
		t.Errorf("resume of a finished run: %+v %v", sum, err)
	}
}

func TestResumeSkipsReconcilesAndRetries(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	content, ps := crmCSV(t, 40)
	in := e.file("c.csv", content)
	cfg := e.config(in)
	// Rows 5-9 are refused the first time (a final answer).
	e.setFault(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		body := new(bytes.Buffer)
		body.ReadFrom(r.Body)
		r.Body.Close()
		for _, p := range ps[4:9] {
			if strings.Contains(body.String(), strings.ToLower(p.Email)) {
				w.WriteHeader(400)
				w.Write([]byte(`{"code":0,"error_code":"temporarily_refused","message":"try later"}`))
				return true
			}
		}
		r.Body = io.NopCloser(body)
		return false
	})
	sum, err := Run(context.Background(), cfg)
	if err != nil || sum.Created != 35 || sum.Failed != 5 || sum.OK() {
		t.Fatalf("first run %+v %v", sum, err)
	}
	e.setFault(nil)

	// Simulate a run killed after writing pending for row 20 (already
	// created on the server) and row 21 (never sent): append lines.
	w, _, err := results.Resume(cfg.Results, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(&results.Record{Row: 20, Line: 21, Status: results.Pending, Email: strings.ToLower(ps[19].Email), Attempts: 1})
	w.Close()

	cfg.Resume = true
	sum, err = Run(context.Background(), cfg)
	if err != nil || sum.Skipped != 39 || sum.Reconciled != 1 || sum.Created != 1 || sum.Failed != 0 {
		t.Errorf("resume: %+v %v", sum, err)
	}
	if e.sb.Created() != 35 {
		t.Errorf("resume created %d customers, want none new (row 20 reconciled, failed rows skipped)", e.sb.Created()-35)
	}
	cfg.RetryFailed = true
	sum, err = Run(context.Background(), cfg)
	if err != nil || sum.Created != 5 || sum.Skipped != 35 || !sum.OK() {
		t.Errorf("--retry-failed: %+v %v", sum, err)
	}
	checkExactlyOnce(t, e, ps, cfg.Results, false)
}

func TestRetriesAfter429And503(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	content, ps := crmCSV(t, 200)
	in := e.file("c.csv", content)
	// Every 20th row's first request is answered 429 (Retry-After: 0,
	// "now"); every 7th row's first (or, if also a 20th, second) request
	// 503 before the sandbox sees it: in doubt, not created, so the search
	// finds nothing and it is resent.
	var mu sync.Mutex
	tries := map[string]int{}
	row := map[string]int{}
	for i, p := range ps {
		row[strings.ToLower(p.Email)] = i + 1
	}
	e.setFault(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		var body struct {
			Customer struct{ Email string } `json:"customer"`
		}
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		mu.Lock()
		tries[body.Customer.Email]++
		try, rn := tries[body.Customer.Email], row[body.Customer.Email]
		mu.Unlock()
		if rn%20 == 0 && try == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(429)
			return true
		}
		if rn%7 == 0 && try == 1+btoi(rn%20 == 0) {
			w.WriteHeader(503)
			return true
		}
		return false
	})
	cfg := e.config(in)
	sum, err := Run(context.Background(), cfg)
	// 10 rows get a 429, 28 a 503, 1 (row 140) both.
	if err != nil || sum.Created != 200 || !sum.OK() || sum.Throttled != 10 || sum.Retries != 38 || sum.Requests != 238 {
		t.Fatalf("%+v %v", sum, err)
	}
	checkExactlyOnce(t, e, ps, cfg.Results, false)
	for n, r := range last(readResults(t, cfg.Results)) {
		if want := 1 + btoi(n%20 == 0) + btoi(n%7 == 0); r.Attempts != want {
			t.Errorf("row %d: %d attempts recorded, want %d", n, r.Attempts, want)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestLostAnswersAreReconciled(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	content, ps := crmCSV(t, 100)
	in := e.file("c.csv", content)
	// Every 5th request is processed, then the connection drops before the
	// answer: the customer exists, the importer cannot know.
	e.setFault(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		if n%5 != 0 {
			return false
		}
		rec := httptest.NewRecorder()
		e.sb.ServeHTTP(rec, r)
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
		return true
	})
	cfg := e.config(in)
	sum, err := Run(context.Background(), cfg)
	if err != nil || sum.Created != 100 || sum.Reconciled != 20 || !sum.OK() {
		t.Fatalf("%+v %v", sum, err)
	}
	checkExactlyOnce(t, e, ps, cfg.Results, false)
}

func TestRefusedKeyAborts(t *testing.T) {
	e := newEnv(t, sandbox.Options{APIKey: "the-right-key"})
	content, _ := crmCSV(t, 500)
	in := e.file("c.csv", content)
	cfg := e.config(in)
	cfg.Concurrency = 4
	start := time.Now()
	sum, err := Run(context.Background(), cfg)
	var ae *AbortError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "API key") {
		t.Fatalf("err %v, want an AbortError about the key", err)
	}
	if p := e.posts.Load(); p > int64(cfg.Concurrency) || time.Since(start) > time.Second {
		t.Errorf("%d requests in %v before stopping; want at most %d within a second", p, time.Since(start), cfg.Concurrency)
	}
	if _, err := results.Load(cfg.Results); err != nil || sum.Created != 0 {
		t.Errorf("journal after abort: %v, summary %+v", err, sum)
	}
}

func TestFinalErrorsAreFailed(t *testing.T) {
	e := newEnv(t, sandbox.Options{Campaigns: []string{"Other"}})
	content, _ := crmCSV(t, 5)
	in := e.file("c.csv", content)
	sum, err := Run(context.Background(), e.config(in))
	if err != nil || sum.Failed != 5 || sum.OK() || e.posts.Load() != 5 {
		t.Fatalf("%+v %v posts %d", sum, err, e.posts.Load())
	}
	for _, r := range last(readResults(t, in+".results.csv")) {
		if r.Status != results.Failed || r.ErrorCode != "campaign_not_found" || r.HTTPStatus != 404 || r.Attempts != 1 {
			t.Errorf("%+v", r)
		}
	}
}

func TestInterruptThenResume(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	content, ps := crmCSV(t, 400)
	in := e.file("c.csv", content)
	cfg := e.config(in)
	cfg.Limiter = ratelimit.New(400, 1) // about a second for everything
	ctx, cancel := context.WithCancel(context.Background())
	e.setFault(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		if n == 100 {
			cancel() // the operator presses Ctrl-C mid-run
		}
		return false
	})
	sum, err := Run(ctx, cfg)
	if !errors.Is(err, ErrInterrupted) || sum.Created == 0 || sum.Created >= 400 {
		t.Fatalf("interrupted run: %+v %v", sum, err)
	}
	// Every request that was sent got its outcome recorded.
	if sum.Requests != sum.Created || sum.InDoubt != 0 {
		t.Errorf("in flight not recorded: %+v", sum)
	}
	e.setFault(nil)
	cfg.Resume = true
	cfg.Limiter = ratelimit.New(0, 1)
	sum2, err := Run(context.Background(), cfg)
	if err != nil || sum2.Skipped != sum.Created || sum2.Created != 400-sum.Created {
		t.Fatalf("resume: %+v %v", sum2, err)
	}
	checkExactlyOnce(t, e, ps, cfg.Results, false)
}

func TestStdinGzipAndProgress(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	content, ps := crmCSV(t, 30)
	cfg := e.config("-")
	cfg.Stdin = strings.NewReader(content)
	cfg.Results = filepath.Join(e.dir, "stdin.results.csv")
	p := &recorder{}
	cfg.Progress = p
	sum, err := Run(context.Background(), cfg)
	if err != nil || sum.Created != 30 {
		t.Fatalf("%+v %v", sum, err)
	}
	checkExactlyOnce(t, e, ps, cfg.Results, false)
	if p.final.Total != -1 || p.final.Done != 30 || p.final.Created != 30 || p.final.Bytes != int64(len(content)) {
		t.Errorf("final snapshot %+v", p.final)
	}
}

type recorder struct{ final Snapshot }

func (r *recorder) Update(Snapshot)   {}
func (r *recorder) Finish(s Snapshot) { r.final = s }

func TestCountGivesProgressTotal(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	content, _ := crmCSV(t, 25)
	cfg := e.config(e.file("c.csv", content))
	p := &recorder{}
	cfg.Progress = p
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if p.final.Total != 25 || p.final.Done != 25 {
		t.Errorf("final snapshot %+v", p.final)
	}
}

// TestEmptyInputIsNoRows: an empty export is not a configuration error
// but a run with no rows: not OK (exit 1), and no results file.
func TestEmptyInputIsNoRows(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	cfg := e.config(e.file("empty.csv", ""))
	sum, err := Run(context.Background(), cfg)
	if err != nil || !sum.NoRows || sum.OK() {
		t.Errorf("%+v %v", sum, err)
	}
	if _, err := os.Stat(cfg.Results); err == nil {
		t.Error("a results file for an empty input")
	}
}

func TestConfigErrors(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tests := map[string]struct {
		content  string
		campaign string
		want     string
	}{
		"no campaign":    {"First Name,Last Name,Email\nA,B,a@b.co\n", "", "no campaign"},
		"no email":       {"First Name,Last Name\nA,B\n", "X", "nothing maps to customer.email"},
		"duplicate head": {"Email,Email\n", "X", "both named"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := e.config(e.file(strings.ReplaceAll(name, " ", "-")+".csv", tt.content))
			cfg.Campaign = tt.campaign
			_, err := Run(context.Background(), cfg)
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want a ConfigError containing %q", err, tt.want)
			}
			if _, serr := os.Stat(cfg.Results); serr == nil {
				// A results file may exist only if it was created before the
				// error; configuration errors come first.
				t.Errorf("results file created despite a configuration error")
			}
		})
	}
	if e.posts.Load() != 0 {
		t.Errorf("%d requests sent by runs that failed to start", e.posts.Load())
	}
}

// TestDuplicateOfFinishedRow reads the duplicate long after its first row
// has finished: it must still be written, with that row's customer_id.
func TestDuplicateOfFinishedRow(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	var b strings.Builder
	b.WriteString("First Name,Last Name,Email\n")
	b.WriteString("Ada,Lovelace,ada@example.com\n")
	for i := range 200 {
		fmt.Fprintf(&b, "P%d,Q,p%d@example.com\n", i, i)
	}
	b.WriteString("Ada,Again,ADA@example.com\n")
	in := e.file("late-dup.csv", b.String())
	cfg := e.config(in)
	cfg.Concurrency = 2
	sum, err := Run(context.Background(), cfg)
	if err != nil || sum.Created != 201 || sum.Duplicate != 1 || !sum.OK() {
		t.Fatalf("%+v %v", sum, err)
	}
	lasts := last(readResults(t, cfg.Results))
	if d := lasts[202]; d.Status != results.Duplicate || d.CustomerID == "" || d.CustomerID != lasts[1].CustomerID {
		t.Errorf("duplicate row: %+v, first row: %+v", d, lasts[1])
	}
}

func TestCircuitBreaker(t *testing.T) {
	e := newEnv(t, sandbox.Options{Campaigns: []string{"Other"}})
	content, _ := crmCSV(t, 300)
	in := e.file("c.csv", content)
	cfg := e.config(in)
	cfg.Concurrency, cfg.BreakAfter = 4, 10
	sum, err := Run(context.Background(), cfg)
	var ae *AbortError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "the same error on 10 consecutive rows") || !strings.Contains(err.Error(), "campaign_not_found") {
		t.Fatalf("err %v, want an abort naming the error", err)
	}
	if p := e.posts.Load(); p > 10+int64(cfg.Concurrency)+2 {
		t.Errorf("%d requests sent; the breaker should stop near 10", p)
	}
	for _, r := range last(readResults(t, cfg.Results)) {
		if r.Status == results.Failed && r.Retryable != "no" {
			t.Errorf("row %d: a refused row says retryable %q", r.Row, r.Retryable)
		}
	}
	_ = sum
	// A success between failures resets the streak.
	e2 := newEnv(t, sandbox.Options{})
	var b strings.Builder
	b.WriteString("First Name,Last Name,Email,Campaign\n")
	for i := range 60 {
		camp := "Nope"
		if i%5 == 4 {
			camp = "Spring Promo"
		}
		fmt.Fprintf(&b, "A,B,p%d@example.com,%s\n", i, camp)
	}
	cfg2 := e2.config(e2.file("mixed.csv", b.String()))
	cfg2.Campaign, cfg2.Concurrency, cfg2.BreakAfter = "", 1, 5
	sum2, err := Run(context.Background(), cfg2)
	if err != nil || sum2.Failed != 48 || sum2.Created != 12 {
		t.Errorf("4 failures then a success, repeated: %+v %v; the breaker must not trip", sum2, err)
	}
	cfg3 := e2.config(e2.file("mixed2.csv", strings.ReplaceAll(b.String(), "@example", "@other")))
	cfg3.Campaign, cfg3.Concurrency, cfg3.MaxErrors = "", 1, 20
	if _, err := Run(context.Background(), cfg3); err == nil || !strings.Contains(err.Error(), "20 rows failed (--max-errors 20)") {
		t.Errorf("--max-errors: %v", err)
	}
}

func TestGaveUpIsRetryable(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	content, _ := crmCSV(t, 3)
	in := e.file("c.csv", content)
	e.setFault(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(429)
		return true
	})
	cfg := e.config(in)
	cfg.MaxAttempts = 2
	sum, err := Run(context.Background(), cfg)
	if err != nil || sum.Failed != 3 {
		t.Fatalf("%+v %v", sum, err)
	}
	for _, r := range last(readResults(t, cfg.Results)) {
		if r.Status != results.Failed || r.Retryable != "yes" || r.Attempts != 2 || !strings.Contains(r.Message, "gave up after 2 attempts") {
			t.Errorf("%+v", r)
		}
	}
}

func TestResumeRefusesAChangedInput(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	content, ps := crmCSV(t, 50)
	in := e.file("c.csv", content)
	cfg := e.config(in)
	// Rows 30-50 are refused the first time, so a resume has work to do.
	e.setFault(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		for _, p := range ps[29:] {
			if bytes.Contains(b, []byte(strings.ToLower(p.Email))) {
				w.WriteHeader(400)
				w.Write([]byte(`{"code":0,"error_code":"later","message":"later"}`))
				return true
			}
		}
		return false
	})
	if sum, err := Run(context.Background(), cfg); err != nil || sum.Failed != 21 {
		t.Fatalf("%+v %v", sum, err)
	}
	e.setFault(nil)
	// Someone edits row 40 (line 41) before the rerun.
	edited := strings.Replace(content, ps[39].Last+","+ps[39].Company, "Changed,"+ps[39].Company, 1)
	os.WriteFile(in, []byte(edited), 0o644)
	cfg.Resume, cfg.RetryFailed = true, true
	sum, err := Run(context.Background(), cfg)
	var ae *AbortError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "c.csv line 41 (row 40) differs") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("err %v, want a refusal naming line 41", err)
	}
	if sum.Created > 10 || e.sb.Created() > 39 {
		t.Errorf("sent rows past the changed one: %+v, sandbox %d", sum, e.sb.Created())
	}
	cfg.Force = true
	sum, err = Run(context.Background(), cfg)
	if err != nil || !sum.OK() || e.sb.Created() != 50 {
		t.Errorf("--force: %+v %v, sandbox %d", sum, err, e.sb.Created())
	}
}

// lateCreation makes e's server create each customer only after the
// client has given up on its first request for it.
func lateCreation(e *env) func(w http.ResponseWriter, r *http.Request, n int64) bool {
	var mu sync.Mutex
	seen := map[string]bool{}
	return func(w http.ResponseWriter, r *http.Request, n int64) bool {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		mu.Lock()
		first := !seen[string(b)]
		seen[string(b)] = true
		mu.Unlock()
		if !first {
			return false
		}
		<-r.Context().Done() // the client times out
		time.Sleep(100 * time.Millisecond)
		e.sb.ServeHTTP(httptest.NewRecorder(), r) // ... and the server still creates
		return true
	}
}

// TestTimeoutThenCreated: the server finishes creating a customer after
// the client gave up. The row is set aside over the settle window, the
// search finds the customer, and nothing is sent twice.
func TestTimeoutThenCreated(t *testing.T) {
	content, ps := crmCSV(t, 6)
	e := newEnv(t, sandbox.Options{})
	e.setFault(lateCreation(e))
	cfg := e.config(e.file("c.csv", content))
	c, err := revcent.NewClient(revcent.Config{BaseURL: e.srv.URL + "/v2", APIKey: sandbox.DefaultAPIKey, Timeout: 200 * time.Millisecond, MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg.Client, cfg.Settle = c, 400*time.Millisecond
	sum, err := Run(context.Background(), cfg)
	if err != nil || sum.Created != 6 || sum.Reconciled != 6 || e.sb.Created() != 6 {
		t.Fatalf("%+v %v, sandbox %d", sum, err, e.sb.Created())
	}
	checkExactlyOnce(t, e, ps, cfg.Results, false)
}

// TestRetryFailedReconcilesFirst: a server that creates the customer and
// then answers code 0 with an error code. The rows are failed (RevCent
// said no); the rerun the summary advises, --resume --retry-failed, must
// look before it resends, and find every customer.
func TestRetryFailedReconcilesFirst(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	content, ps := crmCSV(t, 30)
	cfg := e.config(e.file("c.csv", content))
	e.setFault(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		if n%3 != 0 {
			return false
		}
		e.sb.ServeHTTP(httptest.NewRecorder(), r) // created ...
		w.Write([]byte(`{"code":0,"error_code":"internal_error","message":"The request could not be completed."}`))
		return true
	})
	sum, err := Run(context.Background(), cfg)
	if err != nil || sum.Failed != 10 || e.sb.Created() != 30 {
		t.Fatalf("%+v %v, sandbox %d", sum, err, e.sb.Created())
	}
	e.setFault(nil)
	posts := e.posts.Load()
	cfg.Resume, cfg.RetryFailed = true, true
	sum, err = Run(context.Background(), cfg)
	if err != nil || sum.Reconciled != 10 || !sum.OK() || e.posts.Load() != posts {
		t.Fatalf("--retry-failed: %+v %v, %d creates sent", sum, err, e.posts.Load()-posts)
	}
	checkExactlyOnce(t, e, ps, cfg.Results, false)
}

// TestSearchFailureLeavesRowsPending: an in-doubt answer whose search then
// fails leaves the row pending (never failed, which --retry-failed would
// resend blindly); --resume later reconciles and finishes it, once each.
func TestSearchFailureLeavesRowsPending(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	content, ps := crmCSV(t, 10)
	in := e.file("c.csv", content)
	e.setFault(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		w.WriteHeader(503) // every create: in doubt, and not created
		return true
	})
	e.setGetFault(func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(500) // and every search fails
		return true
	})
	cfg := e.config(in)
	sum, err := Run(context.Background(), cfg)
	if err != nil || sum.InDoubt != 10 || sum.Failed != 0 || sum.OK() {
		t.Fatalf("%+v %v", sum, err)
	}
	for n, r := range last(readResults(t, cfg.Results)) {
		if r.Status != results.Pending || !strings.Contains(r.Message, "outcome unknown") || !strings.Contains(r.Message, "searched") {
			t.Errorf("row %d ends %s %q, want pending with what was tried", n, r.Status, r.Message)
		}
	}
	e.setFault(nil)
	e.setGetFault(nil)
	cfg.Resume = true
	if sum, err := Run(context.Background(), cfg); err != nil || sum.Created != 10 || !sum.OK() {
		t.Fatalf("resume: %+v %v", sum, err)
	}
	checkExactlyOnce(t, e, ps, cfg.Results, false)
}

// TestDuplicateOfRowCreatedEarlier: a row appended to the input after a
// finished run, with the email of a row that run created, is a duplicate
// carrying that row's customer_id, read back from the journal, and costs
// no request.
func TestDuplicateOfRowCreatedEarlier(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	content, ps := crmCSV(t, 5)
	in := e.file("c.csv", content)
	cfg := e.config(in)
	if sum, err := Run(context.Background(), cfg); err != nil || sum.Created != 5 {
		t.Fatalf("%+v %v", sum, err)
	}
	first := last(readResults(t, cfg.Results))[3]
	p := ps[2]
	p.Index, p.CustomerID = 6, "NEW"
	p.Email = strings.ToUpper(p.Email)
	f, _ := os.OpenFile(in, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(strings.Join(p.Record(), ",") + "\n")
	f.Close()
	posts := e.posts.Load()
	cfg.Resume = true
	sum, err := Run(context.Background(), cfg)
	if err != nil || sum.Duplicate != 1 || sum.Skipped != 5 || e.posts.Load() != posts {
		t.Fatalf("%+v %v, %d new requests", sum, err, e.posts.Load()-posts)
	}
	d := last(readResults(t, cfg.Results))[6]
	if d.Status != results.Duplicate || d.CustomerID != first.CustomerID || !strings.Contains(d.Message, "same email as row 3, created earlier") {
		t.Errorf("row 6: %+v, want a duplicate of row 3 (%s)", d, first.CustomerID)
	}
}

// TestGCPercentDuringTheRun checks that Config.GCPercent holds while rows
// are sent (the heap of a small run is under smallHeap) and that the
// collector's setting is restored after.
func TestGCPercentDuringTheRun(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	var during atomic.Int64
	e.setFault(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		during.Store(gogc())
		return false
	})
	content, _ := crmCSV(t, 20)
	cfg := e.config(e.file("gc.csv", content))
	cfg.GCPercent = 250
	runtime.GC() // what is live is measured at the last collection
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	after := gogc()
	if during.Load() != 250 || after != 100 {
		t.Errorf("GOGC %d while sending, %d after; want 250, then 100 again", during.Load(), after)
	}

	// A heap above smallHeap at the start (a long journal's index) keeps
	// the collector's setting.
	ballast := make([]byte, smallHeap+(8<<20))
	runtime.GC()
	cfg = e.config(e.file("gc2.csv", content))
	cfg.GCPercent = 250
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(ballast)
	if during.Load() != 100 {
		t.Errorf("GOGC %d while sending with a large heap, want 100", during.Load())
	}
}

// gogc reads the collector's current GOGC without changing it.
func gogc() int64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// TestSparseAnswers: a RevCent whose answers show only what its docs do
// (no email in search, list or get results). A lost answer is reconciled
// by the names the search shows for the row's email; when only the list
// could tell, names alone are no proof and the row stays pending, never
// sent twice.
func TestSparseAnswers(t *testing.T) {
	t.Run("the search finds it", func(t *testing.T) {
		e := newEnv(t, sandbox.Options{Sparse: true, Faults: sandbox.Faults{LostAnswers: 0.2, Seed: 7}})
		content, ps := crmCSV(t, 50)
		cfg := e.config(e.file("c.csv", content))
		sum, err := Run(context.Background(), cfg)
		if err != nil || sum.Created != 50 || sum.Reconciled == 0 || !sum.OK() {
			t.Fatalf("%+v %v", sum, err)
		}
		checkExactlyOnce(t, e, ps, cfg.Results, false)
	})
	t.Run("only the list could tell", func(t *testing.T) {
		e := newEnv(t, sandbox.Options{Sparse: true, SearchLag: time.Hour, Faults: sandbox.Faults{LostAnswers: 0.2, Seed: 7}})
		content, _ := crmCSV(t, 50)
		cfg := e.config(e.file("c.csv", content))
		sum, err := Run(context.Background(), cfg)
		if err != nil || sum.InDoubt == 0 || sum.Created+sum.InDoubt != 50 || e.sb.Created() != 50 {
			t.Fatalf("%+v %v; sandbox created %d for 50 rows", sum, err, e.sb.Created())
		}
		for _, r := range last(readResults(t, cfg.Results)) {
			if r.Status == results.Pending {
				return // left pending; the warning says what was tried
			}
		}
		t.Error("no row left pending")
	})
}

// TestRetryFailedAfterRetriesRanOut: rows whose attempts ran out on 503s
// (in doubt each time, proven not created each time) are sent again by
// --retry-failed once the server is well: the attempt budget is a run's,
// not a row's forever.
func TestRetryFailedAfterRetriesRanOut(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	content, ps := crmCSV(t, 4)
	in := e.file("c.csv", content)
	e.setFault(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		w.WriteHeader(503)
		return true
	})
	cfg := e.config(in)
	cfg.MaxAttempts = 2
	sum, err := Run(context.Background(), cfg)
	if err != nil || sum.Failed != 4 {
		t.Fatalf("%+v %v", sum, err)
	}
	e.setFault(nil)
	cfg.Resume, cfg.RetryFailed = true, true
	sum, err = Run(context.Background(), cfg)
	if err != nil || sum.Created != 4 || !sum.OK() {
		t.Fatalf("--retry-failed: %+v %v", sum, err)
	}
	checkExactlyOnce(t, e, ps, cfg.Results, false)
}

// TestMemoryLimitDuringTheRun: Config.MemoryLimit is the soft memory
// limit while rows are sent, raised to twice the live heap when that is
// more, and the limit found before is restored after.
func TestMemoryLimitDuringTheRun(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	before := debug.SetMemoryLimit(-1)
	var during atomic.Int64
	e.setFault(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		during.Store(debug.SetMemoryLimit(-1))
		return false
	})
	content, _ := crmCSV(t, 20)
	cfg := e.config(e.file("m.csv", content))
	cfg.MemoryLimit = 40 << 20
	runtime.GC()
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if live := int64(heapInUse()); during.Load() != max(40<<20, 2*live) && during.Load() != 40<<20 {
		t.Errorf("memory limit %d while sending, want 40 MiB or twice the live heap (%d)", during.Load(), 2*live)
	}
	if after := debug.SetMemoryLimit(-1); after != before {
		t.Errorf("memory limit %d after the run, want %d again", after, before)
	}
	// A live heap of over 20 MiB raises it.
	ballast := make([]byte, 64<<20)
	for i := range ballast {
		ballast[i] = 1
	}
	runtime.GC()
	cfg = e.config(e.file("m2.csv", content))
	cfg.MemoryLimit = 40 << 20
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(ballast)
	if during.Load() < 128<<20 {
		t.Errorf("memory limit %d while sending with 64 MiB live, want at least 128 MiB", during.Load())
	}
}
