package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/revcent-import/revcent-import/importer"
	"github.com/revcent-import/revcent-import/ledger"
	"github.com/revcent-import/revcent-import/mapping"
	"github.com/revcent-import/revcent-import/ratelimit"
	"github.com/revcent-import/revcent-import/results"
	"github.com/revcent-import/revcent-import/revcent"
	"github.com/revcent-import/revcent-import/revcent/sandbox"
	"github.com/revcent-import/revcent-import/source"
)

// Exit codes, as DESIGN.md fixes them.
const (
	exitOK          = 0
	exitRowsFailed  = 1
	exitUsage       = 2
	exitAborted     = 3
	exitInterrupted = 4
)

type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// badValue is pflag's message for a value that does not parse; its last
// part is Go's own ("strconv.ParseFloat: parsing ...").
var badValue = regexp.MustCompile(`^invalid argument "(.*)" for "(.*)" flag: (.*)$`)

// flagProblem says a flag error in words, without Go's parser names.
func flagProblem(err error) string {
	m := badValue.FindStringSubmatch(err.Error())
	if m == nil {
		return err.Error()
	}
	flag, _, _ := strings.Cut(m[2], ", ")
	if i := strings.LastIndex(m[2], "--"); i >= 0 {
		flag = m[2][i:]
	}
	want := "a valid value"
	switch inner := m[3]; {
	case strings.Contains(inner, "ParseFloat"):
		want = "a number, such as 10 or 2.5"
	case strings.Contains(inner, "ParseInt"), strings.Contains(inner, "ParseUint"), strings.Contains(inner, "Atoi"):
		want = "a whole number"
	case strings.Contains(inner, "ParseBool"):
		want = "true or false"
	case strings.Contains(inner, "duration"):
		want = "a duration such as 30s, 1m or 1m30s"
	}
	return fmt.Sprintf("%s %q: want %s", flag, m[1], want)
}

// oneArg and noArgs check a command's arguments, saying what is wanted.
func oneArg(cmd *cobra.Command, args []string) error {
	what := "INPUT (a file, or - for stdin)"
	if cmd.Name() == "report" {
		what = "RESULTS (a results file)"
	}
	switch {
	case len(args) == 0:
		return usageError{fmt.Errorf("%s needs %s (see %s --help)", cmd.Name(), what, cmd.CommandPath())}
	case len(args) > 1:
		return usageError{fmt.Errorf("%s takes one %s, and was given %d: %s (quote a name with spaces; flags start with --)", cmd.Name(), what, len(args), shellJoin(args))}
	}
	return nil
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%s takes no arguments, and was given %s (flags start with --; see %s --help)", cmd.Name(), shellJoin(args), cmd.CommandPath())}
	}
	return nil
}

// shownError wraps an error the summary has already shown: run does not
// print it again, and exits with its code.
type shownError struct{ error }

func (e shownError) Unwrap() error { return e.error }

// usageError marks errors that exit 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string, io stdio, getenv func(string) string) int {
	code := exitOK
	root := &cobra.Command{
		Use:   "revcent-import",
		Short: "Load prospect and customer lists into RevCent, rate-limited and resumable",
		Long: `revcent-import loads prospect and customer lists (CSV, TSV or JSONL) into
RevCent through its CreateCustomer API. Every row ends up created exactly
once, or explained in the results file; a stopped run continues with --resume.`,
		Version:       versionLine(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetIn(io.in)
	root.SetOut(io.out)
	root.SetErr(io.err)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%s (see %s --help)", flagProblem(err), c.CommandPath())}
	})
	root.AddCommand(importCommand(ctx, io, getenv, &code, args), validateCommand(ctx, io, &code), mappingCommand(io),
		reportCommand(io, getenv), sandboxCommand(ctx, io, getenv), probeCommand(ctx, io, getenv, &code), versionCommand(io), ledgerCommand(io, getenv))
	root.SetVersionTemplate("{{.Version}}\n")

	err := root.ExecuteContext(ctx)
	if err == nil {
		return code
	}
	var shown shownError
	if !errors.As(err, &shown) {
		fmt.Fprintf(io.err, "revcent-import: %v\n", err)
	}
	var ue usageError
	var ce *importer.ConfigError
	var ae *importer.AbortError
	switch {
	case errors.As(err, &ue), errors.As(err, &ce):
		return exitUsage
	case errors.As(err, &ae):
		return exitAborted
	case errors.Is(err, importer.ErrInterrupted):
		return exitInterrupted
	}
	// Anything else comes before a run starts: cobra's argument and
	// command errors, a sandbox that cannot listen. Nothing was sent.
	return exitUsage
}

func version() string {
	ver, _, _, _ := buildInfo()
	return ver
}

// inputFlags say what to read and how to map it: import and validate
// share them.
type inputFlags struct {
	campaign, mappingFile              string
	format, delimiter, encoding, sheet string
	unmappedAsMetadata, truncateMetada bool
	logFormat                          string
	maxFieldLength, maxRecordSize      int
}

