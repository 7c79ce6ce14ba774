package main

// Issue 12's problems, one test each, run through the real binary as a
// user or cron would run it.

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/revcent-import/revcent-import/results"
	"github.com/revcent-import/revcent-import/revcent/sandbox"
)

// checkJSONLines fails unless every non-empty line of log is one JSON
// object, with no duration in nanoseconds, and one of them has msg.
func checkJSONLines(t *testing.T, log, msg string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	found := false
	for i, line := range strings.Split(log, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var o map[string]any
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			t.Errorf("line %d is not a JSON object: %q", i+1, line)
			continue
		}
		for _, k := range []string{"elapsed", "settle", "eta"} {
			if v, ok := o[k]; ok {
				if _, isNumber := v.(float64); isNumber {
					t.Errorf("line %d: %s is a bare number (nanoseconds?): %q", i+1, k, line)
				}
			}
		}
		if o["msg"] == msg {
			found = true
		}
		objs = append(objs, o)
	}
	if !found {
		t.Errorf("no %q line in:\n%s", msg, log)
	}
	return objs
}

// TestSandboxTrialDoesNotBlockTheRealRun: a results file made against the
// in-process sandbox is refused, exit 2, by a run against another target,
// with or without --resume; nothing is skipped as "done" and nothing sent.
func TestSandboxTrialDoesNotBlockTheRealRun(t *testing.T) {
	in, _ := crm(t, 30, 120)
	if code, out, errs := runCLI(t, nil, "import", in, "--sandbox", "--campaign", "Spring Promo", "--rate", "0", "--progress", "none"); code != 0 {
		t.Fatalf("trial: exit %d\n%s\n%s", code, out, errs)
	}
	base := startSandbox(t)
	for _, resume := range []bool{true, false} {
		args := []string{in, "--base-url", base, "--campaign", "Spring Promo", "--rate", "0", "--progress", "none"}
		if resume {
			args = append(args, "--resume")
		}
		code, out, errs := importProcess(t, sandboxEnv, args...)
		if code != exitUsage || !strings.Contains(errs, "the in-process sandbox (import --sandbox)") || !strings.Contains(errs, base) {
			t.Errorf("resume=%v: exit %d, want 2 naming both targets\n%s\n%s", resume, code, out, errs)
		}
		if strings.Count(errs, "in-process sandbox (import --sandbox), and this run") != 1 {
			t.Errorf("resume=%v: the refusal should be said once:\n%s", resume, errs)
		}
	}
	if d := dump(t, base, sandbox.DefaultAPIKey); d.Requests != 0 {
		t.Errorf("%d requests reached the real target", d.Requests)
	}
	// A results file from before run lines (no target recorded) still
	// resumes, and is bound from then on.
	old := filepath.Join(t.TempDir(), "old.results.csv")
	os.WriteFile(old, []byte(strings.Join(results.Header, ",")+"\n"), 0o644)
	if code, out, errs := importProcess(t, sandboxEnv, in, "--base-url", base, "--campaign", "Spring Promo", "--rate", "0", "--progress", "none", "--resume", "--results", old); code != 0 {
		t.Fatalf("old journal: exit %d\n%s\n%s", code, out, errs)
	}
	ix, err := results.Load(old)
	if err != nil || ix.Target.URL != base || ix.Runs != 1 {
		t.Errorf("old journal now bound to %+v (%d runs), %v; want %s", ix.Target, ix.Runs, err, base)
	}
}

