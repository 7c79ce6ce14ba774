package main

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/revcent-import/revcent-import/internal/fake"
	"github.com/revcent-import/revcent-import/ratelimit"
	"github.com/revcent-import/revcent-import/results"
	"github.com/revcent-import/revcent-import/revcent/sandbox"
)

var sandboxEnv = []string{"REVCENT_API_KEY=" + sandbox.DefaultAPIKey}

// checkOnce asserts that the sandbox holds each prospect exactly once and
// that each row's last results line is created with that customer's id.
func checkOnce(t *testing.T, base, resultsPath string, ps []fake.Prospect) {
	t.Helper()
	checkOnceAmong(t, base, resultsPath, ps, len(ps))
}

// checkOnceAmong is checkOnce for one of several inputs sent to one
// server, which holds total customers in all.
func checkOnceAmong(t *testing.T, base, resultsPath string, ps []fake.Prospect, total int) {
	t.Helper()
	d := dump(t, base, sandbox.DefaultAPIKey)
	byEmail := map[string][]string{}
	for _, c := range d.Customers {
		byEmail[c.Request.Customer.Email] = append(byEmail[c.Request.Customer.Email], c.ID)
	}
	last := map[int]results.Record{}
	for _, r := range readRecords(t, resultsPath) {
		last[r.Row] = r
	}
	dups, lost := 0, 0
	for _, p := range ps {
		ids := byEmail[strings.ToLower(p.Email)]
		switch {
		case len(ids) == 0:
			lost++
		case len(ids) > 1:
			dups++
		}
		if r := last[p.Index]; len(ids) != 1 || r.Status != results.Created || r.CustomerID != ids[0] {
			if dups+lost < 5 {
				t.Errorf("row %d: server ids %v, results end %s %q", p.Index, ids, r.Status, r.CustomerID)
			}
		}
	}
	if dups > 0 || lost > 0 || d.Created != int64(total) {
		t.Errorf("%d rows created twice, %d never; the server created %d customers for %d rows", dups, lost, d.Created, total)
	}
}

func TestResultsFileLocked(t *testing.T) {
	base := startSandbox(t, "--latency", "200ms")
	in, _ := crm(t, 40, 79)
	first := exec.Command(binary, "import", in, "--base-url", base, "--campaign", "Spring Promo", "--rate", "5", "--progress", "none")
	first.Env = append(os.Environ(), sandboxEnv...)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(20 * time.Millisecond) {
		if ix, err := results.Load(in + ".results.csv"); err == nil && ix.Len() > 0 {
			break
		}
	}
	code, _, stderr := importProcess(t, sandboxEnv, in, "--base-url", base, "--campaign", "Spring Promo", "--resume")
	if code != exitUsage || !strings.Contains(stderr, "in use by another run") {
		t.Errorf("a second run on the same results file: exit %d\n%s", code, stderr)
	}
	first.Process.Signal(syscall.SIGINT)
	first.Wait()
	if c := first.ProcessState.ExitCode(); c != exitInterrupted {
		t.Errorf("first run after SIGINT: exit %d, want 4", c)
	}
}

// TestResultsWriteFailure fills the results file's allowance (ulimit -f)
// mid-run: the importer must stop sending at once, exit 3, and have a
// pending or created line for every customer the server created, so that
// --resume finishes the job with no duplicate.
func TestResultsWriteFailure(t *testing.T) {
	base := startSandbox(t)
	in, ps := crm(t, 400, 80)
	res := in + ".results.csv"
	// The ledger is off: this is about the results file (a ledger file
	// under the same limit fails to open, exit 2, before anything is sent).
	cmd := exec.Command("bash", "-c", `ulimit -f 8; exec "$@"`, "bash", binary, "import", in, "--base-url", base,
		"--campaign", "Spring Promo", "--rate", "0", "--progress", "none", "--ledger", "off")
	cmd.Env = append(os.Environ(), sandboxEnv...)
	out, _ := cmd.CombinedOutput()
	if c := cmd.ProcessState.ExitCode(); c != exitAborted || !strings.Contains(string(out), "stopped sending, since no outcome could be recorded") {
		t.Fatalf("exit %d, want 3 and a clear message:\n%s", c, out)
	}
	recorded := map[string]bool{}
	for _, line := range strings.Split(string(mustRead(t, res)), "\n") {
		if f := strings.Split(line, ","); len(f) > 8 && (f[2] == "pending" || f[2] == "created") {
			recorded[f[8]] = true
		}
	}
	d := dump(t, base, sandbox.DefaultAPIKey)
	for _, c := range d.Customers {
		if !recorded[c.Request.Customer.Email] {
			t.Errorf("%s was created but the results file has no line for it", c.Request.Customer.Email)
		}
	}
	if d.Created == 0 || d.Created >= 400 {
		t.Errorf("created %d before the failure", d.Created)
	}
	code, o, e := importProcess(t, sandboxEnv, in, "--base-url", base, "--campaign", "Spring Promo", "--rate", "0", "--resume", "--settle", "1s")
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s\n%s", code, o, e)
	}
	checkOnce(t, base, res, ps)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestServerRateLimit is issue 4's and issue 14's rate case in real time:
// a server allowing 40 requests a second (bursts of 40, 5 or 1, 429 with
// Retry-After: 1 beyond; with RateLimit headers or not) while the
// importer asks for 200/s with its default burst. make test runs 280
// rows; make accept-429 runs the full 3,000 (REVCENT_RATE_ROWS=3000) and
// holds it to 1.15x the ideal time (1.05x with headers). The fake-time
// simulation is in ratelimit.
func TestServerRateLimit(t *testing.T) {
	rows := 280
	if n, err := strconv.Atoi(os.Getenv("REVCENT_RATE_ROWS")); err == nil && n > 0 {
		rows = n
	}
	for _, tc := range []struct {
		name     string
		burst    int
		headers  bool
		maxRatio float64
	}{
		{"burst 40", 40, false, 1.15},
		{"burst 5", 5, false, 1.15},
		{"burst 1", 1, false, 1.15},
		{"burst 5, RateLimit headers", 5, true, 1.05},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--rate-limit", "40", "--rate-burst", strconv.Itoa(tc.burst), "--retry-after", "1"}
			if tc.headers {
				args = append(args, "--ratelimit-headers")
			}
			base := startSandbox(t, args...)
			in, ps := crm(t, rows, 81)
			start := time.Now()
			code, out, stderr := importProcess(t, sandboxEnv, in, "--base-url", base, "--campaign", "Spring Promo", "--rate", "200", "--progress", "none")
			elapsed := time.Since(start)
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
			}
			checkOnce(t, base, in+".results.csv", ps)
			d := dump(t, base, sandbox.DefaultAPIKey)
			share := float64(d.Faults.Throttled) / float64(d.Requests)
			// The server's first burst come from its full bucket, the rest at 40/s.
			ideal := time.Duration(float64(rows-tc.burst) / 40 * float64(time.Second))
			ratio := elapsed.Seconds() / ideal.Seconds()
			t.Logf("%d rows in %v: %.3fx the ideal %v; %d requests, %d answered 429 (%.1f%%)\n%s",
				rows, elapsed.Round(time.Millisecond), ratio, ideal, d.Requests, d.Faults.Throttled, 100*share, out)
			refusals := 0 // with headers, the burst is held to what they say is left
			if !tc.headers {
				refusals = startRefusals(rows, 200, tc.burst)
			}
			if d.Faults.Throttled-int64(refusals) >= int64(math.Ceil(0.05*float64(d.Requests))) {
				t.Errorf("%d of %d requests answered 429 (%d allowed for the start's burst), want under 5%%", d.Faults.Throttled, d.Requests, refusals)
			}
			if rows >= 1000 && ratio > tc.maxRatio {
				t.Errorf("%.3fx the ideal time, want within %.2fx", ratio, tc.maxRatio)
			}
		})
	}
}

// startRefusals is what --burst auto's first tenth of a second may cost,
// once, against a server that takes serverBurst requests at once and
// sends no rate-limit headers: the difference, answered 429. Issue 14's
// bound, under 5% of 3,000 rows, holds with it (15 is 0.5%); the 100-300
// rows of make test cannot absorb a fixed 15, so below 1,000 rows the
// tests allow it on top of their 5%.
func startRefusals(rows int, rate float64, serverBurst int) int {
	if rows >= 1000 {
		return 0
	}
	return max(0, ratelimit.StartBurst(rate)-serverBurst)
}

