package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/revcent-import/revcent-import/importer"
	"github.com/revcent-import/revcent-import/ledger"
	"github.com/revcent-import/revcent-import/mapping"
	"github.com/revcent-import/revcent-import/results"
)

// ledgerPath resolves --ledger: the flag, else REVCENT_LEDGER, else
// $XDG_STATE_HOME/revcent-import/ledger.db (~/.local/state when unset).
// "off" turns it off. "" means no place could be found.
func ledgerPath(flag string, getenv func(string) string) string {
	switch {
	case flag != "":
		return flag
	case getenv("REVCENT_LEDGER") != "":
		return getenv("REVCENT_LEDGER")
	case getenv("XDG_STATE_HOME") != "":
		return filepath.Join(getenv("XDG_STATE_HOME"), "revcent-import", "ledger.db")
	case getenv("HOME") != "":
		return filepath.Join(getenv("HOME"), ".local", "state", "revcent-import", "ledger.db")
	}
	return ""
}

// isPostgres says whether a --ledger value is a Postgres URL.
func isPostgres(path string) bool {
	return strings.HasPrefix(path, "postgres://") || strings.HasPrefix(path, "postgresql://")
}

func openLedger(path string) (ledger.Store, error) {
	if isPostgres(path) {
		// A ledger shared by importers on several machines.
		return ledger.OpenPostgres(context.Background(), path)
	}
	return ledger.OpenSQLite(path)
}