// TestExitCodeIsTheFileState: a resumed run that sends nothing still
// exits 1 while the file holds invalid or failed rows, and every "to
// continue" command would finish the job (--retry-failed when rows failed).
func TestExitCodeIsTheFileState(t *testing.T) {
	base := startSandbox(t)
	var b strings.Builder
	b.WriteString("First Name,Last Name,Email,Campaign\n")
	for i := 0; i < 6; i++ {
		fmt.Fprintf(&b, "F%d,L%d,p%d@example.com,Spring Promo\n", i, i, i)
	}
	b.WriteString("Bad,Email,not-an-email,Spring Promo\n")
	b.WriteString("Old,Campaign,old@example.com,Old Promo\n")
	in := write(t, "nightly.csv", b.String())
	args := []string{in, "--base-url", base, "--rate", "0", "--progress", "none", "--resume"}
	for run := 1; run <= 2; run++ {
		code, out, errs := importProcess(t, sandboxEnv, args...)
		if code != exitRowsFailed {
			t.Fatalf("run %d: exit %d, want 1 (the file holds an invalid and a failed row)\n%s\n%s", run, code, out, errs)
		}
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`this run +whole file`),
			regexp.MustCompile(`invalid +\d +1\n`),
			regexp.MustCompile(`failed +\d +1\n`),
			regexp.MustCompile(`send the failed rows again\):\n  revcent-import import .* --resume --retry-failed\n`),
			regexp.MustCompile(`--errors-csv`),
		} {
			if !want.MatchString(out) {
				t.Errorf("run %d: summary lacks %s:\n%s", run, want, out)
			}
		}
	}
	// The circuit breaker: 20 rows with an unknown campaign stop the run;
	// its "to continue" carries --retry-failed.
	b.Reset()
	b.WriteString("First Name,Last Name,Email,Campaign\n")
	for i := 0; i < 25; i++ {
		fmt.Fprintf(&b, "O%d,L%d,o%d@example.com,Old Promo\n", i, i, i)
	}
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&b, "G%d,L%d,g%d@example.com,Spring Promo\n", i, i, i)
	}
	in = write(t, "breaker.csv", b.String())
	code, out, errs := importProcess(t, sandboxEnv, in, "--base-url", base, "--rate", "0", "--progress", "none", "--concurrency", "1")
	if code != exitAborted {
		t.Fatalf("breaker: exit %d\n%s\n%s", code, out, errs)
	}
	m := regexp.MustCompile(`to continue[^\n]*:\n  (revcent-import import [^\n]*)\n`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(m[1], "--retry-failed") {
		t.Fatalf("no to-continue command with --retry-failed:\n%s", out)
	}
	if strings.Contains(out+errs, "stopped: stopped") || strings.Count(errs+out, "the same error on 20 consecutive rows") != 1 {
		t.Errorf("the stop should be said once:\n%s\n%s", out, errs)
	}
	// Running it sends the rest; the unknown campaign still fails, and the
	// exit code says so.
	cmd := exec.Command("bash", "-c", strings.Replace(m[1], "revcent-import", binary, 1))
	cmd.Env = append(os.Environ(), sandboxEnv...)
	outb, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() == 0 {
		t.Errorf("the continued run exits 0 with 25 rows failed:\n%s", outb)
	}
	ix, err := results.Load(in + ".results.csv")
	if err != nil || ix.Counts[results.Created] != 10 || ix.Counts[results.Failed] != 25 {
		t.Errorf("after the continued run: %v %v", ix.Counts, err)
	}
}

// cardCSV is an input with card columns: a good row, a row with a bad
// email (exported as an error), a row with a stray quote (exported raw),
// and a row whose company a spreadsheet would run as a formula.
const cardCSV = `First Name,Last Name,Email,Company,Card Number,CVV,Exp Month,Exp Year,Campaign
Ada,Lovelace,ada@example.com,Analytical,4111 1111 1111 1111,737,12,2031,Spring Promo
Bob,Smith,bob-at-example.com,"=HYPERLINK(""http://x.example"",""pay"")",5555555555554444,4821,11,2031,Spring Promo
Cy,"Dee"x,cy@example.com,Quote Co,4242424242424242,9917,10,2031,Spring Promo
Di,Eve,di@example.com,@SUM(1+1),6011111111111117,3344,09,2031,Spring Promo
`

var cardSecrets = []string{"4111111111111111", "4111 1111 1111 1111", "5555555555554444", "4242424242424242", "6011111111111117", "737", "4821", "9917", "3344"}