func (f *inputFlags) register(fl *pflag.FlagSet, withMapping bool) {
	if withMapping {
		fl.StringVar(&f.campaign, "campaign", "", "RevCent campaign name or id for every row (overrides the mapping's)")
		fl.StringVar(&f.mappingFile, "mapping", "", "mapping file (YAML or JSON); without it, columns are mapped by their header names")
	}
	fl.StringVar(&f.format, "format", "", "csv, tsv, jsonl or xlsx (default: from the file name)")
	fl.StringVar(&f.sheet, "sheet", "", "the XLSX sheet to read (default: the first)")
	fl.StringVar(&f.delimiter, "delimiter", "", "CSV field delimiter (default: detected among , ; tab |)")
	fl.IntVar(&f.maxRecordSize, "max-record-size", source.DefaultMaxRecordBytes, "most bytes one row (a CSV record, a JSONL line) may hold; longer rows are refused and skipped")
	fl.StringVar(&f.encoding, "encoding", "", "utf-8, utf-16, windows-1252 or iso-8859-1 (default: UTF-8, and Windows-1252 for text that is not)")
	if withMapping {
		fl.BoolVar(&f.unmappedAsMetadata, "unmapped-as-metadata", false, "send every column the mapping does not use as a metadata entry named after it")
		fl.BoolVar(&f.truncateMetada, "truncate-metadata", false, "cut metadata values to RevCent's 255 characters instead of refusing the row")
		fl.IntVar(&f.maxFieldLength, "max-field-length", mapping.DefaultMaxFieldLength, "most characters a customer field may hold; longer values make the row invalid")
		fl.StringVar(&f.logFormat, "log-format", "text", "text or json")
	}
}

// input checks the flags and returns what to read and how to map it.
func (f *inputFlags) input(path string, stdin io.Reader) (importer.Input, error) {
	in := importer.Input{Path: path, Stdin: stdin, Campaign: f.campaign,
		UnmappedAsMetadata: f.unmappedAsMetadata, TruncateMetadata: f.truncateMetada, MaxFieldLength: f.maxFieldLength}
	var err error
	if in.Source, err = f.source(); err != nil {
		return in, err
	}
	if f.logFormat != "text" && f.logFormat != "json" && f.logFormat != "" {
		return in, fmt.Errorf("--log-format %q: want text or json", f.logFormat)
	}
	if f.mappingFile != "" {
		data, err := os.ReadFile(f.mappingFile)
		if err != nil {
			return in, err
		}
		s, err := mapping.Parse(filepath.Base(f.mappingFile), data)
		if err != nil {
			return in, err
		}
		in.Mapping = &s
	}
	return in, nil
}

// importFlags are the flags of import, parsed into one struct.
type importFlags struct {
	inputFlags
	results                                        string
	resume, retryFailed, useSandbox, dryRun, force bool
	breakAfter, maxErrors                          int
	rate                                           float64
	maxAttempts                                    int
	burst, concurrency                             string
	timeout                                        time.Duration
	baseURL, apiKeyFile                            string
	progress                                       string
	settle                                         time.Duration
	profile                                        string
	cpuProfile, memProfile                         string
	ledger, matchKey, existing                     string
	sharedLimit                                    string
	checkExisting                                  bool
}

