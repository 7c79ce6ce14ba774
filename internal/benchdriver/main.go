// Command benchdriver is make bench: it measures the importer as a user
// runs it (a process against a sandbox process on loopback) and prints
// markdown tables for BENCHMARKS.md. Every ratio compares figures taken in
// the same run, on a shared and noisy machine.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/revcent-import/revcent-import/internal/fake"
	"github.com/revcent-import/revcent-import/ratelimit"
	"github.com/revcent-import/revcent-import/results"
	"github.com/revcent-import/revcent-import/revcent/sandbox"
)

var (
	bin    = flag.String("bin", "bin/revcent-import", "the importer binary")
	rounds = flag.Int("rounds", 7, "importer/poster pairs for the throughput ratio")
	rows   = flag.Int("rows", 50000, "rows per throughput run")
	quick  = flag.Bool("quick", false, "smaller sizes, for a smoke test")
	vegeta = flag.String("vegeta", "", "the vegeta binary, the load tool run beside the importer (default: on PATH, or in $(go env GOPATH)/bin; make bench installs it)")
	only   = flag.String("only", "", "comma-separated sections to run (throughput,fidelity,latency,cpu,memory,resume,settle,hostile,xlsx,ledger,report); all when empty")
	dir    string
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "poster" {
		w, _ := strconv.Atoi(os.Args[5])
		if err := poster(os.Args[2], os.Args[3], os.Args[4], w); err != nil {
			fmt.Fprintln(os.Stderr, "poster:", err)
			os.Exit(1)
		}
		return
	}
	flag.Parse()
	var err error
	if dir, err = os.MkdirTemp("", "revcent-bench"); err != nil {
		fail(err)
	}
	if os.Getenv("BENCH_KEEP") == "" {
		defer os.RemoveAll(dir)
	}
	scale := 1
	if *quick {
		scale, *rows, *rounds = 10, 5000, 2
	}
	fmt.Printf("# make bench, %s\n\nMachine: %d cores, %s/%s, %s. Importer and sandbox are separate processes on loopback.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	for _, sec := range []struct {
		name string
		run  func()
	}{
		{"throughput", throughput},
		{"fidelity", func() { fidelity(scale) }},
		{"latency", func() { latencyHiding(scale) }},
		{"cpu", func() { cpuAtRate(scale) }},
		{"memory", func() { memory(scale) }},
		{"resume", func() { resumeStartup(scale) }},
		{"settle", func() { settleCost(scale) }},
		{"hostile", func() { hostile(scale) }},
		{"xlsx", func() { xlsxRate(scale) }},
		{"ledger", func() { ledgerCost(scale) }},
		{"report", func() { reportMemory(scale) }},
		{"noise", func() { deliveryNoise(scale) }},
	} {
		if *only == "" || slices.Contains(strings.Split(*only, ","), sec.name) {
			sec.run()
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchdriver:", err)
	os.Exit(1)
}

// csvFile writes an n-row CRM export once and returns its path.
func csvFile(n int) string {
	p := filepath.Join(dir, fmt.Sprintf("customers-%d.csv", n))
	if _, err := os.Stat(p); err == nil {
		return p
	}
	f, err := os.Create(p)
	if err != nil {
		fail(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := fake.WriteCSV(w, fake.Prospects(n, 100)); err != nil {
		fail(err)
	}
	w.Flush()
	f.Close()
	return p
}

type server struct {
	cmd *exec.Cmd
	url string
}

func startSandbox(args ...string) *server {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(*bin, append([]string{"sandbox", "--addr", addr}, args...)...)
	cmd.Env = append(os.Environ(), "REVCENT_API_KEY=")
	if err := cmd.Start(); err != nil {
		fail(err)
	}
	s := &server{cmd: cmd, url: "http://" + addr + "/v2"}
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
	fail(fmt.Errorf("sandbox did not start"))
	return nil
}

func (s *server) stop() { s.cmd.Process.Signal(syscall.SIGTERM); s.cmd.Wait() }

// cpu is the CPU time (user and system, every thread) the sandbox has used
// so far, from /proc/PID/stat's utime and stime, in Linux's fixed 100
// ticks a second (USER_HZ).
func (s *server) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		fail(err)
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from the last ')'. utime and stime are fields 14 and 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func (s *server) dump() sandbox.Dump {
	req, _ := http.NewRequest("GET", strings.TrimSuffix(s.url, "/v2")+"/_sandbox/customers", nil)
	req.Header.Set("x-api-key", sandbox.DefaultAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fail(err)
	}
	defer resp.Body.Close()
	var d sandbox.Dump
	json.NewDecoder(resp.Body).Decode(&d)
	return d
}

// usage is what one child process cost.
type usage struct {
	wall, cpu time.Duration
	maxRSS    int64 // bytes
	out       string
}

// runChild runs a command and measures it. Peak RSS comes from sampling
// the child's own VmHWM: rusage's ru_maxrss would include this driver's
// high-water mark, since os/exec starts children with vfork.
func runChild(name string, args ...string) usage {
	cmd := exec.Command(name, args...)
	// No ledger unless a section asks for one with --ledger: the default
	// one, under ~/.local/state, would remember one run's people in the
	// next (found existing, not sent) and outlive the bench.
	cmd.Env = append(os.Environ(), "REVCENT_API_KEY="+sandbox.DefaultAPIKey, "REVCENT_LEDGER=off")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fail(err)
	}
	done := make(chan struct{})
	peak := make(chan int64)
	go func() {
		var hwm int64
		status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		for {
			if b, err := os.ReadFile(status); err == nil {
				if m := hwmRE.FindSubmatch(b); m != nil {
					kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
					hwm = max(hwm, kb*1024)
				}
			}
			select {
			case <-done:
				peak <- hwm
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	err := cmd.Wait()
	wall := time.Since(start)
	close(done)
	hwm := <-peak
	if err != nil && cmd.ProcessState.ExitCode() > 1 {
		fail(fmt.Errorf("%s %v: %v\n%s", name, args, err, out.String()))
	}
	return usage{wall: wall, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), maxRSS: hwm, out: out.String()}
}

var hwmRE = regexp.MustCompile(`VmHWM:\s+(\d+) kB`)

func importRun(input, url string, extra ...string) usage {
	res := filepath.Join(dir, fmt.Sprintf("r-%d.csv", rand.Int()))
	defer os.Remove(res)
	args := append([]string{"import", input, "--base-url", url, "--campaign", "Spring Promo", "--progress", "none", "--results", res}, extra...)
	return runChild(*bin, args...)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func throughput() {
	in := csvFile(*rows)
	srv := startSandbox("--discard")
	defer srv.stop()
	self, _ := os.Executable()
	veg, targets := vegetaTargets(in, srv.url)
	importRun(in, srv.url, "--rate", "0", "--concurrency", "32") // warm up both sides
	peers := []string{"importer", "poster"}
	if veg != "" {
		peers = append(peers, "vegeta")
	}
	rate := map[string][]float64{}
	cpu := map[string][]float64{}
	var toPoster, toVegeta []float64
	for i := range *rounds {
		run := func(which string) usage {
			switch which {
			case "importer":
				return importRun(in, srv.url, "--rate", "0", "--concurrency", "32")
			case "poster":
				return runChild(self, "poster", in, srv.url, sandbox.DefaultAPIKey, "32")
			}
			out := filepath.Join(dir, "vegeta.bin")
			u := runChild(veg, "attack", "-format=json", "-targets="+targets, "-lazy", "-rate=0", "-workers=32", "-max-workers=32", "-duration=0", "-output="+out)
			if i == 0 {
				checkVegeta(veg, out, *rows)
			}
			return u
		}
		order := slices.Clone(peers)
		for range i % len(order) { // each goes first in turn
			order = append(order[1:], order[0])
		}
		got := map[string]usage{}
		for _, w := range order {
			got[w] = run(w)
		}
		for _, w := range peers {
			rate[w] = append(rate[w], float64(*rows)/got[w].wall.Seconds())
			cpu[w] = append(cpu[w], float64(got[w].cpu.Microseconds())/float64(*rows))
		}
		toPoster = append(toPoster, rate["importer"][i]/rate["poster"][i])
		if veg != "" {
			toVegeta = append(toVegeta, rate["importer"][i]/rate["vegeta"][i])
		}
	}
	fmt.Printf("## 1. Throughput: importer against a minimal Go poster and vegeta\n\n")
	fmt.Printf("%d rows a run, `--rate 0`, 32 workers each, into one `sandbox --discard` process; %d alternated rounds. vegeta (`vegeta attack -rate=0 -workers=32 -max-workers=32 -lazy`) sends the importer's own request bodies, from its `--dry-run` file.\n\n", *rows, *rounds)
	if veg == "" {
		fmt.Printf("vegeta was not found: `go install github.com/tsenart/vegeta/v12@v12.13.0`, or pass -vegeta PATH.\n\n")
		fmt.Printf("| round | importer rows/s | poster rows/s | importer/poster | importer CPU µs/row | poster CPU µs/row |\n| --- | --- | --- | --- | --- | --- |\n")
		for i := range toPoster {
			fmt.Printf("| %d | %.0f | %.0f | %.3f | %.1f | %.1f |\n", i+1, rate["importer"][i], rate["poster"][i], toPoster[i], cpu["importer"][i], cpu["poster"][i])
		}
		fmt.Printf("| **median** | %.0f | %.0f | **%.3f** | %.1f | %.1f |\n\n", median(rate["importer"]), median(rate["poster"]), median(toPoster), median(cpu["importer"]), median(cpu["poster"]))
		return
	}
	fmt.Printf("| round | importer rows/s | poster rows/s | vegeta rows/s | importer/poster | importer/vegeta | CPU µs/row: importer, poster, vegeta |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for i := range toPoster {
		fmt.Printf("| %d | %.0f | %.0f | %.0f | %.3f | %.3f | %.1f, %.1f, %.1f |\n", i+1, rate["importer"][i], rate["poster"][i], rate["vegeta"][i], toPoster[i], toVegeta[i],
			cpu["importer"][i], cpu["poster"][i], cpu["vegeta"][i])
	}
	fmt.Printf("| **median** | %.0f | %.0f | %.0f | **%.3f** | **%.3f** | %.1f, %.1f, %.1f |\n\n", median(rate["importer"]), median(rate["poster"]), median(rate["vegeta"]),
		median(toPoster), median(toVegeta), median(cpu["importer"]), median(cpu["poster"]), median(cpu["vegeta"]))
}

// vegetaTargets finds vegeta and writes its targets: one POST a row, with
// the body the importer sends for it (its --dry-run file holds them). It
// returns "" for the binary when there is none.
func vegetaTargets(in, url string) (veg, targets string) {
	veg = *vegeta
	if veg == "" {
		if p, err := exec.LookPath("vegeta"); err == nil {
			veg = p
		} else if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			if p := filepath.Join(strings.TrimSpace(string(out)), "bin", "vegeta"); fileExists(p) {
				veg = p
			}
		}
	}
	if veg == "" {
		return "", ""
	}
	dry := filepath.Join(dir, "vegeta-input.csv")
	copyFile(in, dry)
	runChild(*bin, "import", dry, "--dry-run", "--campaign", "Spring Promo", "--base-url", url, "--progress", "none")
	f, err := os.Open(dry + ".dry-run.jsonl")
	if err != nil {
		fail(err)
	}
	defer f.Close()
	targets = filepath.Join(dir, "vegeta-targets.json")
	tf, err := os.Create(targets)
	if err != nil {
		fail(err)
	}
	w := bufio.NewWriterSize(tf, 1<<20)
	enc := json.NewEncoder(w)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		var line struct {
			Request json.RawMessage `json:"request"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			fail(err)
		}
		// vegeta's JSON target: the body base64 ([]byte in JSON).
		enc.Encode(struct {
			Method string              `json:"method"`
			URL    string              `json:"url"`
			Body   []byte              `json:"body"`
			Header map[string][]string `json:"header"`
		}{"POST", url + "/customers", line.Request, map[string][]string{"x-api-key": {sandbox.DefaultAPIKey}, "Content-Type": {"application/json"}}})
		n++
	}
	if err := sc.Err(); err != nil {
		fail(err)
	}
	w.Flush()
	tf.Close()
	if n != *rows {
		fail(fmt.Errorf("the dry run wrote %d requests for %d rows", n, *rows))
	}
	return veg, targets
}

// checkVegeta fails unless vegeta's results hold rows answers of 200.
func checkVegeta(veg, results string, rows int) {
	out, err := exec.Command(veg, "report", "-type=json", results).Output()
	if err != nil {
		fail(fmt.Errorf("vegeta report: %v", err))
	}
	var rep struct {
		StatusCodes map[string]int `json:"status_codes"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		fail(fmt.Errorf("vegeta report: %v", err))
	}
	if rep.StatusCodes["200"] != rows {
		fail(fmt.Errorf("vegeta: %v answers by status for %d rows: want every one 200", rep.StatusCodes, rows))
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// window returns the achieved rate over the arrivals and the most
// arrivals in any 1-second window.
func window(arr []int64) (float64, int) {
	slices.Sort(arr)
	if len(arr) < 2 {
		return 0, len(arr)
	}
	achieved := float64(len(arr)-1) / (float64(arr[len(arr)-1]-arr[0]) / 1e9)
	busiest, j := 0, 0
	for i := range arr {
		for arr[i]-arr[j] >= int64(time.Second) {
			j++
		}
		busiest = max(busiest, i-j+1)
	}
	return achieved, busiest
}

func fidelity(scale int) {
	fmt.Printf("## 2. Rate fidelity\n\nSandbox with 50 ms latency; default `--concurrency auto` and `--burst auto` (a tenth of a second's requests). Rates from the server's arrival times.\n\n")
	fmt.Printf("| --rate | rows | achieved/s | achieved/target | busiest 1 s window | limit (rate + burst) |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, tc := range []struct{ rate, rows int }{{100, 1500 / scale}, {1000, 10000 / scale}} {
		srv := startSandbox("--discard", "--record-arrivals", "--latency", "50ms")
		importRun(csvFile(tc.rows), srv.url, "--rate", strconv.Itoa(tc.rate))
		achieved, busiest := window(srv.dump().Arrivals)
		srv.stop()
		fmt.Printf("| %d | %d | %.1f | %.3f | %d | %d |\n", tc.rate, tc.rows, achieved, achieved/float64(tc.rate), busiest, tc.rate+ratelimit.StartBurst(float64(tc.rate)))
	}
	fmt.Println()
	// With a burst of 1 each start is a token's time after the last: what
	// a server allowing no burst sees is the gaps between arrivals.
	n := 800 / scale
	srv := startSandbox("--discard", "--record-arrivals")
	importRun(csvFile(n), srv.url, "--rate", "38", "--burst", "1")
	arr := srv.dump().Arrivals
	srv.stop()
	achieved, _ := window(arr)
	spacing := float64(time.Second) / 38
	var off []float64 // each gap less the spacing, in ms; the first gap waits on the first answer
	for i := 2; i < len(arr); i++ {
		off = append(off, (float64(arr[i]-arr[i-1])-spacing)/1e6)
	}
	if len(off) == 0 {
		fmt.Printf("`--rate 38 --burst 1`: %d arrivals, too few to measure gaps\n\n", len(arr))
		return
	}
	slices.Sort(off)
	at := func(p float64) float64 { return percentile(off, p) }
	fmt.Printf("`--rate 38 --burst 1`, no latency, %d rows: each arrival gap less the spacing (26.32 ms), in ms.\n\n", n)
	fmt.Printf("| achieved/target | min | p1 | median | p99 | max |\n| --- | --- | --- | --- | --- | --- |\n")
	fmt.Printf("| %.3f | %.2f | %.2f | %.2f | %.2f | %.2f |\n\n", achieved/38, off[0], at(0.01), at(0.5), at(0.99), off[len(off)-1])
}

// percentile returns the p-th (0-1) of sorted, which is not empty.
func percentile(sorted []float64, p float64) float64 {
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

var workersRE = regexp.MustCompile(`rows/s, (\d+) workers`)

func latencyHiding(scale int) {
	n := 4000 / scale
	srv := startSandbox("--discard", "--record-arrivals", "--latency", "200ms", "--jitter", "100ms")
	u := importRun(csvFile(n), srv.url, "--rate", "200")
	achieved, _ := window(srv.dump().Arrivals)
	srv.stop()
	workers := "?"
	if m := workersRE.FindStringSubmatch(u.out); m != nil {
		workers = m[1]
	}
	fmt.Printf("## 3. Latency hiding\n\n200-300 ms a request, `--rate 200`, default concurrency, %d rows.\n\n", n)
	fmt.Printf("| achieved/s | achieved/target | workers at the end |\n| --- | --- | --- |\n| %.1f | %.3f | %s |\n\n", achieved, achieved/200, workers)
	wholeRun(scale)
}

// wholeRun is issue 14's case: 2,000 rows at 200-300 ms, --rate 200,
// default concurrency, counting the whole run (the import process's wall
// time, start-up and last answer included), with the default burst and
// with --burst 1 in turns, each with a new ledger (the default is one).
func wholeRun(scale int) {
	n := 2000 / scale
	in := csvFile(n)
	srv := startSandbox("--discard", "--latency", "200ms", "--jitter", "100ms")
	defer srv.stop()
	ideal := float64(n) / 200
	cases := []struct {
		name string
		args []string
	}{{"`--burst auto` (default)", nil}, {"`--burst 1`", []string{"--burst", "1"}}}
	ratios := make([][]float64, len(cases))
	for i := range 3 {
		for c, tc := range cases {
			ledger := filepath.Join(dir, fmt.Sprintf("whole-%d-%d.db", i, c))
			u := importRun(in, srv.url, append([]string{"--rate", "200", "--ledger", ledger}, tc.args...)...)
			ratios[c] = append(ratios[c], ideal/u.wall.Seconds())
		}
	}
	fmt.Printf("Issue 14's whole run: %d rows, the same server, `--rate 200`, default concurrency, a new ledger each run; rows/s over the import process's wall time, as a share of 200/s, three runs in turns.\n\n", n)
	fmt.Printf("| burst | runs | median | auto/1 (median of the pairs) |\n| --- | --- | --- | --- |\n")
	var pairs []float64
	for i := range ratios[0] {
		pairs = append(pairs, ratios[0][i]/ratios[1][i])
	}
	for c, tc := range cases {
		ratio := "1"
		if c == 0 {
			ratio = fmt.Sprintf("%.3f", median(pairs))
		}
		fmt.Printf("| %s | %s | **%.3f** | %s |\n", tc.name, fmtList(ratios[c]), median(ratios[c]), ratio)
	}
	fmt.Println()
}

func fmtList(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.3f", x))
	}
	return strings.Join(parts, ", ")
}

func cpuAtRate(scale int) {
	n := 20000 / scale
	srv := startSandbox("--discard")
	u := importRun(csvFile(n), srv.url, "--rate", "2000")
	srv.stop()
	fmt.Printf("## 4. CPU per row at `--rate 2000`\n\n%d rows: %v wall, %v user+sys: **%.1f µs/row**.\n\n", n, u.wall.Round(time.Millisecond), u.cpu.Round(time.Millisecond), float64(u.cpu.Microseconds())/float64(n))
}

func memory(scale int) {
	n := 200000 / scale
	srv := startSandbox("--discard")
	u := importRun(csvFile(n), srv.url, "--rate", "0")
	srv.stop()
	m := 1000000 / scale
	v := runChild(*bin, "validate", csvFile(m), "--campaign", "Spring Promo")
	fmt.Printf("## 5. Peak RSS\n\n| run | rows | wall | peak RSS |\n| --- | --- | --- | --- |\n")
	fmt.Printf("| import (`--rate 0`) into a sandbox process | %d | %v | %.1f MiB |\n", n, u.wall.Round(time.Millisecond), float64(u.maxRSS)/(1<<20))
	fmt.Printf("| validate | %d | %v | %.1f MiB |\n\n", m, v.wall.Round(time.Millisecond), float64(v.maxRSS)/(1<<20))
}

// resumeStartup writes a results file saying every row of an m-row input
// was created, then times a --resume run that has nothing left to do.
func resumeStartup(scale int) {
	m := 1000000 / scale
	in := csvFile(m)
	res := filepath.Join(dir, "resume.results.csv")
	w, err := results.Create(res)
	if err != nil {
		fail(err)
	}
	ps := fake.Prospects(m, 100)
	for i, p := range ps {
		w.Write(&results.Record{Row: i + 1, Line: i + 2, Status: results.Created, CustomerID: fmt.Sprintf("%020d", i),
			HTTPStatus: 200, Attempts: 1, Email: strings.ToLower(p.Email), RowHash: strconv.FormatUint(results.RowHash(p.Record()), 16), At: "2026-11-26T00:00:00.000Z"})
	}
	if err := w.Close(); err != nil {
		fail(err)
	}
	srv := startSandbox("--discard")
	u := runChild(*bin, "import", in, "--base-url", srv.url, "--campaign", "Spring Promo", "--progress", "none", "--results", res, "--resume")
	d := srv.dump()
	srv.stop()
	if !strings.Contains(u.out, fmt.Sprintf("skipped %8d", m)) && !strings.Contains(u.out, "skipped") || d.Requests != 0 {
		fail(fmt.Errorf("resume did not skip every row (%d requests):\n%s", d.Requests, u.out))
	}
	fmt.Printf("## 6. Resume start-up\n\nA results file recording all %d rows as created; `import --resume` reads it, reads the input, skips every row, sends nothing.\n\n", m)
	fmt.Printf("| rows | wall | per 1M rows | peak RSS |\n| --- | --- | --- | --- |\n| %d | %v | %.2f s | %.1f MiB |\n\n",
		m, u.wall.Round(time.Millisecond), u.wall.Seconds()*1e6/float64(m), float64(u.maxRSS)/(1<<20))
}

var inDoubtRE = regexp.MustCompile(`reconciled +(\d+)`)

// settleCost is issue 10's cost of waiting: rows whose answer was lost
// are set aside for the settle window while the others go on, so a run
// with lost answers and a lagging search takes the time without faults
// plus the settle window, not a window per row. Pairs alternate.
func settleCost(scale int) {
	n := 100000 / scale
	in := csvFile(n)
	const settle = 10 * time.Second
	type res struct {
		clean, faulty         time.Duration
		reconciled, extraReqs string
	}
	var runs []res
	pairs := 3
	if scale > 1 {
		pairs = 1
	}
	for i := range pairs {
		var r res
		for _, faulty := range []bool{i%2 == 1, i%2 == 0} {
			args := []string{}
			if faulty {
				args = []string{"--lost-answers", "0.01", "--search-lag", "5s"}
			}
			srv := startSandbox(args...)
			u := importRun(in, srv.url, "--rate", "0", "--settle", settle.String())
			d := srv.dump()
			srv.stop()
			if !faulty {
				r.clean = u.wall
				continue
			}
			r.faulty = u.wall
			if m := inDoubtRE.FindStringSubmatch(u.out); m != nil {
				r.reconciled = m[1]
			}
			r.extraReqs = strconv.FormatInt(d.Requests-int64(n), 10)
		}
		runs = append(runs, r)
	}
	fmt.Printf("## 7. Cost of waiting (issue 10)\n\n%d rows, `--rate 0`, `--settle %v`; the faulty sandbox loses 1%% of answers (after creating) and its search lags 5 s. Bound: (time without faults + settle) x 1.10.\n\n", n, settle)
	fmt.Printf("| pair | without faults | with faults | bound | faulty/bound | rows reconciled | requests beyond one create a row |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for i, r := range runs {
		bound := time.Duration(float64(r.clean+settle) * 1.10)
		fmt.Printf("| %d | %v | %v | %v | %.3f | %s | %s |\n", i+1, r.clean.Round(10*time.Millisecond), r.faulty.Round(10*time.Millisecond),
			bound.Round(10*time.Millisecond), r.faulty.Seconds()/bound.Seconds(), r.reconciled, r.extraReqs)
	}
	fmt.Println()
}

// hostile is issue 11's bounded memory: validate reads inputs built to
// exhaust it, and its peak RSS stays within 64 MiB.
func hostile(scale int) {
	size := (100 << 20) / scale
	mk := func(name string, write func(w *bufio.Writer)) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			fail(err)
		}
		w := bufio.NewWriterSize(f, 1<<20)
		write(w)
		w.Flush()
		f.Close()
		return p
	}
	chunk := strings.Repeat("x", 1<<16)
	fill := func(w *bufio.Writer, n int) {
		for ; n > len(chunk); n -= len(chunk) {
			w.WriteString(chunk)
		}
		w.WriteString(chunk[:n])
	}
	good := "Ada,Lovelace,ada@example.com\n"
	files := []struct{ what, path string }{
		{fmt.Sprintf("a %d MB line, no line break", size>>20), mk("line.csv", func(w *bufio.Writer) {
			w.WriteString("First Name,Last Name,Email\n")
			fill(w, size)
		})},
		{fmt.Sprintf("a %d MB quoted cell, then a good row", size>>20), mk("cell.csv", func(w *bufio.Writer) {
			w.WriteString("First Name,Last Name,Email\n\"")
			fill(w, size)
			w.WriteString("\",x,x@example.com\n" + good)
		})},
		{"a JSONL line nested 10,000 deep (60 KB), then a good row", mk("deep.jsonl", func(w *bufio.Writer) {
			w.WriteString(`{"first_name":"Ada","last_name":"Lovelace","email":"ada@example.com"}` + "\n")
			w.WriteString(strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000) + "\n")
		})},
	}
	fmt.Printf("## 8. Hostile input (issue 11)\n\n`validate` on each file; the record bound is 1 MiB.\n\n| input | wall | peak RSS | outcome |\n| --- | --- | --- | --- |\n")
	for _, f := range files {
		u := runChild(*bin, "validate", f.path, "--campaign", "Spring Promo")
		outcome := "?"
		if m := regexp.MustCompile(`(\d+) valid, (\d+) invalid`).FindStringSubmatch(u.out); m != nil {
			outcome = m[0]
		}
		fmt.Printf("| %s | %v | %.1f MiB | %s |\n", f.what, u.wall.Round(time.Millisecond), float64(u.maxRSS)/(1<<20), outcome)
	}
	fmt.Println()
}

// xlsxRate is issue 11's workbook case: the same rows as .xlsx and as CSV,
// imported into one sandbox process with --rate 0, alternating.
func xlsxRate(scale int) {
	n := 100000 / scale
	in := csvFile(n)
	book := filepath.Join(dir, fmt.Sprintf("customers-%d.xlsx", n))
	if err := fake.WriteXLSX(book, fake.Prospects(n, 100)); err != nil {
		fail(err)
	}
	srv := startSandbox("--discard")
	defer srv.stop()
	fmt.Printf("## 9. XLSX input (issue 11)\n\n%d rows as .xlsx and as CSV, `--rate 0`, into one `sandbox --discard` process, alternating.\n\n| pair | CSV rows/s | XLSX rows/s | XLSX/CSV | CSV peak RSS | XLSX peak RSS |\n| --- | --- | --- | --- | --- | --- |\n", n)
	var ratios []float64
	for i := range 3 {
		c := importRun(in, srv.url, "--rate", "0")
		x := importRun(book, srv.url, "--rate", "0")
		cr, xr := float64(n)/c.wall.Seconds(), float64(n)/x.wall.Seconds()
		ratios = append(ratios, xr/cr)
		fmt.Printf("| %d | %.0f | %.0f | %.3f | %.1f MiB | %.1f MiB |\n", i+1, cr, xr, xr/cr, float64(c.maxRSS)/(1<<20), float64(x.maxRSS)/(1<<20))
	}
	fmt.Printf("| **median** | | | **%.3f** | | |\n\n", median(ratios))
}

// ledgerCost is issue 13's figures: an import of new people with the
// ledger on (a new ledger each time) against the same with --ledger off,
// alternating in one sandbox; then against a ledger already holding
// 1,000,000 other people (a copy of one filled once, each time), for its
// start-up and lookups, and its peak RSS.
func ledgerCost(scale int) {
	n := 100000 / scale
	in := csvFile(n)
	srv := startSandbox("--discard")
	defer srv.stop()
	fmt.Printf("## 10. The ledger (issue 13)\n\n%d new people, `--rate 0`, into one `sandbox --discard` process: `--ledger off`, then a new ledger, alternating; then a copy of a ledger holding %d other people on the same target.\n\n", n, 1000000/scale)
	fmt.Printf("CPU is the importer's and the sandbox's together, a person. Both runs keep the machine's cores busy, so the ledger's CPU is what it costs; the budget is the CPU a person the ledger could add for on/off 0.90, were the on run as parallel as the off run: (off wall / 0.90 - off wall) x off CPU / off wall / people, which is off CPU / 9 / people.\n\n")
	fmt.Printf("| pair | off rows/s | on rows/s | on/off | off peak RSS | on peak RSS | off CPU | on CPU | ledger CPU | budget for 0.90 |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	perPerson := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	var ratios []float64
	for i := range 3 {
		off, on, offCPU, onCPU := ledgerPair(srv, in)
		budget := offCPU / 9 // (1/0.90 - 1) of it
		fr, nr := float64(n)/off.wall.Seconds(), float64(n)/on.wall.Seconds()
		ratios = append(ratios, nr/fr)
		fmt.Printf("| %d | %.0f | %.0f | %.3f | %.1f MiB | %.1f MiB | %.1f µs | %.1f µs | %.1f µs | %.1f µs |\n", i+1, fr, nr, nr/fr, float64(off.maxRSS)/(1<<20), float64(on.maxRSS)/(1<<20),
			perPerson(offCPU), perPerson(onCPU), perPerson(onCPU-offCPU), perPerson(budget))
	}
	fmt.Printf("| **median** | | | **%.3f** | | | | | | |\n\n", median(ratios))

	// The same pair against a server answering after 20 ms: the import
	// then waits on the network, not on the machine's two cores.
	slow := startSandbox("--discard", "--latency", "20ms")
	m := n / 4
	slowIn := csvFile(m)
	fmt.Printf("The same, %d new people, against a second `sandbox --discard` answering after 20 ms (`--latency 20ms`; a round trip to an API on another network is longer):\n\n| pair | off rows/s | on rows/s | on/off | off CPU | on CPU |\n| --- | --- | --- | --- | --- | --- |\n", m)
	ratios = ratios[:0]
	for i := range 2 {
		off, on, offCPU, onCPU := ledgerPair(slow, slowIn)
		fr, nr := float64(m)/off.wall.Seconds(), float64(m)/on.wall.Seconds()
		ratios = append(ratios, nr/fr)
		fmt.Printf("| %d | %.0f | %.0f | %.3f | %.1f µs | %.1f µs |\n", i+1, fr, nr, nr/fr,
			float64(offCPU.Microseconds())/float64(m), float64(onCPU.Microseconds())/float64(m))
	}
	slow.stop()
	fmt.Println()

	// The target the importer records: its run line names it.
	probe := filepath.Join(dir, "probe.results.csv")
	runChild(*bin, "import", csvFile(10), "--base-url", srv.url, "--campaign", "Spring Promo", "--progress", "none", "--results", probe, "--ledger", "off")
	ix, err := results.Load(probe)
	if err != nil {
		fail(err)
	}
	big := filepath.Join(dir, "big.db")
	fill := runChild("go", "run", "./internal/ledgerfill", "-ledger", big, "-n", strconv.Itoa(1000000/scale), "-target", ix.Target.String())
	st, _ := os.Stat(big)
	fmt.Printf("Filling the big ledger: %v (`go run ./internal/ledgerfill`, build included), %.0f MB.\n\n| run | ledger | wall | rows/s | peak RSS |\n| --- | --- | --- | --- | --- |\n", fill.wall.Round(time.Millisecond), float64(st.Size())/1e6)
	for i := range 2 {
		led := filepath.Join(dir, "ledger.db")
		removeLedger(led)
		copyFile(big, led)
		u := importRun(in, srv.url, "--rate", "0", "--ledger", led)
		fmt.Printf("| %d | %d people | %v | %.0f | %.1f MiB |\n", i+1, 1000000/scale, u.wall.Round(time.Millisecond), float64(n)/u.wall.Seconds(), float64(u.maxRSS)/(1<<20))
		removeLedger(led)
		e := importRun(in, srv.url, "--rate", "0", "--ledger", led)
		fmt.Printf("| %d | empty | %v | %.0f | %.1f MiB |\n", i+1, e.wall.Round(time.Millisecond), float64(n)/e.wall.Seconds(), float64(e.maxRSS)/(1<<20))
	}
	fmt.Println()
}

// ledgerPair imports in into srv with --ledger off, then with a new
// ledger, at --rate 0; the CPU of each is the importer's and the
// sandbox's together.
func ledgerPair(srv *server, in string) (off, on usage, offCPU, onCPU time.Duration) {
	led := filepath.Join(dir, "ledger.db")
	removeLedger(led)
	before := srv.cpu()
	off = importRun(in, srv.url, "--rate", "0", "--ledger", "off")
	between := srv.cpu()
	on = importRun(in, srv.url, "--rate", "0", "--ledger", led)
	return off, on, off.cpu + between - before, on.cpu + srv.cpu() - between
}

func removeLedger(path string) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
}

func copyFile(from, to string) {
	b, err := os.ReadFile(from)
	if err != nil {
		fail(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		fail(err)
	}
}

// reportMemory is issue 14's report figure: report --errors-csv and
// --success-csv of a 1,000,000-row journal (its rows a tenth invalid, the
// rest created, written in the order workers finish: shuffled in runs of
// 64), in constant memory.
func reportMemory(scale int) {
	m := 1000000 / scale
	in := csvFile(m)
	res := filepath.Join(dir, "report.results.csv")
	w, err := results.Create(res)
	if err != nil {
		fail(err)
	}
	ps := fake.Prospects(m, 100)
	order := make([]int, m)
	for i := range order {
		order[i] = i
	}
	for i := 0; i < m; i += 64 {
		part := order[i:min(i+64, m)]
		rand.Shuffle(len(part), func(a, b int) { part[a], part[b] = part[b], part[a] })
	}
	for _, i := range order {
		p := ps[i]
		rec := &results.Record{Row: i + 1, Line: i + 2, Status: results.Created, CustomerID: fmt.Sprintf("%020d", i),
			HTTPStatus: 200, Attempts: 1, Email: strings.ToLower(p.Email), RowHash: strconv.FormatUint(results.RowHash(p.Record()), 16), At: "2026-11-26T00:00:00.000Z"}
		if i%10 == 0 {
			rec.Status, rec.CustomerID, rec.HTTPStatus, rec.ErrorCode, rec.Message = results.Invalid, "", 0, "invalid_email", "Email: not an email address (fix the cell)"
		}
		w.Write(rec)
	}
	if err := w.Close(); err != nil {
		fail(err)
	}
	fmt.Printf("## 11. Report exports (issue 14)\n\n`report --input --errors-csv --success-csv` of a %d-row journal (a tenth invalid, the rest created).\n\n| export | wall | peak RSS | rows written |\n| --- | --- | --- | --- |\n", m)
	for _, args := range [][]string{{"--errors-csv", filepath.Join(dir, "e.csv")}, {"--success-csv", filepath.Join(dir, "s.csv")}, {"--errors-csv", filepath.Join(dir, "e.csv"), "--success-csv", filepath.Join(dir, "s.csv")}} {
		u := runChild(*bin, append([]string{"report", res, "--input", in}, args...)...)
		lines := 0
		for _, f := range []string{"e.csv", "s.csv"} {
			if slices.Contains(args, filepath.Join(dir, f)) {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				lines += bytes.Count(b, []byte("\n")) - 1
				os.Remove(filepath.Join(dir, f))
			}
		}
		fmt.Printf("| %s | %v | %.1f MiB | %d |\n", strings.Join([]string{args[0], argAt(args, 2)}, " "), u.wall.Round(time.Millisecond), float64(u.maxRSS)/(1<<20), lines)
	}
	fmt.Println()
}

func argAt(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}