// noise are tokens a card code's three or four digits can stand in by
// chance: times ("05:53:12.737Z"), hashes and ids of 8 or more letters and
// digits ("a737f0c2"). They are left out before looking.
var noise = regexp.MustCompile(`\d{4}-\d\d-\d\dT[\d:.]+Z|\b[0-9A-Za-z]{8,}\b`)

// leaks returns the card numbers and codes found in text as standalone
// tokens.
func leaks(text string) []string {
	for _, s := range cardSecrets[:5] { // the numbers: nothing else is 15-19 digits
		if strings.Contains(text, s) {
			return []string{s}
		}
	}
	text = noise.ReplaceAllString(text, " ")
	var found []string
	for _, s := range cardSecrets {
		if regexp.MustCompile(`(^|[^0-9])` + regexp.QuoteMeta(s) + `([^0-9]|$)`).MatchString(text) {
			found = append(found, s)
		}
	}
	return found
}

// TestNoCardDataAtRest: no file the tool writes holds a card number or a
// card code, even when the server quotes them back; exports keep the last
// four digits and guard formula cells, and a guarded cell imports as it
// was.
func TestNoCardDataAtRest(t *testing.T) {
	base := startSandbox(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "cards.csv")
	os.WriteFile(in, []byte(cardCSV), 0o644)
	// With a ledger in dir, which keeps the requests sent and the changed
	// ones found since: it is looked in too.
	led := filepath.Join(dir, "ledger.db")
	env := append([]string{"REVCENT_LEDGER=" + led}, sandboxEnv...)
	code, out, errs := importProcess(t, env, in, "--base-url", base, "--rate", "0", "--progress", "log")
	if code != exitRowsFailed {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	// Night 2: Ada's company changed, so the ledger notes her new request.
	in1 := filepath.Join(dir, "cards2.csv")
	os.WriteFile(in1, []byte(strings.Replace(cardCSV, "Analytical", "Analytical Engines", 1)), 0o644)
	importProcess(t, env, in1, "--base-url", base, "--rate", "0", "--progress", "log")
	if c, o, e := runCLI(t, map[string]string{"REVCENT_LEDGER": led}, "report", in1+".results.csv", "--changed-csv", filepath.Join(dir, "changed.csv")); c != 0 || !strings.Contains(o, "1 changed rows") {
		t.Fatalf("report --changed-csv: exit %d\n%s\n%s", c, o, e)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "changed.csv")); !strings.Contains(string(b), "customer.company,Analytical,Analytical Engines") {
		t.Errorf("changed.csv: %s", b)
	}
	code, out2, errs2 := runCLI(t, nil, "report", in+".results.csv", "--input", in, "--errors-csv", filepath.Join(dir, "errors.csv"), "--success-csv", filepath.Join(dir, "ok.csv"))
	if code != 0 {
		t.Fatalf("report: exit %d\n%s\n%s", code, out2, errs2)
	}
	if c, o, e := runCLI(t, nil, "import", in, "--dry-run", "--progress", "none"); c > 1 {
		t.Fatalf("dry-run: exit %d\n%s\n%s", c, o, e)
	}
	// A server that quotes the card back in its 400 message.
	echo := startSandbox(t, "--echo-card")
	in2 := filepath.Join(dir, "echo.csv")
	os.WriteFile(in2, []byte(cardCSV), 0o644)
	_, out3, errs3 := importProcess(t, env, in2, "--base-url", echo, "--rate", "0", "--progress", "log")
	recs := readRecords(t, in2+".results.csv")
	echoed := 0
	for _, r := range recs {
		if r.ErrorCode == "card_declined" {
			echoed++
		}
	}
	if echoed < 2 {
		t.Fatalf("the echoing sandbox declined %d rows, want the valid ones\n%s", echoed, errs3)
	}
	written := map[string]string{"stdout": out + out3, "stderr": errs + errs3}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		if f == in || f == in1 || f == in2 {
			continue
		}
		b, _ := os.ReadFile(f)
		written[filepath.Base(f)] = string(b)
	}
	for name, text := range written {
		if l := leaks(text); len(l) > 0 {
			t.Errorf("%s holds card data %v", name, l)
		}
	}
	ok := readExport(t, filepath.Join(dir, "ok.csv"), ',')
	if len(ok) != 3 || ok[1][4] != "**** **** **** 1111" || ok[1][5] != "" {
		t.Errorf("success export: %q, want the card masked to its last four and no CVV", ok)
	}
	if ok[2][3] != "'@SUM(1+1)" {
		t.Errorf("formula cell exported as %q, want it guarded with an apostrophe", ok[2][3])
	}
	errRows := readExport(t, filepath.Join(dir, "errors.csv"), ',')
	if len(errRows) != 3 || errRows[1][3] != `'=HYPERLINK("http://x.example","pay")` {
		t.Fatalf("errors export: %q", errRows)
	}
	if raw := errRows[2][len(errRows[2])-1]; !strings.Contains(raw, "Quote Co") || !strings.Contains(raw, "************4242") {
		t.Errorf("the stray-quote row's raw text %q should be kept, its card masked", raw)
	}
	// Fix Bob's email in the export and import it: the company is sent as
	// it was written, without the guard.
	fixed := strings.Replace(written["errors.csv"], "bob-at-example.com", "bob@example.com", 1)
	fix := filepath.Join(t.TempDir(), "fix.csv")
	os.WriteFile(fix, []byte(fixed), 0o644)
	code, out4, errs4 := importProcess(t, sandboxEnv, fix, "--base-url", base, "--rate", "0", "--progress", "none")
	_ = code
	var company string
	for _, c := range dump(t, base, sandbox.DefaultAPIKey).Customers {
		if c.Request.Customer.Email == "bob@example.com" {
			company = c.Request.Customer.Company
		}
	}
	// The masked card makes the row invalid (the README says to fix card
	// rows in the original file); the guard is what is checked here.
	if company != "" && company != `=HYPERLINK("http://x.example","pay")` {
		t.Errorf("company sent as %q", company)
	}
	if company == "" && !strings.Contains(string(mustRead(t, fix+".results.csv")), "card") {
		t.Errorf("re-import of a masked card row: neither sent nor refused for its card\n%s\n%s", out4, errs4)
	}
}