// importCommand is the import command. cmdline is the command line run was
// given, repeated in the summary's rerun command.
func importCommand(ctx context.Context, io stdio, getenv func(string) string, code *int, cmdline []string) *cobra.Command {
	var f importFlags
	cmd := &cobra.Command{
		Use:   "import INPUT [flags]",
		Short: "Create a RevCent customer for every row of INPUT (a path, or - for stdin)",
		Example: `  REVCENT_API_KEY=... revcent-import import prospects.csv --campaign "Spring Promo"
  revcent-import import prospects.csv --campaign "Spring Promo" --resume          # continue a stopped run
  revcent-import import prospects.csv --campaign "Spring Promo" --resume --retry-failed
  gunzip -c list.csv.gz | revcent-import import - --results list.results.csv --campaign X
  revcent-import import sample_data/prospects.csv --sandbox --campaign "Spring Promo"`,
		Args: oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImport(ctx, args[0], f, io, getenv, code, cmdline)
		},
	}
	fl := cmd.Flags()
	fl.SortFlags = false
	f.register(fl, true)
	fl.StringVar(&f.results, "results", "", "results file (default INPUT.results.csv beside the input; required when INPUT is -)")
	fl.BoolVar(&f.resume, "resume", false, "continue the run recorded in the results file: skip done rows, reconcile rows in doubt")
	fl.BoolVar(&f.retryFailed, "retry-failed", false, "with --resume: send rows whose last status is failed again")
	fl.BoolVar(&f.force, "force", false, "with --resume: go on when rows differ from those the results file recorded; a changed row is matched by its email, not its number (created: skipped with its id; unknown: sent)")
	fl.Float64Var(&f.rate, "rate", 10, "requests per second (0 = unlimited)")
	fl.StringVar(&f.burst, "burst", "auto", "requests allowed at once above the rate: a number, or auto (a tenth of a second's at --rate until RevCent first answers 429, then 1)")
	fl.StringVar(&f.concurrency, "concurrency", "auto", "requests in flight: a number, or auto (enough for the rate at the observed latency, 4-512; 32 without a rate)")
	fl.IntVar(&f.maxAttempts, "max-attempts", 5, "requests per row before it is failed")
	fl.IntVar(&f.breakAfter, "circuit-breaker", 20, "stop when this many consecutive rows fail with the same error (0 = never)")
	fl.IntVar(&f.maxErrors, "max-errors", 0, "stop after this many failed rows (0 = never)")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "per request")
	fl.DurationVar(&f.settle, "settle", 0, "how long a row whose answer was lost is watched (searched) before RevCent's customer list is checked and it may be sent again (default "+importer.DefaultSettle.String()+", or the --profile's)")
	fl.StringVar(&f.profile, "profile", "", "settings file written by probe --save (search lag, repeated-email behaviour)")
	fl.StringVar(&f.baseURL, "base-url", "", "API root (env REVCENT_BASE_URL; default "+revcent.DefaultBaseURL+")")
	fl.StringVar(&f.apiKeyFile, "api-key-file", "", "file holding the API key (else env REVCENT_API_KEY)")
	fl.StringVar(&f.progress, "progress", "auto", "auto, bar, log or none")
	fl.BoolVar(&f.useSandbox, "sandbox", false, "import into an in-process sandbox instead of RevCent (no key needed)")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile (pprof) of the run to this file")
	fl.MarkHidden("cpuprofile")
	fl.StringVar(&f.memProfile, "memprofile", "", "write an allocation profile (pprof) of the run to this file")
	fl.MarkHidden("memprofile")
	fl.BoolVar(&f.dryRun, "dry-run", false, "send nothing: check every row as validate does, and write the requests that would be sent (cards masked) to INPUT.dry-run.jsonl")
	fl.StringVar(&f.sharedLimit, "shared-limit", "", "share one rate limit with every importer using the same Redis name: redis://HOST:PORT/NAME; --rate is then the rate of them all (env REVCENT_SHARED_LIMIT)")
	fl.StringVar(&f.ledger, "ledger", "", "the ledger remembering who was created across runs: a file, a postgres:// URL (shared by several machines), or off (env REVCENT_LEDGER; default $XDG_STATE_HOME/revcent-import/ledger.db)")
	fl.StringVar(&f.matchKey, "match-key", "email", "a person's identity in the ledger: email, or internal_id where the source has stable ids")
	fl.BoolVar(&f.checkExisting, "check-existing", false, "search RevCent by email before creating each row the ledger does not know (one more request a row): finds customers created outside this tool")
	fl.StringVar(&f.existing, "existing", "skip", "a row whose person the ledger knows: skip (recorded existing, not sent) or create (sent anyway)")
	group(fl, "input", "format", "sheet", "delimiter", "encoding", "max-record-size")
	group(fl, "mapping", "campaign", "mapping", "unmapped-as-metadata", "truncate-metadata", "max-field-length")
	group(fl, "sending", "sandbox", "base-url", "api-key-file", "rate", "burst", "shared-limit", "concurrency", "max-attempts", "timeout", "circuit-breaker", "max-errors", "settle", "profile", "dry-run")
	group(fl, "rerun", "results", "resume", "retry-failed", "force", "ledger", "match-key", "existing", "check-existing")
	group(fl, "output", "progress", "log-format")
	cmd.SetUsageFunc(groupedUsage)
	completeValues(cmd, inputValues)
	return cmd
}

// source checks the input flags and returns the reader's options.
func (f *inputFlags) source() (source.Options, error) {
	o := source.Options{Format: source.Format(strings.ToLower(f.format)), Encoding: f.encoding, MaxRecordBytes: f.maxRecordSize, Sheet: f.sheet}
	switch o.Format {
	case "", source.CSV, source.TSV, source.JSONL, source.XLSX:
	default:
		return o, fmt.Errorf("--format %q: want csv, tsv, jsonl or xlsx", f.format)
	}
	switch d := f.delimiter; {
	case d == "":
	case d == "tab" || d == `\t` || d == "\t":
		o.Delimiter = '\t'
	case len([]rune(d)) == 1 && d != `"` && d != "\n" && d != "\r":
		o.Delimiter = []rune(d)[0]
	default:
		return o, fmt.Errorf("--delimiter %q: want one character, or tab", d)
	}
	return o, nil
}

