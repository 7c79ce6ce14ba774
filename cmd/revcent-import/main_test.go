package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/revcent-import/revcent-import/internal/fake"
	"github.com/revcent-import/revcent-import/results"
	"github.com/revcent-import/revcent-import/revcent/sandbox"
)

// binary is the command built once for the tests that run it as a
// process, as a user or cron would.
var binary string

// builtCommit is the commit binary was built from, when git could say.
var builtCommit string

var ledgers sync.Map // test name -> its ledger file

// ledgerEnv is sandboxEnv with a ledger of the test's own, the same for
// every run of one test (a kill, then its resumes).
func ledgerEnv(t *testing.T) []string {
	p, _ := ledgers.LoadOrStore(t.Name(), filepath.Join(t.TempDir(), "ledger.db"))
	return append([]string{"REVCENT_LEDGER=" + p.(string)}, sandboxEnv...)
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "revcent-import-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "revcent-import")
	// No import the tests run writes to the home directory's ledger, nor
	// shares one with another test (two sandboxes on one port, one after
	// the other, would be one target): the ledger is off unless a test
	// names one (ledgerEnv, the ledger tests, the nightly recipe).
	os.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	os.Setenv("REVCENT_LEDGER", "off")
	// As the Makefile builds it: the commit and its date by ldflags, for
	// builds the Go toolchain does not stamp.
	args := []string{"build", "-o", binary}
	if c, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		builtCommit = strings.TrimSpace(string(c))
		d, _ := exec.Command("git", "log", "-1", "--format=%cI").Output()
		args = append(args, "-ldflags", "-X main.commit="+builtCommit+" -X main.date="+strings.TrimSpace(string(d)))
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runCLI runs the command in-process and returns its exit code and output.
func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, stdio{in: strings.NewReader(""), out: &out, err: &errb}, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func crm(t *testing.T, n int, seed uint64) (string, []fake.Prospect) {
	ps := fake.Prospects(n, seed)
	var b bytes.Buffer
	fake.WriteCSV(&b, ps)
	return write(t, "customers.csv", b.String()), ps
}

func TestSampleDataIntoInProcessSandbox(t *testing.T) {
	res := filepath.Join(t.TempDir(), "r.csv")
	// Flags after and before INPUT both work.
	code, out, stderr := runCLI(t, nil, "import", "--sandbox", "../../sample_data/prospects.csv", "--campaign", "Spring Promo",
		"--rate", "0", "--progress", "none", "--results", res)
	if code != exitRowsFailed {
		t.Fatalf("exit %d, want 1 (sample_data has invalid rows)\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"created          295", "duplicate          1", "invalid            4", "failed             0", "invalid rows were not sent"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	ix, err := results.Load(res)
	if err != nil || ix.Len() != 300 || ix.Counts[results.Created] != 295 {
		t.Errorf("results: %v %+v", err, ix)
	}
	// The same with the sample mapping file and the JSONL sample.
	code, out, _ = runCLI(t, nil, "import", "../../sample_data/prospects.csv", "--sandbox", "--mapping", "../../sample_data/mapping.yaml",
		"--rate", "0", "--progress", "none", "--results", res+"2")
	if code != exitRowsFailed || !strings.Contains(out, "created          295") {
		t.Errorf("with mapping.yaml: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, nil, "import", "../../sample_data/prospects.jsonl", "--sandbox", "--campaign", "Spring Promo",
		"--rate", "0", "--progress", "none", "--results", res+"3")
	if code != exitRowsFailed || !strings.Contains(out, "created           99") || !strings.Contains(out, "invalid            1") {
		t.Errorf("jsonl: exit %d\n%s", code, out)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	in, _ := crm(t, 3, 1)
	existing := write(t, "r.csv", strings.Join(results.Header, ",")+"\n")
	// A key and a home (for the ledger), as a user's shell has.
	keyEnv := map[string]string{"REVCENT_API_KEY": "k", "HOME": t.TempDir()}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no input", keyEnv, []string{"import"}, "needs INPUT"},
		{"unknown flag", keyEnv, []string{"import", in, "--nope"}, "unknown flag: --nope"},
		{"unknown command", keyEnv, []string{"imprt", in}, "unknown command"},
		{"no key", nil, []string{"import", in, "--campaign", "X"}, "no API key: set REVCENT_API_KEY or pass --api-key-file"},
		{"no campaign", nil, []string{"import", in, "--sandbox"}, "no campaign: pass --campaign"},
		{"results exist", keyEnv, []string{"import", in, "--campaign", "X", "--results", existing}, "add --resume to continue that run"},
		{"retry without resume", keyEnv, []string{"import", in, "--retry-failed"}, "--retry-failed goes with --resume"},
		{"stdin without results", keyEnv, []string{"import", "-"}, "--results is required when INPUT is -"},
		{"bad concurrency", keyEnv, []string{"import", in, "--concurrency", "lots"}, "--concurrency"},
		{"burst 0", keyEnv, []string{"import", in, "--burst", "0"}, `--burst "0": want a number from 1 to 1048576, or auto`},
		{"bad burst", keyEnv, []string{"import", in, "--burst", "some"}, `--burst "some": want a number`},
		{"bad format", keyEnv, []string{"import", in, "--format", "xml"}, "--format"},
		{"bad delimiter", keyEnv, []string{"import", in, "--delimiter", ";;"}, "--delimiter"},
		{"missing input", keyEnv, []string{"import", "/nonexistent.csv", "--campaign", "X"}, "no such file"},
		{"bad base url", keyEnv, []string{"import", in, "--campaign", "X", "--base-url", "api.revcent.com"}, "base URL"},
		{"no place for the ledger", map[string]string{"REVCENT_API_KEY": "k"}, []string{"import", in, "--campaign", "X", "--base-url", "http://127.0.0.1:1/v2"},
			"the ledger has no place: neither XDG_STATE_HOME nor HOME is set. Pass --ledger PATH (or set REVCENT_LEDGER) to keep it there, or --ledger off"},
		{"bad mapping", keyEnv, []string{"import", in, "--mapping", write(t, "m.yaml", "customer.emial: Email\n")}, `did you mean "customer.email"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runCLI(t, tt.env, tt.args...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q (stdout %q)", code, stderr, tt.want, out)
			}
		})
	}
	if _, err := os.Stat(in + ".results.csv"); err == nil {
		t.Error("a run that failed to start left a results file")
	}
}

func TestHelpAndVersion(t *testing.T) {
	code, out, _ := runCLI(t, nil, "import", "--help")
	for _, want := range []string{"--campaign", "--resume", "--retry-failed", "--rate", "--burst", "--concurrency", "--max-attempts",
		"--timeout", "--base-url", "--api-key-file", "--format", "--delimiter", "--encoding", "--progress", "--log-format", "--sandbox", "Examples:"} {
		if !strings.Contains(out, want) {
			t.Errorf("import --help lacks %s", want)
		}
	}
	if code != 0 {
		t.Errorf("help exit %d", code)
	}
	if code, out, _ := runCLI(t, nil, "--version"); code != 0 || !strings.HasPrefix(out, "revcent-import ") {
		t.Errorf("--version: %d %q", code, out)
	}
	// The built binary knows its commit (the Go build's VCS stamp, or the
	// Makefile's ldflags).
	vout, err := exec.Command(binary, "version").Output()
	if err != nil || !strings.HasPrefix(string(vout), "revcent-import ") {
		t.Errorf("version: %q %v", vout, err)
	}
	if builtCommit != "" && !regexp.MustCompile(`, commit [0-9a-f]{12}`).Match(vout) {
		t.Errorf("version %q does not name the commit %s", vout, builtCommit)
	}
}

// startSandbox runs `revcent-import sandbox` as its own process and
// returns its base URL.
func startSandbox(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"sandbox", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "REVCENT_API_KEY=")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	m := regexp.MustCompile(`listening on (\S+)`).FindStringSubmatch(line)
	if err != nil || m == nil {
		t.Fatalf("sandbox said %q, %v", line, err)
	}
	return m[1]
}

func dump(t *testing.T, base, key string) sandbox.Dump {
	t.Helper()
	req, _ := http.NewRequest("GET", strings.TrimSuffix(base, "/v2")+"/_sandbox/customers", nil)
	req.Header.Set("x-api-key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d sandbox.Dump
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

func importProcess(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"import"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

func readRecords(t *testing.T, path string) []results.Record {
	t.Helper()
	recs, err := results.ReadRecords(path)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestTwoProcessesCRMExport is issue 2's acceptance case: a 2,000-row CRM
// export into a sandbox running in another process, then the same for a
// JSONL export with camelCase keys and alpha-2 countries.
func TestTwoProcessesCRMExport(t *testing.T) {
	keyFile := write(t, "key", "s3cret-key-0123456789\n")
	base := startSandbox(t, "--api-key-file", keyFile)
	env := []string{"REVCENT_API_KEY=s3cret-key-0123456789"}

	in, ps := crm(t, 2000, 42)
	code, out, stderr := importProcess(t, env, in, "--base-url", base, "--campaign", "Spring Promo", "--rate", "0")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}

	var b bytes.Buffer
	js := fake.Prospects(2000, 43)
	for i := range js {
		js[i].Email = "app." + js[i].Email // distinct from the CSV's
	}
	fake.WriteJSONL(&b, js)
	jin := write(t, "app.jsonl", b.String())
	code, out2, stderr2 := importProcess(t, env, "--base-url", base, jin, "--campaign", "Spring Promo", "--rate", "0", "--log-format", "json")
	if code != 0 {
		t.Fatalf("jsonl: exit %d\n%s\n%s", code, out2, stderr2)
	}
	if !strings.Contains(stderr2, `"msg":"import finished"`) {
		t.Errorf("--log-format json: %s", stderr2)
	}

	d := dump(t, base, "s3cret-key-0123456789")
	if d.Created != 4000 {
		t.Errorf("sandbox created %d customers, want 4000", d.Created)
	}
	byEmail := map[string][]sandbox.Customer{}
	for _, c := range d.Customers {
		byEmail[c.Request.Customer.Email] = append(byEmail[c.Request.Customer.Email], c)
	}
	check := func(resultsPath string, ps []fake.Prospect, country func(fake.Prospect) string) {
		last := map[int]results.Record{}
		for _, r := range readRecords(t, resultsPath) {
			last[r.Row] = r
		}
		for _, p := range ps {
			cs := byEmail[strings.ToLower(p.Email)]
			if len(cs) != 1 {
				t.Errorf("%s: created %d times", p.Email, len(cs))
				continue
			}
			c := cs[0].Request
			if c.InternalCustomerID != p.CustomerID || c.Customer.Phone != p.Phone1 || c.Customer.Country != country(p) ||
				c.Customer.FirstName != p.First || c.Customer.LastName != p.Last {
				t.Errorf("row %d: sent %+v", p.Index, c)
			}
			if r := last[p.Index]; r.Status != results.Created || r.CustomerID != cs[0].ID {
				t.Errorf("row %d: results end %+v, want created %s", p.Index, r, cs[0].ID)
			}
		}
	}
	a3 := map[string]string{"Chile": "CHL", "Djibouti": "DJI", "Antigua and Barbuda": "ATG", "Dominican Republic": "DOM", "Slovakia": "SVK",
		"Bosnia and Herzegovina": "BIH", "United States": "USA", "Canada": "CAN", "Germany": "DEU", "France": "FRA", "United Kingdom": "GBR",
		"Brazil": "BRA", "Japan": "JPN", "India": "IND", "Poland": "POL", "Ireland": "IRL", "Italy": "ITA", "Spain": "ESP", "Mexico": "MEX",
		"Australia": "AUS", "Nigeria": "NGA", "Sweden": "SWE", "Norway": "NOR", "Netherlands": "NLD", "Switzerland": "CHE"}
	check(in+".results.csv", ps, func(p fake.Prospect) string { return a3[p.Country] })
	check(jin+".results.csv", js, func(p fake.Prospect) string { return a3[p.Country] })

	// The key never reaches output or files.
	for name, s := range map[string]string{"stdout": out + out2, "stderr": stderr + stderr2} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("%s shows the API key", name)
		}
	}
	for _, f := range []string{in + ".results.csv", jin + ".results.csv"} {
		if b, _ := os.ReadFile(f); bytes.Contains(b, []byte("s3cret")) {
			t.Errorf("%s holds the API key", f)
		}
	}
}

func TestRefusedKeyExits3(t *testing.T) {
	base := startSandbox(t)
	in, _ := crm(t, 200, 5)
	code, out, stderr := importProcess(t, []string{"REVCENT_API_KEY=wrong"}, in, "--base-url", base, "--campaign", "Spring Promo", "--rate", "0", "--concurrency", "4")
	if code != exitAborted || !strings.Contains(stderr, "check the API key") {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	if strings.Contains(stderr+out, "wrong") {
		t.Error("output shows the API key")
	}
	if _, err := results.Load(in + ".results.csv"); err != nil {
		t.Errorf("results file after abort: %v", err)
	}
}

// TestSIGINTThenResume stops an import with SIGINT mid-run: exit 4, and
// --resume then finishes with no customer created twice.
func TestSIGINTThenResume(t *testing.T) {
	base := startSandbox(t)
	in, ps := crm(t, 600, 9)
	cmd := exec.Command(binary, "import", in, "--base-url", base, "--campaign", "Spring Promo", "--rate", "200", "--progress", "none")
	cmd.Env = append(os.Environ(), "REVCENT_API_KEY="+sandbox.DefaultAPIKey)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // about 200 rows in
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitInterrupted {
		t.Fatalf("after SIGINT: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "--resume") {
		t.Errorf("no resume command shown:\n%s", out.String())
	}
	code, o2, e2 := importProcess(t, []string{"REVCENT_API_KEY=" + sandbox.DefaultAPIKey}, in, "--base-url", base, "--campaign", "Spring Promo", "--rate", "0", "--resume")
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s\n%s", code, o2, e2)
	}
	d := dump(t, base, sandbox.DefaultAPIKey)
	if d.Created != int64(len(ps)) {
		t.Errorf("created %d customers for %d rows", d.Created, len(ps))
	}
}

// TestREADMEShowsRealHelp keeps the README's usage section equal to the
// commands' real --help output; -update rewrites the section.
func TestREADMEShowsRealHelp(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const start, end = "<!-- usage:start", "<!-- usage:end -->"
	i, j := bytes.Index(readme, []byte(start)), bytes.Index(readme, []byte(end))
	if i < 0 || j < i {
		t.Fatal("README.md lacks the usage markers")
	}
	var section strings.Builder
	section.WriteString(start + " (kept equal to the real --help by TestREADMEShowsRealHelp; go test ./cmd/... -update rewrites it) -->\n")
	for _, c := range []string{"import", "validate", "mapping", "report", "sandbox"} {
		_, out, _ := runCLI(t, nil, c, "--help")
		fmt.Fprintf(&section, "```text\n$ revcent-import %s --help\n%s```\n\n", c, out)
	}
	if *update {
		readme = append(append(append([]byte{}, readme[:i]...), section.String()...), readme[j:]...)
		os.WriteFile("../../README.md", readme, 0o644)
	}
	if got := string(readme[i:j]); got != section.String() {
		t.Errorf("README.md does not show the current --help output: run go test ./cmd/revcent-import -run README -update")
	}
}

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"revcent-import", "import", "my list.csv", "--campaign", "Spring Promo", "--x=it's", ""})
	want := `revcent-import import 'my list.csv' --campaign 'Spring Promo' '--x=it'\''s' ''`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestRerunCommandIsTheCommandRun: the summary's rerun command repeats the
// arguments this run was given (not the process's), quoted for a shell.
func TestRerunCommandIsTheCommandRun(t *testing.T) {
	in := write(t, "my list.csv", "First Name,Last Name,Email,Campaign\nA,B,a@example.com,Spring Promo\nC,D,c@example.com,Old Promo\n")
	res := filepath.Join(t.TempDir(), "r.csv")
	args := []string{"import", in, "--sandbox", "--rate", "0", "--progress", "none", "--results", res}
	code, out, stderr := runCLI(t, nil, args...)
	if code != exitRowsFailed {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	want := "send the failed rows again):\n  " + shellJoin(append(append([]string{"revcent-import"}, args...), "--resume", "--retry-failed"))
	if !strings.Contains(out, want+"\n") {
		t.Errorf("summary lacks %q:\n%s", want, out)
	}
}

// TestImportGOGC: import runs the collector at GOGC 200 while it sends
// (its start log says so), unless GOGC is set in the environment. It runs
// the binary: the rule reads the process's heap, which in the test
// process is every parallel test's.
func TestImportGOGC(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want string
	}{{"", "gc_percent=200"}, {"GOGC=150", "gc_percent=0"}} {
		res := filepath.Join(t.TempDir(), "r.csv")
		cmd := exec.Command(binary, "import", "--sandbox", "../../sample_data/prospects.csv", "--campaign", "Spring Promo",
			"--rate", "0", "--progress", "none", "--results", res, "--ledger", "off")
		cmd.Env = withoutEnv("GOGC")
		if tc.env != "" {
			cmd.Env = append(cmd.Env, tc.env)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != exitRowsFailed || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("env %q: exit %d (%v), want %q in the log\n%s", tc.env, code, err, tc.want, stderr.String())
		}
	}
}

// withoutEnv is the test's environment without the named variables.
func withoutEnv(names ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, k) {
			env = append(env, kv)
		}
	}
	return env
}