// TestForceMatchesChangedRowsByEmail: a re-export with a row inserted at
// the top shifts every row number. --force then matches by email: the new
// person is created, everyone else is known, nobody is created twice.
func TestForceMatchesChangedRowsByEmail(t *testing.T) {
	base := startSandbox(t)
	in, ps := crm(t, 40, 121)
	if code, out, errs := importProcess(t, sandboxEnv, in, "--base-url", base, "--campaign", "Spring Promo", "--rate", "0", "--progress", "none"); code != 0 {
		t.Fatalf("first run: exit %d\n%s\n%s", code, out, errs)
	}
	b, _ := os.ReadFile(in)
	lines := strings.SplitAfterN(string(b), "\n", 2)
	os.WriteFile(in, []byte(lines[0]+"0,NEW0000000001,Newton,First,Acme,Leeds,United Kingdom,0113 496 0000,,newton.first@example.com,2024-01-01,\n"+lines[1]), 0o644)
	code, out, errs := importProcess(t, sandboxEnv, in, "--base-url", base, "--campaign", "Spring Promo", "--rate", "0", "--progress", "none", "--resume")
	if code != exitAborted || !strings.Contains(out+errs, "--force") {
		t.Fatalf("changed input without --force: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = importProcess(t, sandboxEnv, in, "--base-url", base, "--campaign", "Spring Promo", "--rate", "0", "--progress", "none", "--resume", "--force")
	if code != 0 {
		t.Fatalf("--force: exit %d\n%s\n%s", code, out, errs)
	}
	d := dump(t, base, sandbox.DefaultAPIKey)
	seen := map[string]int{}
	for _, c := range d.Customers {
		seen[c.Request.Customer.Email]++
	}
	if d.Created != int64(len(ps)+1) || seen["newton.first@example.com"] != 1 {
		t.Errorf("created %d (%d distinct), want %d with the new person once\n%s", d.Created, len(seen), len(ps)+1, out)
	}
	for e, n := range seen {
		if n > 1 {
			t.Errorf("%s created %d times", e, n)
		}
	}
}

// TestJSONLogsForCron: with --log-format json, stdout and stderr together
// are JSON lines: the start line names the target, campaign, input,
// results file, rate and concurrency; the summary is one object; a stop is
// said once; durations are text.
func TestJSONLogsForCron(t *testing.T) {
	base := startSandbox(t)
	in := write(t, "n.csv", "First Name,Last Name,Email\nA,B,a@example.com\nC,D,bad-email\n")
	cmd := exec.Command(binary, "import", in, "--base-url", base, "--campaign", "Spring Promo", "--rate", "0", "--log-format", "json", "--progress", "log")
	cmd.Env = append(os.Environ(), sandboxEnv...)
	both, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != exitRowsFailed {
		t.Fatalf("exit %d\n%s", cmd.ProcessState.ExitCode(), both)
	}
	objs := checkJSONLines(t, string(both), "summary")
	for _, o := range objs {
		switch o["msg"] {
		case "import started":
			for _, k := range []string{"target", "campaign", "input", "results", "rate", "burst", "concurrency"} {
				if o[k] == nil || o[k] == "" {
					t.Errorf("start line lacks %s: %v", k, o)
				}
			}
			if !strings.Contains(fmt.Sprint(o["target"]), base) {
				t.Errorf("start line's target %v, want %s", o["target"], base)
			}
		case "summary":
			file, _ := o["whole_file"].(map[string]any)
			if file["invalid"] != 1.0 || file["created"] != 1.0 || o["done"] != false {
				t.Errorf("summary: %v", o)
			}
		case "import finished":
			if _, ok := o["error"]; ok {
				t.Errorf("the end line carries an error field: %v", o)
			}
		}
	}
	// A stopped run: the reason once, in the summary object and the end
	// line's "stopped", never "stopped: stopped".
	cmd = exec.Command(binary, "import", in, "--base-url", strings.TrimSuffix(base, "/v2"), "--campaign", "Spring Promo", "--rate", "0", "--log-format", "json", "--progress", "none", "--results", in+".2.results.csv")
	cmd.Env = append(os.Environ(), sandboxEnv...)
	both, _ = cmd.CombinedOutput()
	checkJSONLines(t, string(both), "summary")
	if strings.Contains(string(both), "stopped: stopped") || strings.Contains(string(both), "<nil>") {
		t.Errorf("repeated or empty error:\n%s", both)
	}
}

// TestMessagesForPeople: messages name the column by its header and the
// line once, show no Go internals, refuse binary input in words, and a
// wrong --base-url stops after one row with a hint.
func TestMessagesForPeople(t *testing.T) {
	in := write(t, "q.csv", "First Name,Last Name,Email\nAda,\"Love\"lace,ada@example.com\n")
	_, _, errs := runCLI(t, nil, "import", in, "--sandbox", "--campaign", "Spring Promo", "--progress", "none")
	recs := readRecords(t, in+".results.csv")
	if len(recs) != 1 || !strings.Contains(recs[0].Message, `column "Last Name"`) || strings.Count(recs[0].Message, "line") != 1 {
		t.Errorf("parse error message %+v: want the column by name and the line once (%s)", recs, errs)
	}
	dir := t.TempDir()
	gz := filepath.Join(dir, "list.csv")
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(bytes.Repeat([]byte("First Name,Last Name,Email\nA,B,a@example.com\n"), 500))
	zw.Close()
	os.WriteFile(gz, zb.Bytes(), 0o644)
	goInternal := regexp.MustCompile(`strconv\.|arg\(s\)|: read |invalid syntax|ParseFloat|\\x1f`)
	for _, tc := range []struct {
		args  []string
		stdin []byte
		want  string
	}{
		{[]string{"import"}, nil, "needs INPUT"},
		{[]string{"import", in, "--rate", "abc"}, nil, `--rate "abc": want a number`},
		{[]string{"import", in, "--timeout", "5"}, nil, "want a duration"},
		{[]string{"validate", dir}, nil, "is a directory"},
		{[]string{"validate", "-"}, zb.Bytes(), "this is not text: is it compressed?"},
		{[]string{"validate", gz}, nil, "this is not text: is it compressed?"},
	} {
		cmd := exec.Command(binary, tc.args...)
		cmd.Stdin = bytes.NewReader(tc.stdin)
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), tc.want) || goInternal.Match(out) || len(out) > 600 {
			t.Errorf("%v: %q, want %q in a short message with no Go internals", tc.args, out, tc.want)
		}
		if c := cmd.ProcessState.ExitCode(); c != exitUsage {
			t.Errorf("%v: exit %d, want 2", tc.args, c)
		}
	}
	// A base URL without /v2, and a closed port: one row, then the hint.
	base := startSandbox(t)
	big, _ := crm(t, 200, 122)
	for _, url := range []string{strings.TrimSuffix(base, "/v2"), "http://127.0.0.1:1/v2"} {
		code, out, errs := importProcess(t, sandboxEnv, big, "--base-url", url, "--campaign", "Spring Promo", "--rate", "0", "--progress", "none", "--results", filepath.Join(t.TempDir(), "r.csv"))
		if code != exitAborted || !strings.Contains(errs, "check --base-url (it should end in /v2") {
			t.Errorf("%s: exit %d\n%s\n%s", url, code, out, errs)
		}
		if !regexp.MustCompile(`failed +1 +1\n`).MatchString(out) || regexp.MustCompile(`in doubt`).MatchString(out) {
			t.Errorf("%s: want one failed row and none in doubt:\n%s", url, out)
		}
	}
	if d := dump(t, base, sandbox.DefaultAPIKey); d.Requests > 1 {
		t.Errorf("%d requests to the wrong URL, want 1", d.Requests)
	}
}