func runImport(ctx context.Context, input string, f importFlags, io stdio, getenv func(string) string, code *int, cmdline []string) error {
	in, err := f.input(input, io.in)
	if err != nil {
		return usageError{err}
	}
	if f.dryRun {
		return runDryRun(ctx, in, f, io, code)
	}
	if f.results == "" {
		if input == "-" {
			return usageError{errors.New("--results is required when INPUT is - (stdin)")}
		}
		if st, err := os.Stat(input); err == nil && !st.Mode().IsRegular() {
			return usageError{fmt.Errorf("--results is required when INPUT is not a regular file (%s is a pipe or a device)", input)}
		}
		f.results = input + ".results.csv"
	}
	if f.retryFailed && !f.resume {
		return usageError{errors.New("--retry-failed goes with --resume (it resends the failed rows of an earlier run)")}
	}
	if f.rate < 0 || math.IsNaN(f.rate) || math.IsInf(f.rate, 0) {
		return usageError{fmt.Errorf("--rate %v: want requests per second, 0 for unlimited", f.rate)}
	}
	if f.maxAttempts < 1 || f.timeout <= 0 || f.breakAfter < 0 || f.maxErrors < 0 {
		return usageError{errors.New("--max-attempts must be at least 1, --timeout positive, --circuit-breaker and --max-errors 0 or more")}
	}
	burst, err := burstFlag(f.burst)
	if err != nil {
		return usageError{err}
	}
	if f.force && !f.resume {
		return usageError{errors.New("--force goes with --resume")}
	}
	workers, err := concurrency(f.concurrency)
	if err != nil {
		return usageError{err}
	}
	if f.progress != "auto" && f.progress != "bar" && f.progress != "log" && f.progress != "none" {
		return usageError{fmt.Errorf("--progress %q: want auto, bar, log or none", f.progress)}
	}
	if f.progress == "bar" && f.logFormat == "json" {
		return usageError{errors.New("--progress bar draws on stderr, which --log-format json keeps for JSON lines: use --progress log or none")}
	}
	bar := f.progress == "bar" || (f.progress == "auto" && isTerminal(io.err) && f.logFormat != "json")
	level := slog.LevelInfo
	if bar {
		level = slog.LevelWarn // the bar shows progress; keep the screen for it
	}
	log := newLogger(io.err, f.logFormat, level)

	baseURL, key := f.baseURL, ""
	if f.useSandbox {
		campaigns := sandbox.DefaultCampaigns
		if f.campaign != "" {
			campaigns = append(campaigns, f.campaign)
		}
		sb, err := sandbox.Start("127.0.0.1:0", sandbox.Options{Campaigns: campaigns})
		if err != nil {
			return err
		}
		defer sb.Close()
		baseURL, key = sb.URL, sandbox.DefaultAPIKey
		if f.logFormat == "json" {
			log.Warn("importing into the in-process sandbox at " + sb.URL + " (nothing reaches RevCent)")
		} else {
			fmt.Fprintf(io.err, "importing into the in-process sandbox at %s (nothing reaches RevCent)\n", sb.URL)
		}
	} else {
		if baseURL == "" {
			baseURL = getenv("REVCENT_BASE_URL")
		}
		if key, err = apiKey(f.apiKeyFile, getenv); err != nil {
			return usageError{err}
		}
	}
	conns := workers
	if workers == 0 {
		conns = importer.AutoMaxWorkers
	}
	limiter := ratelimit.New(f.rate, burst)
	var sharing sharedLimit
	if u := cmp.Or(f.sharedLimit, getenv("REVCENT_SHARED_LIMIT")); u != "" {
		stop, err := sharing.start(ctx, u, limiter, log)
		if err != nil {
			return usageError{err}
		}
		defer stop()
	}
	client, err := revcent.NewClient(revcent.Config{BaseURL: baseURL, APIKey: key, Timeout: f.timeout, MaxConns: conns, UserAgent: "revcent-import/" + version(),
		OnQuota: limiter.Quota}) // a server's rate-limit headers set the rate
	if err != nil {
		return usageError{err}
	}
	defer client.Close()

	var prof profile
	if f.profile != "" {
		if prof, err = readProfile(f.profile); err != nil {
			return usageError{err}
		}
	}
	settle := f.settle
	if settle == 0 {
		settle = prof.Settle.Duration
	}
	if settle < 0 {
		return usageError{fmt.Errorf("--settle %v: want a positive duration such as 30s", f.settle)}
	}
	target := results.Target{URL: client.BaseURL(), Key: results.KeyFingerprint(key)}
	if f.useSandbox {
		target = results.Target{URL: results.InProcessSandbox}
	}
	if f.matchKey != "email" && f.matchKey != "internal_id" {
		return usageError{fmt.Errorf("--match-key %q: want email or internal_id", f.matchKey)}
	}
	if f.existing != "skip" && f.existing != "create" {
		return usageError{fmt.Errorf("--existing %q: want skip or create", f.existing)}
	}
	mapping.Warm() // beside the ledger's opening
	var store ledger.Store
	switch lp := ledgerPath(f.ledger, getenv); {
	case lp == "" && !f.useSandbox:
		// No HOME (a service's bare environment): the ledger, on by
		// default, is not turned off in silence; nights would repeat.
		return usageError{errors.New("the ledger has no place: neither XDG_STATE_HOME nor HOME is set. Pass --ledger PATH (or set REVCENT_LEDGER) to keep it there, or --ledger off to import without it (nothing then remembers who earlier runs created)")}
	case f.useSandbox && f.ledger == "":
		lp = ":memory:" // the in-process sandbox is forgotten at exit; so is its ledger
		fallthrough
	case lp != "" && lp != "off":
		stop := importer.WatchLedger(log, "open it")
		store, err = openLedger(lp)
		stop()
		if err != nil {
			return usageError{err}
		}
		defer store.Close()
	}
	cfg := importer.Config{
		Ledger: store, MatchKey: f.matchKey, CreateExisting: f.existing == "create", CheckExisting: f.checkExisting,
		Target: target, About: fmt.Sprintf("revcent-import %s; input %s; campaign %q", version(), input, f.campaign),
		Settle: settle, ExistsCode: prof.ExistsCode,
		Input: in, Results: f.results, Resume: f.resume, RetryFailed: f.retryFailed, Force: f.force,
		BreakAfter: f.breakAfter, MaxErrors: f.maxErrors,
		Client: client, Limiter: limiter, Concurrency: workers, AutoConcurrency: workers == 0,
		GCPercent:   gcPercent(getenv),
		MemoryLimit: memoryLimit(getenv, store != nil),
		MaxAttempts: f.maxAttempts,
		Log:         log,
	}
	switch {
	case bar:
		cfg.Progress = importer.NewBar(io.err)
	case f.progress == "auto" || f.progress == "log":
		cfg.Progress = importer.NewLines(log, 10*time.Second)
	}
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return usageError{err}
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return usageError{err}
		}
		defer func() { pprof.StopCPUProfile(); pf.Close() }()
	}
	if f.memProfile != "" {
		defer func() {
			if mf, err := os.Create(f.memProfile); err == nil {
				pprof.Lookup("allocs").WriteTo(mf, 0)
				mf.Close()
			}
		}()
	}
	sum, err := importer.Run(ctx, cfg)
	sum.SharedLimit = sharing.report()
	var ce *importer.ConfigError
	if errors.As(err, &ce) {
		return err
	}
	if f.logFormat == "json" {
		logSummary(log, input, sum, err, cmdline)
	} else {
		printSummary(io.out, io.err, input, sum, err, cmdline)
	}
	if err != nil {
		return shownError{err}
	}
	if !sum.OK() {
		*code = exitRowsFailed
	}
	return nil
}

