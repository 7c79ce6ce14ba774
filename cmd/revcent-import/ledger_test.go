package main

// Issue 13's acceptance: nightly loads, exactly once across runs, through
// the embedded ledger.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/revcent-import/revcent-import/internal/fake"
	"github.com/revcent-import/revcent-import/internal/pgtest"
	"github.com/revcent-import/revcent-import/ledger"
	"github.com/revcent-import/revcent-import/results"
	"github.com/revcent-import/revcent-import/revcent/sandbox"
)

type nightRow struct{ first, last, email, phone string }

func writeNight(t *testing.T, dir, name string, rows []nightRow) string {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("First Name,Last Name,Email,Phone\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "%s,%s,%s,%s\n", r.first, r.last, r.email, r.phone)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// nights returns night 1 (n people) and night 2: half of night 1's people
// in another order, a fifth of those with a changed phone, and as many
// new people.
func nights(n int, seed uint64) (one, two []nightRow) {
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := 0; i < n; i++ {
		one = append(one, nightRow{fmt.Sprintf("First%d", i), fmt.Sprintf("Last%d", i), fmt.Sprintf("person%d@example.com", i), fmt.Sprintf("+44 20 7946 %04d", i%10000)})
	}
	perm := rng.Perm(n)[:n/2]
	for k, i := range perm {
		r := one[i]
		if k < n/10 {
			r.phone = "+44 161 496 0000"
		}
		two = append(two, r)
	}
	for i := 0; i < n/2; i++ {
		two = append(two, nightRow{fmt.Sprintf("New%d", i), fmt.Sprintf("Person%d", i), fmt.Sprintf("new%d@example.com", i), ""})
	}
	rng.Shuffle(len(two), func(i, j int) { two[i], two[j] = two[j], two[i] })
	return one, two
}

func ledgerRows() int {
	if os.Getenv("REVCENT_LEDGER_ROWS") != "" {
		var n int
		fmt.Sscan(os.Getenv("REVCENT_LEDGER_ROWS"), &n)
		return n
	}
	return 2000 // make accept-ledger runs the 10,000
}

func uniqueCustomers(t *testing.T, base string) (int64, int) {
	d := dump(t, base, sandbox.DefaultAPIKey)
	seen := map[string]int{}
	dups := 0
	for _, c := range d.Customers {
		seen[c.Request.Customer.Email]++
		if seen[c.Request.Customer.Email] == 2 {
			dups++
		}
	}
	return d.Created, dups
}

func counts(t *testing.T, path string) (created, existing, changed int) {
	for _, r := range readRecords(t, path) {
		switch r.Status {
		case results.Created:
			created++
		case results.Existing:
			existing++
			if r.ErrorCode == "changed" {
				changed++
			}
		}
	}
	return
}

// TestLedgerTwoNights: night 2 creates only its new people; its known
// people are existing, the changed ones flagged; night 2 again with
// another results file creates nothing. Then the same from a ledger filled
// by `ledger import` of night 1's results file.
func TestLedgerTwoNights(t *testing.T) {
	n := ledgerRows()
	one, two := nights(n, 7)
	for _, viaImport := range []bool{false, true} {
		t.Run(fmt.Sprintf("ledger import %v", viaImport), func(t *testing.T) {
			base := startSandbox(t)
			dir := t.TempDir()
			led := filepath.Join(dir, "ledger.db")
			env := append([]string{"REVCENT_LEDGER=" + led}, sandboxEnv...)
			n1 := writeNight(t, dir, "night1.csv", one)
			n2 := writeNight(t, dir, "night2.csv", two)
			common := []string{"--base-url", base, "--campaign", "Spring Promo", "--rate", "0", "--progress", "none"}
			night1Env := env
			if viaImport {
				night1Env = append([]string{"REVCENT_LEDGER=off"}, sandboxEnv...)
			}
			if code, out, errs := importProcess(t, night1Env, append([]string{n1}, common...)...); code != 0 {
				t.Fatalf("night 1: exit %d\n%s\n%s", code, out, errs)
			}
			if viaImport {
				code, out, errs := runCLI(t, map[string]string{"REVCENT_LEDGER": led}, "ledger", "import", n1+".results.csv")
				if code != 0 || !strings.Contains(out, fmt.Sprintf("%d people recorded", n)) {
					t.Fatalf("ledger import: exit %d\n%s\n%s", code, out, errs)
				}
				// Idempotent.
				runCLI(t, map[string]string{"REVCENT_LEDGER": led}, "ledger", "import", n1+".results.csv")
			}
			code, out, errs := importProcess(t, env, append([]string{n2}, common...)...)
			if code != 0 {
				t.Fatalf("night 2: exit %d\n%s\n%s", code, out, errs)
			}
			created, existing, changed := counts(t, n2+".results.csv")
			if created != n/2 || existing != n/2 || changed != n/10 {
				t.Errorf("night 2: %d created, %d existing (%d changed), want %d, %d (%d)\n%s", created, existing, changed, n/2, n/2, n/10, out)
			}
			checkChangedCSV(t, led, n2+".results.csv", n/10, viaImport)
			code, out, errs = importProcess(t, env, append([]string{n2, "--results", filepath.Join(dir, "again.results.csv")}, common...)...)
			if c, _, _ := counts(t, filepath.Join(dir, "again.results.csv")); code != 0 || c != 0 {
				t.Errorf("night 2 again: exit %d, %d created\n%s\n%s", code, c, out, errs)
			}
			if total, dups := uniqueCustomers(t, base); total != int64(n+n/2) || dups != 0 {
				t.Errorf("RevCent holds %d customers (%d twice), want %d", total, dups, n+n/2)
			}
		})
	}
}

// checkChangedCSV runs report --changed-csv on night 2's results file: a
// line per changed field of each changed row, the phone only, old and new,
// or, when the ledger was filled by ledger import (which has no request),
// every field of the new request with a note saying so.
func checkChangedCSV(t *testing.T, led, res string, want int, viaImport bool) {
	t.Helper()
	out := filepath.Join(filepath.Dir(res), "changed.csv")
	code, stdout, stderr := runCLI(t, map[string]string{"REVCENT_LEDGER": led}, "report", res, "--changed-csv", out)
	if code != 0 || !strings.Contains(stdout, fmt.Sprintf("%d changed rows written to %s", want, out)) {
		t.Fatalf("report --changed-csv: exit %d\n%s\n%s", code, stdout, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("\ufeff")) {
		t.Errorf("%s does not start with a UTF-8 BOM", out)
	}
	recs, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff")))).ReadAll()
	if err != nil || len(recs) < 2 {
		t.Fatalf("%s: %v, %d lines", out, err, len(recs))
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	rows := map[string]bool{}
	for _, r := range recs[1:] {
		rows[r[col["import_row"]]] = true
		field, old, new, note := r[col["field"]], r[col["old"]], r[col["new"]], r[col["note"]]
		switch {
		case viaImport && (old != "" || !strings.Contains(note, "not recorded")):
			t.Errorf("a ledger filled by ledger import has no old values: %q", r)
		case !viaImport && (field != "customer.phone" || !strings.HasPrefix(old, "+44 20 7946 ") || new != "+44 161 496 0000" || note != ""):
			t.Errorf("want the phone changed from night 1's to +44 161 496 0000: %q", r)
		}
	}
	if len(rows) != want {
		t.Errorf("%d rows listed, want %d", len(rows), want)
	}
}

// TestLedgerTwoImportersAtOnce: two importers on files sharing half their
// people, separate results files, one ledger: nobody created twice.
func TestLedgerTwoImportersAtOnce(t *testing.T) {
	twoImportersAtOnce(t, filepath.Join(t.TempDir(), "ledger.db"))
}

// TestPostgresLedgerTwoImportersAtOnce: the same with issue 14's shared
// ledger, a real Postgres server: nobody created twice.
func TestPostgresLedgerTwoImportersAtOnce(t *testing.T) {
	twoImportersAtOnce(t, pgtest.Start(t))
}

func twoImportersAtOnce(t *testing.T, led string) {
	n := ledgerRows()
	base := startSandbox(t, "--latency", "2ms")
	dir := t.TempDir()
	var a, b []nightRow
	for i := 0; i < n; i++ {
		r := nightRow{fmt.Sprintf("F%d", i), fmt.Sprintf("L%d", i), fmt.Sprintf("p%d@example.com", i), ""}
		if i < n*3/4 {
			a = append(a, r)
		}
		if i >= n/4 {
			b = append(b, r)
		}
	}
	rand.New(rand.NewPCG(3, 3)).Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
	files := []string{writeNight(t, dir, "a.csv", a), writeNight(t, dir, "b.csv", b)}
	var wg sync.WaitGroup
	codes := make([]int, 2)
	outs := make([]string, 2)
	for i, f := range files {
		wg.Go(func() {
			code, out, errs := importProcess(t, append([]string{"REVCENT_LEDGER=" + led}, sandboxEnv...), f, "--base-url", base, "--campaign", "Spring Promo", "--rate", "0", "--progress", "none")
			codes[i], outs[i] = code, out+errs
		})
	}
	wg.Wait()
	for i := range files {
		if codes[i] != 0 {
			t.Errorf("importer %d: exit %d\n%.3000s", i, codes[i], outs[i])
		}
		for _, r := range readRecords(t, files[i]+".results.csv") {
			if r.Status != results.Created && r.Status != results.Existing && r.Status != results.Pending {
				t.Errorf("importer %d row %d: %s %s", i, r.Row, r.Status, r.Message)
			}
		}
	}
	if total, dups := uniqueCustomers(t, base); total != int64(n) || dups != 0 {
		t.Errorf("RevCent holds %d customers (%d twice), want %d", total, dups, n)
	}
}

// TestLedgerKills: night 2 killed five times at random and resumed: no
// one twice, and the ledger agrees with the journal at the end.
func TestLedgerKills(t *testing.T) {
	n := ledgerRows()
	one, two := nights(n, 11)
	base := startSandbox(t, "--latency", "1ms")
	dir := t.TempDir()
	led := filepath.Join(dir, "ledger.db")
	env := append([]string{"REVCENT_LEDGER=" + led}, sandboxEnv...)
	n1, n2 := writeNight(t, dir, "night1.csv", one), writeNight(t, dir, "night2.csv", two)
	common := []string{"--base-url", base, "--campaign", "Spring Promo", "--rate", "2000", "--progress", "none", "--settle", "2s", "--resume"}
	if code, out, errs := importProcess(t, env, append([]string{n1}, common...)...); code != 0 {
		t.Fatalf("night 1: exit %d\n%s\n%s", code, out, errs)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	for k := 0; k < 5; k++ {
		cmd := exec.Command(binary, append([]string{"import", n2}, common...)...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Start()
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
	}
	code, out, errs := importProcess(t, env, append([]string{n2}, common...)...)
	if code != 0 {
		t.Fatalf("final resume: exit %d\n%s\n%s", code, out, errs)
	}
	if total, dups := uniqueCustomers(t, base); total != int64(n+n/2) || dups != 0 {
		t.Errorf("RevCent holds %d customers (%d twice), want %d", total, dups, n+n/2)
	}
	// The ledger and the journal agree: every created or existing row of
	// night 2 is in the ledger with the journal's customer id.
	ids := map[string]string{}
	for _, r := range readRecords(t, n2+".results.csv") {
		if r.Status == results.Created || r.Status == results.Existing {
			ids[r.Email] = r.CustomerID
		}
	}
	ix, err := results.Load(n2 + ".results.csv")
	if err != nil {
		t.Fatal(err)
	}
	store, err := ledger.OpenSQLite(led)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	disagree := 0
	for email, id := range ids {
		p, err := store.Lookup(context.Background(), ix.Target.String(), "email:"+email)
		if err != nil || p == nil || p.CustomerID != id {
			if disagree++; disagree < 5 {
				t.Errorf("%s: the journal says %s, the ledger %+v (%v)", email, id, p, err)
			}
		}
	}
	if len(ids) != len(two) || disagree > 0 {
		t.Errorf("%d of %d rows done, %d disagree with the ledger", len(ids), len(two), disagree)
	}
	code, out, _ = runCLI(t, map[string]string{"REVCENT_LEDGER": led}, "ledger", "stats")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("Spring Promo  %d  ", n+n/2)) {
		t.Errorf("ledger stats: %q, want %d people in Spring Promo", out, n+n/2)
	}
}

// TestCheckExisting: customers created outside this tool (the ledger
// cannot know them) are found by --check-existing and not created again.
func TestCheckExisting(t *testing.T) {
	base := startSandbox(t)
	in, ps := crm(t, 30, 130)
	old := preload(t, base, ps) // every tenth person, from "the shop"
	code, out, errs := importProcess(t, sandboxEnv, in, "--base-url", base, "--campaign", "Spring Promo", "--rate", "0", "--progress", "none", "--check-existing")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	existing := 0
	for _, r := range readRecords(t, in+".results.csv") {
		if r.Status == results.Existing {
			existing++
			if old[r.Email] != r.CustomerID {
				t.Errorf("row %d existing as %s, the shop's customer is %s", r.Row, r.CustomerID, old[r.Email])
			}
		}
	}
	if created, dups := uniqueCustomers(t, base); existing != len(old) || created != int64(len(ps)-len(old)) || dups != 0 {
		t.Errorf("%d existing of %d preloaded; %d created (%d people twice), want %d", existing, len(old), created, dups, len(ps)-len(old))
	}
}

// TestLedgerOptionsAndCommands: --existing create sends known people
// anyway; --match-key internal_id knows a person by id when the email
// changed; ledger runs lists every import; ledger forget makes a person
// new again.
func TestLedgerOptionsAndCommands(t *testing.T) {
	base := startSandbox(t)
	dir := t.TempDir()
	led := filepath.Join(dir, "ledger.db")
	env := append([]string{"REVCENT_LEDGER=" + led}, sandboxEnv...)
	in, ps := crm(t, 20, 140)
	common := []string{"--base-url", base, "--campaign", "Spring Promo", "--rate", "0", "--progress", "none"}
	run := func(results string, extra ...string) (int, int) {
		t.Helper()
		code, out, errs := importProcess(t, env, append(append([]string{in, "--results", filepath.Join(dir, results)}, common...), extra...)...)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s\n%s", results, code, out, errs)
		}
		c, e, _ := counts(t, filepath.Join(dir, results))
		return c, e
	}
	if c, _ := run("1.csv"); c != len(ps) {
		t.Fatalf("first run created %d", c)
	}
	if c, e := run("2.csv"); c != 0 || e != len(ps) {
		t.Errorf("second run: %d created, %d existing, want 0 and %d", c, e, len(ps))
	}
	if c, _ := run("3.csv", "--existing", "create"); c != len(ps) {
		t.Errorf("--existing create: %d created, want %d", c, len(ps))
	}
	lenv := map[string]string{"REVCENT_LEDGER": led}
	email := strings.ToLower(ps[0].Email)
	if code, out, _ := runCLI(t, lenv, "ledger", "forget", email); code != 0 || !strings.Contains(out, "nothing forgotten") {
		t.Errorf("forget without an answer: %d %q", code, out)
	}
	if code, out, _ := runCLI(t, lenv, "ledger", "forget", email, "--yes"); code != 0 || !strings.Contains(out, "1 entries forgotten") {
		t.Errorf("ledger forget: %d %q", code, out)
	}
	// Forgetting what is not there says so.
	for _, args := range [][]string{{email}, {"--run", "99"}} {
		want := map[string]string{email: email + " is not in the ledger: nothing forgotten", "--run": "run 99 is not in the ledger (`ledger runs` lists them): nothing forgotten"}[args[0]]
		if code, out, _ := runCLI(t, lenv, append([]string{"ledger", "forget", "--yes"}, args...)...); code != 0 || out != want+"\n" {
			t.Errorf("ledger forget %s again: %d %q, want %q", args, code, out, want)
		}
	}
	if c, _ := run("4.csv"); c != 1 {
		t.Errorf("after forget, %d created, want the forgotten one", c)
	}
	// The same ids with other emails: known by internal_id, not by email.
	b, _ := os.ReadFile(in)
	os.WriteFile(in, regexp.MustCompile(`@[a-z.]+\.[a-z]+`).ReplaceAll(b, []byte("@changed.example")), 0o644)
	if c, e := run("5.csv", "--match-key", "internal_id"); c != len(ps) || e != 0 {
		t.Errorf("internal_id, first time: %d created, %d existing", c, e)
	}
	if c, e := run("6.csv", "--match-key", "internal_id"); c != 0 || e != len(ps) {
		t.Errorf("internal_id, second time: %d created, %d existing, want 0 and %d", c, e, len(ps))
	}
	if code, out, _ := runCLI(t, lenv, "ledger", "runs"); code != 0 || strings.Count(out, "\n") != 7 {
		t.Errorf("ledger runs: want a header and 6 runs:\n%s", out)
	}
}

// TestLedgerKilledRunsUnsentClaims: a run claims its rows in the ledger a
// batch ahead of sending them. Killed, it leaves claims on rows it never
// sent; its resume takes those over without reconciling them (the journal
// has no pending line for them, and a request leaves only after its
// pending line), and reconciles only the rows the journal shows in doubt.
func TestLedgerKilledRunsUnsentClaims(t *testing.T) {
	one, _ := nights(1000, 13)
	base := startSandbox(t, "--latency", "1ms")
	dir := t.TempDir()
	led := filepath.Join(dir, "ledger.db")
	env := append([]string{"REVCENT_LEDGER=" + led}, sandboxEnv...)
	in := writeNight(t, dir, "night.csv", one)
	common := []string{"--base-url", base, "--campaign", "Spring Promo", "--rate", "50", "--progress", "none", "--settle", "1s", "--resume"}
	cmd := exec.Command(binary, append([]string{"import", in}, common...)...)
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once some rows were sent (about half a second at 50/s).
	for i := 0; i < 500; i++ {
		if b, _ := os.ReadFile(in + ".results.csv"); bytes.Count(b, []byte(",pending,")) >= 25 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	inDoubt := 0
	last := map[int]results.Status{}
	for _, r := range readRecords(t, in+".results.csv") {
		last[r.Row] = r.Status
	}
	for _, st := range last {
		if st == results.Pending {
			inDoubt++
		}
	}
	if len(last) < 25 || len(last) > 900 {
		t.Fatalf("the killed run wrote %d rows, want some sent and most not", len(last))
	}
	// ledger runs shows the killed run's claims, and what to do.
	held := regexp.MustCompile(`(?s)\n1 .*\(killed\).*\nrun 1 \(\S*night.csv\) was killed holding claims on (\d+) people: run its import again with --resume`)
	lenv := map[string]string{"REVCENT_LEDGER": led}
	if code, out, _ := runCLI(t, lenv, "ledger", "runs"); code != 0 || held.FindStringSubmatch(out) == nil || held.FindStringSubmatch(out)[1] == "0" {
		t.Errorf("ledger runs after the kill: want run 1's claims and what to do:\n%s", out)
	}
	d0 := dump(t, base, sandbox.DefaultAPIKey)
	code, out, errs := importProcess(t, env, append([]string{in}, common...)...)
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, _ := runCLI(t, lenv, "ledger", "runs"); code != 0 || strings.Contains(out, "holding claims") {
		t.Errorf("ledger runs after the resume: want no claims left:\n%s", out)
	}
	// What the resume asked besides creating: searches and lists, for
	// the rows it reconciled. One row in doubt costs a few; each of the
	// hundreds of unsent claims would cost at least one.
	d1 := dump(t, base, sandbox.DefaultAPIKey)
	asked := (d1.Requests - d0.Requests - 1) - (d1.Created - d0.Created) - (d1.Rejected - d0.Rejected)
	if asked > int64(10*inDoubt+10) {
		t.Errorf("the resume made %d search or list requests for %d rows in doubt: it reconciled rows the killed run never sent\n%s", asked, inDoubt, errs)
	}
	m := regexp.MustCompile(`took over the last run's claims of rows it never sent.* rows=(\d+)`).FindStringSubmatch(errs)
	if m == nil || m[1] == "0" {
		t.Errorf("the resume does not say it took over the killed run's unsent claims:\n%s", errs)
	}
	if total, dups := uniqueCustomers(t, base); total != 1000 || dups != 0 {
		t.Errorf("RevCent holds %d customers (%d twice), want 1000", total, dups)
	}
}

// TestLedgerRunsOfAnotherHost: `ledger runs` cannot see the process of a
// run on another host that has not ended. It shows it as running there,
// or killed, and says that other runs wait for the people it claims.
func TestLedgerRunsOfAnotherHost(t *testing.T) {
	ctx := context.Background()
	led := filepath.Join(t.TempDir(), "ledger.db")
	s, err := ledger.OpenSQLite(led)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := s.StartRun(ctx, ledger.Run{Target: "T", Input: "night.csv", Results: "night.results.csv", PID: 1 << 22})
	if _, err := s.ClaimMany(ctx, "T", []string{"email:ada@example.com", "email:bob@example.com"}, id, false); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", led)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE runs SET host = 'cron-2' WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	db.Close()
	code, out, _ := runCLI(t, map[string]string{"REVCENT_LEDGER": led}, "ledger", "runs")
	if code != 0 || !strings.Contains(out, "(running on cron-2, or killed)") ||
		!strings.Contains(out, "run 1 (night.csv) on cron-2 has not ended and claims 2 people, for which other runs wait. If it was killed, run its import again there with --resume (results file night.results.csv)") {
		t.Errorf("ledger runs with a run of another host:\n%s", out)
	}
}

// TestLedgerNotALedger: --ledger naming a file that is not a ledger (the
// input, by a slip) stops the import before it starts, with what to do
// in words, and leaves that file as it was.
func TestLedgerNotALedger(t *testing.T) {
	in, _ := crm(t, 20, 140)
	before, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	res := filepath.Join(t.TempDir(), "r.csv")
	for _, args := range [][]string{
		{"import", in, "--sandbox", "--campaign", "Spring Promo", "--ledger", in, "--results", res, "--progress", "none"},
		{"ledger", "stats", "--ledger", in},
	} {
		code, _, errs := runCLI(t, nil, args...)
		if code != exitUsage || !strings.Contains(errs, in+" is not an SQLite file, so not a ledger: pass --ledger the ledger's path") ||
			strings.Contains(errs, "SQLITE") || strings.Contains(errs, "(26)") {
			t.Errorf("%s: exit %d, %q; want %d and the file named, in words", args[0], code, errs, exitUsage)
		}
	}
	if _, err := os.Stat(res); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("results file: %v, want none written", err)
	}
	if after, err := os.ReadFile(in); err != nil || !bytes.Equal(after, before) {
		t.Errorf("the input changed: %v", err)
	}
}

// TestSandboxLedger: the in-process sandbox, forgotten at exit, has a
// ledger of its own, forgotten too, even with REVCENT_LEDGER set (its
// people are not the target's); --ledger PATH keeps its people there, to
// try the ledger across runs.
func TestSandboxLedger(t *testing.T) {
	in, _ := crm(t, 12, 150)
	dir := t.TempDir()
	env := map[string]string{"REVCENT_LEDGER": filepath.Join(dir, "env.db")}
	kept := filepath.Join(dir, "kept.db")
	for night, want := range []string{"created           12", "created           12"} {
		res := filepath.Join(dir, fmt.Sprintf("env%d.csv", night))
		code, out, errs := runCLI(t, env, "import", in, "--sandbox", "--campaign", "Spring Promo", "--rate", "0", "--progress", "none", "--results", res)
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("REVCENT_LEDGER, run %d: exit %d, want %q\n%s\n%s", night+1, code, want, out, errs)
		}
	}
	if _, err := os.Stat(env["REVCENT_LEDGER"]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("REVCENT_LEDGER's file: %v, want none made by --sandbox", err)
	}
	for night, want := range []string{"created           12", "existing          12"} {
		res := filepath.Join(dir, fmt.Sprintf("kept%d.csv", night))
		code, out, errs := runCLI(t, env, "import", in, "--sandbox", "--ledger", kept, "--campaign", "Spring Promo", "--rate", "0", "--progress", "none", "--results", res)
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("--ledger, run %d: exit %d, want %q\n%s\n%s", night+1, code, want, out, errs)
		}
	}
	code, out, _ := runCLI(t, nil, "ledger", "show", "--ledger", kept, fake.Prospects(12, 150)[0].Email)
	if code != exitOK || !strings.Contains(out, results.InProcessSandbox) {
		t.Errorf("ledger show: exit %d\n%s", code, out)
	}
}

// TestLedgerLockedIsWaitedFor: a ledger another process holds locked (an
// sqlite3 shell with a transaction open) is waited for, and the wait is
// said after 2 s, not kept silent; once the lock goes, the run goes on.
func TestLedgerLockedIsWaitedFor(t *testing.T) {
	in, _ := crm(t, 5, 160)
	led := filepath.Join(t.TempDir(), "ledger.db")
	s, err := ledger.OpenSQLite(led)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", led)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	release := time.AfterFunc(3*time.Second, func() { conn.ExecContext(ctx, "ROLLBACK") })
	defer release.Stop()
	code, out, errs := runCLI(t, nil, "import", in, "--sandbox", "--ledger", led, "--campaign", "Spring Promo", "--rate", "0", "--progress", "none",
		"--results", filepath.Join(t.TempDir(), "r.csv"))
	if code != exitOK || !strings.Contains(out, "created            5") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(errs, "ledger: waiting to open it: it has not answered for 2 s (another process may hold it locked)") {
		t.Errorf("the wait for the locked ledger was not said:\n%s", errs)
	}
}