// TestCtrlCInDoubtOnlyWhenSent: after SIGINT the rows counted in doubt
// are the rows whose request reached the server, no more.
func TestCtrlCInDoubtOnlyWhenSent(t *testing.T) {
	base := startSandbox(t, "--latency", "1500ms")
	in, _ := crm(t, 100, 123)
	cmd := exec.Command(binary, "import", in, "--base-url", base, "--campaign", "Spring Promo", "--rate", "20", "--concurrency", "8",
		"--timeout", "5s", "--progress", "none")
	cmd.Env = append(os.Environ(), sandboxEnv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Start()
	time.Sleep(2500 * time.Millisecond) // the first answer came; eight in flight, more waiting on the rate
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()
	ix, err := results.Load(in + ".results.csv")
	if err != nil {
		t.Fatal(err)
	}
	d := dump(t, base, sandbox.DefaultAPIKey)
	done := ix.Counts[results.Created] + ix.Counts[results.Pending]
	if ix.Counts[results.Pending] > 0 && int64(done) > d.Requests {
		t.Errorf("%d created + %d in doubt, but the server got %d requests\n%s", ix.Counts[results.Created], ix.Counts[results.Pending], d.Requests, out.String())
	}
	if got := regexp.MustCompile(`in doubt +(\d+)`).FindStringSubmatch(out.String()); got != nil && got[1] != fmt.Sprint(ix.Counts[results.Pending]) {
		t.Errorf("summary says %s in doubt, the file %d", got[1], ix.Counts[results.Pending])
	}
}

// TestResultsFileIsOnlyAJournal: --results naming the input, a symlink, or
// a file that is not a journal is refused before anything is touched.
func TestResultsFileIsOnlyAJournal(t *testing.T) {
	in, _ := crm(t, 5, 124)
	orig, _ := os.ReadFile(in)
	dir := t.TempDir()
	other := filepath.Join(dir, "notes.csv")
	os.WriteFile(other, []byte("a,b\n1,2\n3,"), 0o644) // a torn-looking last line
	journal := filepath.Join(dir, "real.results.csv")
	if code, _, errs := runCLI(t, nil, "import", in, "--sandbox", "--campaign", "Spring Promo", "--progress", "none", "--results", journal); code != 0 {
		t.Fatal(errs)
	}
	journalBytes, _ := os.ReadFile(journal)
	link := filepath.Join(dir, "link.results.csv")
	os.Symlink(journal, link)
	for _, tc := range []struct {
		results, want string
		resume        bool
	}{
		{in, "is the input file itself", true},
		{in, "is the input file itself", false},
		{link, "is a symbolic link", true},
		{other, "not a results file", true},
	} {
		args := []string{"import", in, "--sandbox", "--campaign", "Spring Promo", "--progress", "none", "--results", tc.results}
		if tc.resume {
			args = append(args, "--resume")
		}
		code, _, errs := runCLI(t, nil, args...)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("--results %s (resume %v): exit %d %q, want 2 and %q", tc.results, tc.resume, code, errs, tc.want)
		}
	}
	for path, want := range map[string][]byte{in: orig, journal: journalBytes, other: []byte("a,b\n1,2\n3,")} {
		if got, _ := os.ReadFile(path); !bytes.Equal(got, want) {
			t.Errorf("%s was changed", path)
		}
	}
}