// concurrency reads --concurrency: a number, or 0 for auto.
func concurrency(s string) (int, error) { return numberOrAuto("concurrency", s, 1024, 0) }

// burstFlag reads --burst: a number, or ratelimit.AutoBurst for auto.
func burstFlag(s string) (int, error) {
	return numberOrAuto("burst", s, 1<<20, ratelimit.AutoBurst)
}

// numberOrAuto reads the value s of flag --name: a number from 1 to most,
// or auto (or nothing), returned as auto.
func numberOrAuto(name, s string, most, auto int) (int, error) {
	if s == "auto" || s == "" {
		return auto, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > most {
		return 0, fmt.Errorf("--%s %q: want a number from 1 to %d, or auto", name, s, most)
	}
	return n, nil
}

// apiKey reads the key from --api-key-file or REVCENT_API_KEY. The key is
// never a flag value: flags show in ps and shell history.
func apiKey(file string, getenv func(string) string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--api-key-file: %w", err)
		}
		k := strings.TrimSpace(string(b))
		if k == "" {
			return "", fmt.Errorf("--api-key-file %s is empty", file)
		}
		return k, checkKey(k, "the key in --api-key-file "+file)
	}
	if k := strings.TrimSpace(getenv("REVCENT_API_KEY")); k != "" {
		return k, checkKey(k, "REVCENT_API_KEY")
	}
	return "", errors.New("no API key: set REVCENT_API_KEY or pass --api-key-file FILE (or try --sandbox)")
}

// checkKey refuses a key with a space, a line break or another control
// character inside (two keys pasted together, a copied line with its
// comment): RevCent would refuse every request with it. The key itself
// is never shown.
func checkKey(k, where string) error {
	for i, r := range k {
		if r <= ' ' || r == 0x7f || unicode.IsSpace(r) || unicode.IsControl(r) {
			what := "a space"
			if r == '\n' || r == '\r' {
				what = "a line break"
			} else if r != ' ' {
				what = "a control character"
			}
			return fmt.Errorf("%s has %s inside it (at character %d of %d): an API key is one word; check what was pasted", where, what, len([]rune(k[:i]))+1, len([]rune(k)))
		}
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

const slogInfo = slog.LevelInfo

func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		// Durations as "1m2.5s", never JSON's nanoseconds.
		if a.Value.Kind() == slog.KindDuration {
			a.Value = slog.StringValue(a.Value.Duration().Round(time.Millisecond).String())
		}
		return a
	}}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// shellJoin quotes args for a POSIX shell, so that a printed command can