func ledgerCommand(io stdio, getenv func(string) string) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Look inside the ledger: who was created, on which target, by which run",
		Long: `The ledger remembers, across runs and results files, every person created
(or found existing) per target: its match key, customer id, campaign, a hash
of the request last sent, first and last run. import consults it before
sending. It is a plain SQLite file (default ~/.local/state/revcent-import/ledger.db).`,
	}
	cmd.PersistentFlags().StringVar(&path, "ledger", "", "the ledger file (env REVCENT_LEDGER; default $XDG_STATE_HOME/revcent-import/ledger.db)")
	open := func() (ledger.Store, error) {
		p := ledgerPath(path, getenv)
		if p == "" || p == "off" {
			return nil, usageError{errors.New("no ledger: pass --ledger FILE")}
		}
		s, err := openLedger(p)
		if err != nil {
			return nil, usageError{err}
		}
		return s, nil
	}
	var target string
	imp := &cobra.Command{
		Use:   "import RESULTS...",
		Short: "Fill the ledger from results files (idempotent): their created and existing rows",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := open()
			if err != nil {
				return err
			}
			defer s.Close()
			ctx := context.Background()
			for _, f := range args {
				ix, err := results.Load(f)
				if err != nil {
					return usageError{err}
				}
				t := ix.Target.String()
				if target != "" {
					t = target
				}
				if t == "" {
					return usageError{fmt.Errorf("%s does not record its target (it predates run lines): pass --target URL key=FINGERPRINT", f)}
				}
				abs, _ := filepath.Abs(f)
				run, err := s.StartRun(ctx, ledger.Run{Target: t, Input: "(ledger import)", Results: abs})
				if err != nil {
					return err
				}
				n, err := importer.SettleLedger(ctx, s, t, f, "", run)
				if err != nil {
					return err
				}
				s.EndRun(ctx, ledger.Run{ID: run, Existing: int64(n), Exit: 0})
				fmt.Fprintf(io.out, "%s: %d people recorded for %s\n", f, n, t)
			}
			return nil
		},
	}
	imp.Flags().StringVar(&target, "target", "", "the target to record them under, for results files that do not name theirs")
	stats := &cobra.Command{
		Use: "stats", Short: "People per target and campaign", Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := open()
			if err != nil {
				return err
			}
			defer s.Close()
			st, err := s.Stats(context.Background())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(io.out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TARGET\tCAMPAIGN\tPEOPLE\tLAST")
			for _, x := range st {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", x.Target, x.Campaign, x.People, x.LastAt.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use: "show EMAIL", Short: "What the ledger knows of one person, on every target", Args: oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := open()
			if err != nil {
				return err
			}
			defer s.Close()
			ps, err := s.Show(context.Background(), personKey(args[0]))
			if err != nil {
				return err
			}
			if len(ps) == 0 {
				fmt.Fprintf(io.out, "%s is not in the ledger\n", args[0])
				return nil
			}
			for _, p := range ps {
				fmt.Fprintf(io.out, "%s on %s: %s, customer %s, campaign %q, first run %d (%s), last run %d (%s)\n", p.Key, p.Target, p.Status, p.CustomerID, p.Campaign,
					p.FirstRun, p.FirstAt.UTC().Format(time.RFC3339), p.LastRun, p.LastAt.UTC().Format(time.RFC3339))
			}
			return nil
		},
	}
	runs := &cobra.Command{
		Use: "runs", Short: "The run history, one line per import", Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := open()
			if err != nil {
				return err
			}
			defer s.Close()
			rs, err := s.Runs(context.Background())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(io.out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTARTED\tENDED\tINPUT\tRESULTS\tCREATED\tEXISTING\tCHANGED\tINVALID\tFAILED\tIN DOUBT\tCLAIMED\tEXIT")
			var held []ledger.Run // killed, or maybe killed, holding claims
			for _, r := range rs {
				ended, exit := "(running)", "-"
				switch {
				case !r.Ended.IsZero():
					ended, exit = r.Ended.UTC().Format(time.RFC3339), strconv.Itoa(r.Exit)
				case r.Killed:
					ended = "(killed)"
				case r.Elsewhere:
					ended = "(running on " + r.Host + ", or killed)"
				}
				if r.Ended.IsZero() && r.Claims > 0 && (r.Killed || r.Elsewhere) {
					held = append(held, r)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", r.ID, r.Started.UTC().Format(time.RFC3339), ended, r.Input, r.Results,
					r.Created, r.Existing, r.Changed, r.Invalid, r.Failed, r.InDoubt, r.Claims, exit)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, r := range held {
				if r.Killed {
					fmt.Fprintf(io.out, "run %d (%s) was killed holding claims on %d people: run its import again with --resume (results file %s) to settle them; otherwise the next run to meet one of them asks RevCent for it before sending it.\n",
						r.ID, r.Input, r.Claims, r.Results)
					continue
				}
				fmt.Fprintf(io.out, "run %d (%s) on %s has not ended and claims %d people, for which other runs wait. If it was killed, run its import again there with --resume (results file %s) to settle them.\n",
					r.ID, r.Input, r.Host, r.Claims, r.Results)
			}
			return nil
		},
	}
	var runID int64
	var yes bool
	forget := &cobra.Command{
		Use: "forget [EMAIL]", Short: "Forget a person (every target), or what a run created (--run ID); asks first", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == (runID != 0) {
				return usageError{errors.New("ledger forget takes an EMAIL or --run ID")}
			}
			what := fmt.Sprintf("the people run %d created first", runID)
			if len(args) == 1 {
				what = args[0]
			}
			if !yes {
				fmt.Fprintf(io.out, "forget %s? The next import will send them again. [y/N] ", what)
				line, _ := bufio.NewReader(io.in).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
					fmt.Fprintln(io.out, "nothing forgotten")
					return nil
				}
			}
			s, err := open()
			if err != nil {
				return err
			}
			defer s.Close()
			var n int64
			if len(args) == 1 {
				n, err = s.Forget(context.Background(), personKey(args[0]))
			} else {
				n, err = s.ForgetRun(context.Background(), runID)
			}
			// Nothing to forget: say why, rather than "0 forgotten".
			switch {
			case errors.Is(err, ledger.ErrNoRun):
				fmt.Fprintf(io.out, "run %d is not in the ledger (`ledger runs` lists them): nothing forgotten\n", runID)
			case err != nil:
				return err
			case n > 0:
				fmt.Fprintf(io.out, "%d entries forgotten\n", n)
			case len(args) == 1:
				fmt.Fprintf(io.out, "%s is not in the ledger: nothing forgotten\n", args[0])
			default:
				fmt.Fprintf(io.out, "run %d created nobody the ledger still holds: nothing forgotten\n", runID)
			}
			return nil
		},
	}
	forget.Flags().Int64Var(&runID, "run", 0, "forget the people this run created first")
	forget.Flags().BoolVar(&yes, "yes", false, "do not ask")
	cmd.AddCommand(imp, stats, show, runs, forget)
	return cmd
}

// personKey is the ledger key of an email as a person types it.
func personKey(s string) string {
	if strings.Contains(s, ":") && !strings.Contains(s, "@") {
		return s // "internal_id:C-1"
	}
	if e, reason := mapping.NormalizeEmail(s); reason == "" {
		return "email:" + e
	}
	return "email:" + strings.ToLower(strings.TrimSpace(s))
}