// TestSharpEdges: a closed stderr pipe does not kill the run; a key with
// a line break inside is refused before any request.
func TestSharpEdges(t *testing.T) {
	base := startSandbox(t)
	in, ps := crm(t, 300, 125)
	script := fmt.Sprintf("%s import %s --base-url %s --campaign 'Spring Promo' --rate 0 --progress log 2>&1 | head -c 1; echo; echo \"exit ${PIPESTATUS[0]}\"", binary, in, base)
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), sandboxEnv...)
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "exit 0") {
		t.Errorf("with stderr into head: %s", out)
	}
	if ix, err := results.Load(in + ".results.csv"); err != nil || ix.Counts[results.Created] != len(ps) {
		t.Errorf("results after a closed stderr: %v %v", ix, err)
	}
	d := dump(t, base, sandbox.DefaultAPIKey)
	before := d.Created + d.Rejected
	in2, _ := crm(t, 5, 126)
	for _, key := range []string{sandbox.DefaultAPIKey + "\n" + sandbox.DefaultAPIKey, "sandbox key", "ab\x01cd"} {
		code, _, errs := importProcess(t, []string{"REVCENT_API_KEY=" + key}, in2, "--base-url", base, "--campaign", "Spring Promo", "--progress", "none")
		if code != exitUsage || !strings.Contains(errs, "REVCENT_API_KEY has") || strings.Contains(errs, key) {
			t.Errorf("key %q: exit %d %q", key, code, errs)
		}
	}
	d = dump(t, base, sandbox.DefaultAPIKey)
	if after := d.Created + d.Rejected; after != before {
		t.Errorf("%d requests sent with a bad key", after-before)
	}
}