// be pasted back.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		safe := a != ""
		for _, c := range a {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_-./:=@%+,", c)) {
				safe = false
				break
			}
		}
		if safe {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}

func rateText(r float64) string {
	if r == 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%.1f/s", r)
}

// nextSteps are the commands that would finish the job the results file
// records, each with what it does: none when it is done.
func nextSteps(input string, s importer.Summary, err error, cmdline []string) [][2]string {
	rerun := append([]string{"revcent-import"}, cmdline...)
	has := func(flag string) bool { return slices.Contains(cmdline, flag) }
	file := s.File
	if file == nil {
		file = map[results.Status]int{results.Failed: int(s.Failed), results.Invalid: int(s.Invalid), results.Pending: int(s.InDoubt)}
	}
	var steps [][2]string
	if err != nil || s.Unsent > 0 || file[results.Pending] > 0 || file[results.Failed] > 0 {
		cmd := rerun
		if !has("--resume") {
			cmd = append(cmd, "--resume")
		}
		parts := []string{"skip rows done"}
		if file[results.Pending] > 0 {
			parts = append(parts, "reconcile the rows in doubt")
		}
		if s.Unsent > 0 || err != nil {
			parts = append(parts, "send the rest")
		}
		if file[results.Failed] > 0 {
			if !has("--retry-failed") {
				cmd = append(cmd, "--retry-failed")
			}
			parts = append(parts, "send the failed rows again")
		}
		why := "continue (" + strings.Join(parts, ", ") + ")"
		if errors.Is(err, importer.ErrInterrupted) {
			why = "continue the interrupted run"
		}
		steps = append(steps, [2]string{why, shellJoin(cmd)})
	}
	if file[results.Invalid] > 0 {
		steps = append(steps, [2]string{"export the invalid rows with their columns, fix them, import that file",
			shellJoin([]string{"revcent-import", "report", s.Results, "--input", input, "--errors-csv", strings.TrimSuffix(s.Results, ".results.csv") + ".errors.csv"})})
	}
	return steps
}

// printSummary writes the summary to w, and why the run stopped, once, to
// errw.
func printSummary(w, errw io.Writer, input string, s importer.Summary, err error, cmdline []string) {
	rate := float64(s.Created+s.Existing+s.Duplicate+s.Invalid+s.Failed) / max(s.Elapsed.Seconds(), 1e-9)
	fmt.Fprintf(w, "\n%s -> %s, target: %s\n", input, s.Results, s.Target.Describe())
	if s.NoRows {
		fmt.Fprintf(w, "\nno rows: %s has no row with a value (is it the right export?)\n", input)
		return
	}
	whole := s.File != nil && len(s.File) > 0
	if whole {
		fmt.Fprintf(w, "  %-11s %8s  %10s\n", "", "this run", "whole file")
	}
	row := func(name string, n int64, st results.Status, note string) {
		if whole {
			fmt.Fprintf(w, "  %-11s %8d  %10d%s\n", name, n, s.File[st], note)
		} else {
			fmt.Fprintf(w, "  %-11s %8d%s\n", name, n, note)
		}
	}
	row("created", s.Created, results.Created, "")
	if s.Reconciled > 0 {
		fmt.Fprintf(w, "  %-11s %8d  (of created: found in RevCent after an unknown outcome, not sent again)\n", "reconciled", s.Reconciled)
	}
	if s.Existing > 0 || s.File[results.Existing] > 0 {
		row("existing", s.Existing, results.Existing, "  (already in RevCent: its customer id is recorded)")
	}
	if s.Changed > 0 {
		fmt.Fprintf(w, "  %-11s %8d  (of existing: changed since the ledger's last send, not updated; error_code changed)\n", "changed", s.Changed)
	}
	row("duplicate", s.Duplicate, results.Duplicate, "")
	row("invalid", s.Invalid, results.Invalid, "")
	row("failed", s.Failed, results.Failed, "")
	if s.InDoubt > 0 || s.File[results.Pending] > 0 {
		row("in doubt", s.InDoubt, results.Pending, "  (outcome unknown: --resume reconciles them)")
	}
	if s.Skipped > 0 {
		fmt.Fprintf(w, "  %-11s %8d  (done in an earlier run)\n", "skipped", s.Skipped)
	}
	if s.Blank > 0 {
		fmt.Fprintf(w, "  %-11s %8d  (every cell empty: skipped, not recorded)\n", "blank", s.Blank)
	}
	if s.Unsent > 0 {
		fmt.Fprintf(w, "  %-11s %8d  (read but not sent before the run stopped)\n", "not sent", s.Unsent)
	}
	if s.Retried > 0 {
		fmt.Fprintf(w, "  %-11s %8d  (failed rows of earlier runs sent again)\n", "retried", s.Retried)
	}
	if s.Throttled > 0 || s.Retries > 0 {
		fmt.Fprintf(w, "  %-11s %8d  (429 answers: %d; rate at the end: %s)\n", "retries", s.Retries, s.Throttled, rateText(s.FinalRate))
	}
	if s.SharedLimit != "" {
		fmt.Fprintf(w, "  %-11s %s\n", "shared", s.SharedLimit)
	}
	fmt.Fprintf(w, "  %-11s %8s  (%.0f rows/s, %d workers at the end)\n", "elapsed", s.Elapsed.Round(10*time.Millisecond), rate, s.Workers)
	if err != nil {
		fmt.Fprintf(errw, "revcent-import: stopped: %v\n", err)
	}
	steps := nextSteps(input, s, err, cmdline)
	if len(steps) == 0 {
		if err == nil && s.OK() {
			fmt.Fprintf(w, "\ndone: every row of %s is created, existing or a duplicate\n", s.Results)
		}
		return
	}
	fmt.Fprintln(w)
	if s.File[results.Invalid] > 0 || s.Invalid > 0 {
		fmt.Fprintf(w, "invalid rows were not sent; every problem row is explained in %s\n", s.Results)
	}
	for _, st := range steps {
		fmt.Fprintf(w, "to %s:\n  %s\n", st[0], st[1])
	}
}

