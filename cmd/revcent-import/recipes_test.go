package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/revcent-import/revcent-import/revcent/sandbox"
)

// TestREADMERecipes runs each recipe of the README as it is written, with
// revcent-import on PATH and a sandbox process standing in for RevCent
// (REVCENT_BASE_URL). Only system paths are moved into a temp dir.
func TestREADMERecipes(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)<!-- recipe:(\\w+) -->\\s*```sh\\n(.*?)```").FindAllSubmatch(readme, -1)
	recipes := map[string]string{}
	for _, b := range blocks {
		recipes[string(b[1])] = string(b[2])
	}
	if len(recipes) != 4 {
		t.Fatalf("found recipes %v, want trial, migrate, nightly and rerun", len(recipes))
	}
	// The recipes run at the default --rate 10: the sample's first 60 rows
	// (rows 17 and 42 invalid) keep this test short.
	full, _ := os.ReadFile("../../sample_data/prospects.csv")
	lines := strings.SplitAfter(string(full), "\n")
	sample := []byte(strings.Join(lines[:61], ""))
	run := func(t *testing.T, name, base string, setup func(dir string) string) (string, string) {
		dir := t.TempDir()
		script := recipes[name]
		if setup != nil {
			script = setup(dir)
		}
		cmd := exec.Command("bash", "-c", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(binary)+":"+os.Getenv("PATH"),
			"REVCENT_API_KEY="+sandbox.DefaultAPIKey, "REVCENT_BASE_URL="+base)
		out, _ := cmd.CombinedOutput()
		return dir, string(out)
	}

	t.Run("migrate", func(t *testing.T) {
		base := startSandbox(t)
		dir, out := run(t, "migrate", base, func(dir string) string {
			os.WriteFile(filepath.Join(dir, "prospects.csv"), sample, 0o644)
			return recipes["migrate"]
		})
		for _, f := range []string{"mapping.yaml", "prospects.csv.results.csv", "fix-me.csv", "fix-me.csv.results.csv"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("%s not made: %v\n%s", f, err, out)
			}
		}
		fix, _ := os.ReadFile(filepath.Join(dir, "fix-me.csv"))
		if n := strings.Count(string(fix), "\n"); n != 3 || !strings.Contains(out, "58 valid, 2 invalid, 0 duplicate") {
			t.Errorf("fix-me.csv has %d lines, want the header and the 2 invalid rows\n%s", n, out)
		}
		if d := dump(t, base, sandbox.DefaultAPIKey); d.Created != 58 {
			t.Errorf("created %d, want 58", d.Created)
		}
	})

	t.Run("trial", func(t *testing.T) {
		base := startSandbox(t)
		dir, out := run(t, "trial", base, func(dir string) string {
			os.WriteFile(filepath.Join(dir, "prospects.csv"), sample, 0o644)
			return recipes["trial"]
		})
		for _, want := range []string{"target: the in-process sandbox", "belongs to the in-process sandbox (import --sandbox)",
			"refused (exit 2): that results file is the sandbox's", "target: " + base} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if d := dump(t, base, sandbox.DefaultAPIKey); d.Created != 58 {
			t.Errorf("the real run created %d, want 58\n%s", d.Created, out)
		}
		for _, f := range []string{"prospects.csv.results.csv", "prospects.csv.trial.results.csv"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("nightly", func(t *testing.T) {
		// Two nights: Monday's 60 rows, then Tuesday's export, 30 of
		// Monday's people and 30 new ones. The ledger makes Tuesday send
		// only the new ones.
		base := startSandbox(t)
		dir := t.TempDir()
		exports := filepath.Join(dir, "exports")
		os.MkdirAll(exports, 0o755)
		os.WriteFile(filepath.Join(exports, "prospects-2026-11-30.csv"), sample, 0o644)
		tuesday := strings.Join(append([]string{lines[0]}, lines[31:91]...), "")
		os.WriteFile(filepath.Join(exports, "prospects-2026-12-01.csv"), []byte(tuesday), 0o644)
		os.WriteFile(filepath.Join(dir, "key"), []byte(sandbox.DefaultAPIKey+"\n"), 0o600)
		script := strings.NewReplacer("/data/exports", exports, "/etc/revcent/key", filepath.Join(dir, "key"),
			"/var/log", dir).Replace(recipes["nightly"])
		var out []byte
		for _, night := range []string{"2026-11-30", "2026-12-01"} {
			cmd := exec.Command("bash", "-c", script)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(binary)+":"+os.Getenv("PATH"), "NIGHT="+night,
				"XDG_STATE_HOME="+filepath.Join(dir, "state"), "REVCENT_LEDGER=", "REVCENT_BASE_URL="+base)
			o, _ := cmd.CombinedOutput()
			out = append(out, o...)
		}
		log, _ := os.ReadFile(filepath.Join(dir, "revcent-import.log"))
		// stdout and stderr both go to the log: every line is one JSON
		// object, the summaries among them.
		objs := checkJSONLines(t, string(log), "summary")
		var runs []map[string]any
		for _, o := range objs {
			if o["msg"] == "summary" {
				runs = append(runs, o["this_run"].(map[string]any))
			}
		}
		// Monday: 58 created, 2 invalid. Tuesday: rows 31-90 of the
		// sample: 30 of Monday's (row 42 invalid) and 30 new (one invalid).
		if len(runs) != 2 || runs[0]["created"] != 58.0 || runs[1]["existing"] != 29.0 || runs[1]["created"] != 29.0 {
			t.Errorf("summaries %v\nlog:\n%s\nout:\n%s", runs, log, out)
		}
		if _, err := os.Stat(filepath.Join(dir, "state", "revcent-import", "ledger.db")); err != nil {
			t.Errorf("the ledger is not in XDG_STATE_HOME: %v", err)
		}
		errs, _ := filepath.Glob(filepath.Join(exports, "*.errors.csv"))
		if len(errs) != 2 {
			t.Errorf("each night's exit 1 should have exported its errors: %v\n%s", errs, out)
		}
		if d := dump(t, base, sandbox.DefaultAPIKey); d.Created != 87 {
			t.Errorf("created %d, want 87 (58, then 29 new)", d.Created)
		}
	})

	t.Run("rerun", func(t *testing.T) {
		base := startSandbox(t)
		dir, out := run(t, "rerun", base, func(dir string) string {
			os.WriteFile(filepath.Join(dir, "prospects.csv"), sample, 0o644)
			// A first run that stopped part-way: SIGKILL after a moment.
			cmd := exec.Command(binary, "import", "prospects.csv", "--campaign", "Spring Promo", "--rate", "100")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "REVCENT_API_KEY="+sandbox.DefaultAPIKey, "REVCENT_BASE_URL="+base)
			cmd.Start()
			time.Sleep(300 * time.Millisecond)
			cmd.Process.Kill()
			cmd.Wait()
			return recipes["rerun"]
		})
		if d := dump(t, base, sandbox.DefaultAPIKey); d.Created != 58 {
			t.Errorf("created %d, want 58 (each once)\n%s", d.Created, out)
		}
		if !regexp.MustCompile(`created +58\n`).MatchString(out) {
			t.Errorf("the final report does not show 58 created:\n%s", out)
		}
		if _, err := os.Stat(filepath.Join(dir, "prospects.csv.results.csv")); err != nil {
			t.Error(err)
		}
	})
}