// TestProgressFitsTheTerminal draws the bar in tmux at 80 and 40 columns:
// one line, redrawn in place (a line wider than the terminal wraps, and
// each redraw then scrolls), never more rows done than the total, on a
// file whose unbalanced quote makes the quick row count wrong.
func TestProgressFitsTheTerminal(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux is not installed (.ci/run installs it): the bar is not checked in a terminal")
	}
	var b strings.Builder
	b.WriteString("First Name,Last Name,Email\n")
	for i := 0; i < 3000; i++ {
		if i == 10 {
			b.WriteString("Un,\"balanced,quote@example.com\n") // the count reads the rest as one field
			continue
		}
		fmt.Fprintf(&b, "F%d,L%d,p%d@example.com\n", i, i, i)
	}
	in := write(t, "quotes.csv", b.String())
	bar := regexp.MustCompile(`(\d+)% \|`)
	counts := regexp.MustCompile(`\((\d+)/(\d+)`)
	for _, cols := range []int{80, 40} {
		session := fmt.Sprintf("revcent-progress-%d-%d", os.Getpid(), cols)
		res := filepath.Join(t.TempDir(), "r.csv")
		script := fmt.Sprintf("%s import %s --sandbox --campaign 'Spring Promo' --rate 1000 --progress bar --results %s; sleep 5", binary, in, res)
		if out, err := exec.Command(tmux, "new-session", "-d", "-x", fmt.Sprint(cols), "-y", "20", "-s", session, script).CombinedOutput(); err != nil {
			t.Fatalf("tmux: %v %s", err, out)
		}
		defer exec.Command(tmux, "kill-session", "-t", session).Run()
		seen := 0
		for deadline := time.Now().Add(8 * time.Second); time.Now().Before(deadline); time.Sleep(150 * time.Millisecond) {
			pane, err := exec.Command(tmux, "capture-pane", "-p", "-t", session).Output()
			if err != nil {
				break
			}
			var rows []string
			for _, line := range strings.Split(string(pane), "\n") {
				if bar.MatchString(line) {
					rows = append(rows, line)
				}
				if m := counts.FindStringSubmatch(line); m != nil {
					var done, total int
					fmt.Sscan(m[1], &done)
					fmt.Sscan(m[2], &total)
					if done > total {
						t.Errorf("%d columns: %d rows done of %d: %q", cols, done, total, line)
					}
				}
			}
			if len(rows) > 1 {
				t.Fatalf("%d columns: the bar takes %d lines (it wraps or scrolls):\n%s", cols, len(rows), pane)
			}
			if len(rows) == 1 {
				seen++
			}
			if strings.Contains(string(pane), "elapsed") {
				t.Logf("%d columns, at the end:\n%s", cols, pane)
				break
			}
		}
		if seen < 3 {
			t.Errorf("%d columns: the bar was seen in %d captures, want several", cols, seen)
		}
	}
}