// logSummary is the summary as one log line, for --log-format json: the
// counts of this run and of the whole file, and the commands that would
// finish the job.
func logSummary(log *slog.Logger, input string, s importer.Summary, err error, cmdline []string) {
	file := map[string]int{}
	for st, n := range s.File {
		file[string(st)] = n
	}
	attrs := []any{"input", input, "results", s.Results, "target", s.Target.Describe(),
		slog.Group("this_run", "created", s.Created, "existing", s.Existing, "changed", s.Changed, "duplicate", s.Duplicate, "invalid", s.Invalid,
			"failed", s.Failed, "in_doubt", s.InDoubt, "skipped", s.Skipped, "blank", s.Blank, "not_sent", s.Unsent,
			"reconciled", s.Reconciled, "retried", s.Retried, "requests", s.Requests, "retries", s.Retries, "throttled", s.Throttled),
		"whole_file", file, "elapsed", s.Elapsed.Round(time.Millisecond).String(), "workers_at_end", s.Workers,
		"done", err == nil && s.OK(), "no_rows", s.NoRows}
	if s.SharedLimit != "" {
		attrs = append(attrs, "shared_limit", s.SharedLimit)
	}
	if err != nil {
		attrs = append(attrs, "stopped", err.Error())
	}
	var next []string
	for _, st := range nextSteps(input, s, err, cmdline) {
		next = append(next, st[1])
	}
	if len(next) > 0 {
		attrs = append(attrs, "to_continue", next)
	}
	log.Info("summary", attrs...)
}