// TestSignalsWithSlowRequests: with every request taking 5 s, the first
// SIGINT exits 4 within --timeout (requests in flight end at their
// deadline); a second SIGINT exits 4 at once. Either way the results file
// opens for --resume.
func TestSignalsWithSlowRequests(t *testing.T) {
	base := startSandbox(t, "--latency", "5s")
	for _, tc := range []struct {
		name    string
		signals int
		within  time.Duration
	}{
		{"one signal waits for requests in flight, up to --timeout", 1, 2500 * time.Millisecond},
		{"a second signal quits at once", 2, 700 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, _ := crm(t, 50, 82)
			cmd := exec.Command(binary, "import", in, "--base-url", base, "--campaign", "Spring Promo", "--rate", "0",
				"--concurrency", "4", "--timeout", "1500ms", "--max-attempts", "1", "--progress", "none")
			cmd.Env = append(os.Environ(), sandboxEnv...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Signal once requests are in flight: their pending lines are
			// in the results file (a fixed wait failed on a loaded machine).
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if b, _ := os.ReadFile(in + ".results.csv"); bytes.Count(b, []byte(",pending,")) >= 4 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no four requests in flight after 20 s\n%s", out.String())
				}
			}
			start := time.Now()
			cmd.Process.Signal(syscall.SIGINT)
			if tc.signals == 2 {
				time.Sleep(100 * time.Millisecond)
				cmd.Process.Signal(syscall.SIGINT)
			}
			cmd.Wait()
			took := time.Since(start)
			if c := cmd.ProcessState.ExitCode(); c != exitInterrupted || took > tc.within {
				t.Errorf("exit %d after %v; want 4 within %v\n%s", c, took, tc.within, out.String())
			}
			w, ix, err := results.Resume(in+".results.csv", nil)
			if err != nil {
				t.Fatalf("results file after the signal: %v", err)
			}
			w.Close()
			if ix.Counts[results.Pending] == 0 {
				t.Errorf("no pending rows recorded for the requests in flight: %v", ix.Counts)
			}
		})
	}
}

// TestPipesAreReadOnce: a FIFO and a process substitution can be read only
// once; the progress row count must not take their rows.
func TestPipesAreReadOnce(t *testing.T) {
	base := startSandbox(t)
	in, ps := crm(t, 3000, 83)
	dir := t.TempDir()
	t.Run("fifo", func(t *testing.T) {
		fifo := dir + "/list.csv"
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Skip("no FIFOs here:", err)
		}
		go func() {
			data, _ := os.ReadFile(in)
			f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
			if err == nil {
				f.Write(data)
				f.Close()
			}
		}()
		res := dir + "/fifo.results.csv"
		code, out, stderr := importProcess(t, sandboxEnv, fifo, "--base-url", base, "--campaign", "Spring Promo", "--rate", "0",
			"--progress", "log", "--results", res)
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
		}
		checkOnce(t, base, res, ps)
	})
	t.Run("process substitution", func(t *testing.T) {
		base := startSandbox(t)
		res := dir + "/subst.results.csv"
		cmd := exec.Command("bash", "-c", `exec "$0" import <(cat "$1") --base-url "$2" --campaign "Spring Promo" --rate 0 --progress log --results "$3"`,
			binary, in, base, res)
		cmd.Env = append(os.Environ(), sandboxEnv...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		checkOnce(t, base, res, ps)
		// Without --results, a pipe has nowhere to put one: exit 2.
		cmd = exec.Command("bash", "-c", `exec "$0" import <(cat "$1") --base-url "$2" --campaign "Spring Promo"`, binary, in, base)
		cmd.Env = append(os.Environ(), sandboxEnv...)
		out, _ = cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != exitUsage || !strings.Contains(string(out), "--results is required when INPUT is not a regular file") {
			t.Errorf("exit %d\n%s", cmd.ProcessState.ExitCode(), out)
		}
	})
}