// TestFormulaGuardRoundTrip: a cell a spreadsheet would run is exported
// with a leading apostrophe, and the fixed export imports with the value
// as it was written.
func TestFormulaGuardRoundTrip(t *testing.T) {
	base := startSandbox(t)
	company := `=HYPERLINK("http://x.example","pay")`
	in := write(t, "f.csv", "First Name,Last Name,Email,Company,Phone\nBob,Smith,bob-at-example.com,\""+strings.ReplaceAll(company, `"`, `""`)+"\",-5551234567\n")
	if code, out, errs := importProcess(t, sandboxEnv, in, "--base-url", base, "--campaign", "Spring Promo", "--progress", "none"); code != exitRowsFailed {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	fix := filepath.Join(t.TempDir(), "fix.csv")
	if code, _, errs := runCLI(t, nil, "report", in+".results.csv", "--input", in, "--errors-csv", fix); code != 0 {
		t.Fatal(errs)
	}
	rows := readExport(t, fix, ',')
	if len(rows) != 2 || rows[1][3] != "'"+company || rows[1][4] != "'-5551234567" {
		t.Fatalf("export %q: want the formula and the leading minus guarded", rows)
	}
	b, _ := os.ReadFile(fix)
	os.WriteFile(fix, bytes.Replace(b, []byte("bob-at-example.com"), []byte("bob@example.com"), 1), 0o644)
	if code, out, errs := importProcess(t, sandboxEnv, fix, "--base-url", base, "--campaign", "Spring Promo", "--progress", "none"); code != 0 {
		t.Fatalf("re-import: exit %d\n%s\n%s", code, out, errs)
	}
	d := dump(t, base, sandbox.DefaultAPIKey)
	if len(d.Customers) != 1 || d.Customers[0].Request.Customer.Company != company {
		t.Errorf("sent %+v, want the company %q as written", d.Customers, company)
	}
}