func sandboxCommand(ctx context.Context, io stdio, getenv func(string) string) *cobra.Command {
	var addr, keyFile, dup, getShape string
	var lag time.Duration
	var anyWord, sparse bool
	var campaigns []string
	var faults sandbox.Faults
	var discard, arrivals bool
	cmd := &cobra.Command{
		Use:   "sandbox [flags]",
		Short: "Run a RevCent-compatible server on loopback for trials and tests",
		Example: `  revcent-import sandbox --addr 127.0.0.1:8080
  REVCENT_API_KEY=sandbox-key revcent-import import prospects.csv --base-url http://127.0.0.1:8080/v2 --campaign "Spring Promo"`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, p := range []float64{faults.Unavailable, faults.LostAnswers, faults.Gateway504, faults.ErrorAfterCreate} {
				if p < 0 || p > 1 {
					return usageError{errors.New("--unavailable, --lost-answers, --gateway-504 and --error-after-create are shares from 0 to 1")}
				}
			}
			opts := sandbox.Options{Campaigns: campaigns, Faults: faults, Discard: discard, RecordArrivals: arrivals, SearchLag: lag, SearchAnyWord: anyWord, Sparse: sparse}
			var err error
			if opts.Duplicate, err = sandbox.ParseDuplicateMode(dup); err != nil {
				return usageError{fmt.Errorf("--duplicates %w", err)}
			}
			switch getShape {
			case "flat":
			case "nested":
				opts.NestedGet = true
			default:
				return usageError{fmt.Errorf("--get %q: want flat or nested", getShape)}
			}
			if keyFile != "" || getenv("REVCENT_API_KEY") != "" {
				k, err := apiKey(keyFile, getenv)
				if err != nil {
					return usageError{err}
				}
				opts.APIKey = k
			}
			sb, err := sandbox.Start(addr, opts)
			if err != nil {
				return usageError{err}
			}
			defer sb.Close()
			keyNote := "the key from REVCENT_API_KEY or --api-key-file"
			if opts.APIKey == "" {
				keyNote = "x-api-key: " + sandbox.DefaultAPIKey
			}
			fmt.Fprintf(io.out, "sandbox listening on %s (%s; campaigns: %s)\n", sb.URL, keyNote, strings.Join(orDefault(campaigns), ", "))
			<-ctx.Done()
			fmt.Fprintf(io.out, "sandbox stopped: %d requests, %d customers created\n", sb.Requests(), sb.Created())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&addr, "addr", "127.0.0.1:8080", "listen address (port 0 picks a free one)")
	fl.StringVar(&keyFile, "api-key-file", "", "file holding the key to accept (else env REVCENT_API_KEY, else "+sandbox.DefaultAPIKey+")")
	fl.StringSliceVar(&campaigns, "campaign", nil, "campaign names or ids to know (repeatable; default "+strings.Join(sandbox.DefaultCampaigns, ", ")+")")
	fl.StringVar(&dup, "duplicates", "create", "an email seen before: create (another customer), existing (answer code 1 with the existing customer's id) or refuse (code 0, error_code "+sandbox.ExistsCode+")")
	fl.StringVar(&getShape, "get", "flat", "GetCustomer's answer: flat (as documented: the customer's fields beside code) or nested (under \"customer\")")
	fl.DurationVar(&lag, "search-lag", 0, "a new customer is found by the search only after this long")
	fl.BoolVar(&sparse, "sparse", false, "search, list and get answers show only the fields RevCent documents (no email, no internal id)")
	fl.BoolVar(&anyWord, "search-any-word", false, "the search finds customers with any word of the term (an address's domain finds everyone there), not only those containing it")
	fl.DurationVar(&faults.LateCreate, "late-create", 0, "every create finishes this long after its request, whether or not the client still waits")
	fl.Float64Var(&faults.Gateway504, "gateway-504", 0, "share (0-1) of create requests answered 504 at once while the customer is still created (after --late-create)")
	fl.Float64Var(&faults.ErrorAfterCreate, "error-after-create", 0, "share (0-1) of create requests that create the customer, then answer code 0 with an error code")
	fl.DurationVar(&faults.Latency, "latency", 0, "added to every create answer")
	fl.DurationVar(&faults.Jitter, "jitter", 0, "plus a random share of this")
	fl.Float64Var(&faults.RateLimit, "rate-limit", 0, "create requests a second accepted; beyond, 429 (0 = no limit)")
	fl.IntVar(&faults.RateBurst, "rate-burst", 1, "burst allowed by --rate-limit")
	fl.IntVar(&faults.RetryAfter, "retry-after", 1, "Retry-After seconds sent with a 429 (0 = no header)")
	fl.BoolVar(&faults.RateLimitHeaders, "ratelimit-headers", false, "send RateLimit-Policy, -Limit, -Remaining and -Reset with every create answer while --rate-limit holds")
	fl.Float64Var(&faults.Unavailable, "unavailable", 0, "share (0-1) of create requests answered 503, nothing created")
	fl.Float64Var(&faults.LostAnswers, "lost-answers", 0, "share (0-1) of create requests that create the customer, then drop the connection")
	completeValues(cmd, map[string][]string{"get": {"flat", "nested"}, "duplicates": {"create", "existing", "refuse"}})
	fl.BoolVar(&faults.EchoCard, "echo-card", false, "refuse every create with a card, with a 400 whose message quotes the card number and code back")
	fl.Uint64Var(&faults.Seed, "seed", 0, "seed for the random faults (0 = random)")
	fl.BoolVar(&discard, "discard", false, "keep no customers, only count them (benchmarks)")
	fl.BoolVar(&arrivals, "record-arrivals", false, "record each create request's arrival time (benchmarks)")
	return cmd
}

func orDefault(c []string) []string {
	if len(c) == 0 {
		return sandbox.DefaultCampaigns
	}
	return c
}

// memoryLimit is the import's soft memory limit (see
// importer.Config.MemoryLimit), unless the user set GOMEMLIMIT: 40 MiB, or
// 36 MiB with a ledger, whose SQLite code and pages take memory outside
// Go's heap (100,000 rows into a new ledger then peak at 62 MiB, not 66,
// for 4% more time).
func memoryLimit(getenv func(string) string, ledger bool) int64 {
	switch {
	case getenv("GOMEMLIMIT") != "":
		return 0
	case ledger:
		return 36 << 20
	}
	return 40 << 20
}

// gcPercent is the import's GOGC: 200 (see importer.Config.GCPercent),
// unless the user chose one in the environment.
func gcPercent(getenv func(string) string) int {
	if getenv("GOGC") != "" {
		return 0
	}
	return 200
}
