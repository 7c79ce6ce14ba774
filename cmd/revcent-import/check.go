package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/revcent-import/revcent-import/importer"
	"github.com/revcent-import/revcent-import/mapping"
	"github.com/revcent-import/revcent-import/source"
)

func validateCommand(ctx context.Context, io stdio, code *int) *cobra.Command {
	var f inputFlags
	cmd := &cobra.Command{
		Use:   "validate INPUT [flags]",
		Short: "Check every row as import would, send nothing; exit 1 if any row is invalid",
		Long: `validate reads the whole input, maps and checks every row exactly as import
would, and sends nothing. It prints each problem as FILE:LINE: column, value,
reason, then the invalid rows counted by reason. Exit 1 if any row is invalid.`,
		Example: `  revcent-import validate prospects.csv
  revcent-import validate prospects.csv --mapping mapping.yaml
  revcent-import validate export.csv --encoding windows-1252 --delimiter ';'`,
		Args: oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := f.input(args[0], io.in)
			if err != nil {
				return usageError{err}
			}
			in.CampaignOptional = true
			out := bufio.NewWriter(io.out)
			defer out.Flush()
			rep, err := importer.Validate(ctx, importer.ValidateConfig{Input: in, Problems: out,
				Log: newLogger(io.err, f.logFormat, slogInfo)})
			if err != nil {
				return err
			}
			printReport(out, rep)
			if rep.Invalid > 0 || rep.Rows == rep.Blank {
				*code = exitRowsFailed
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.SortFlags = false
	f.register(fl, true)
	completeValues(cmd, inputValues)
	return cmd
}

// runDryRun is import --dry-run: validate, plus the requests that would be
// sent written to a file.
func runDryRun(ctx context.Context, in importer.Input, f importFlags, io stdio, code *int) error {
	path := in.Path + ".dry-run.jsonl"
	if in.Path == "-" {
		if f.results == "" {
			return usageError{errors.New("--dry-run from stdin needs --results NAME: the requests go to NAME.dry-run.jsonl")}
		}
		path = f.results + ".dry-run.jsonl"
	}
	file, err := os.Create(path)
	if err != nil {
		return usageError{err}
	}
	w := bufio.NewWriterSize(file, 256<<10)
	out := bufio.NewWriter(io.out)
	defer out.Flush()
	rep, err := importer.Validate(ctx, importer.ValidateConfig{Input: in, Problems: out, Requests: w,
		Log: newLogger(io.err, f.logFormat, slogInfo)})
	if ferr := errors.Join(w.Flush(), file.Close()); err == nil && ferr != nil {
		err = &importer.AbortError{Err: fmt.Errorf("%s: %w", path, ferr)}
	}
	if err != nil {
		var ce *importer.ConfigError
		if errors.As(err, &ce) {
			os.Remove(path)
		}
		return err
	}
	printReport(out, rep)
	fmt.Fprintf(out, "\ndry run: nothing was sent; the %d requests that would be sent are in %s (card numbers masked)\n", rep.Valid, path)
	if rep.Invalid > 0 || rep.Rows == rep.Blank {
		*code = exitRowsFailed
	}
	return nil
}

func printReport(w io.Writer, r importer.Report) {
	fmt.Fprintf(w, "\n%s: %d rows read in %s: %d valid, %d invalid, %d duplicate\n",
		r.Input, r.Rows, r.Elapsed.Round(time.Millisecond), r.Valid, r.Invalid, r.Duplicate)
	if r.Blank > 0 {
		fmt.Fprintf(w, "%d blank rows (every cell empty) skipped\n", r.Blank)
	}
	if r.Rows == r.Blank {
		fmt.Fprintf(w, "no rows: %s has no row with a value (is it the right export?)\n", r.Input)
	}
	if len(r.Reasons) == 0 {
		return
	}
	fmt.Fprintln(w, "\ninvalid rows by reason:")
	for _, rs := range r.Reasons {
		fmt.Fprintf(w, "  %7d  %s  (first on line %d)\n", rs.Rows, rs.Reason, rs.FirstLine)
	}
}

func mappingCommand(io stdio) *cobra.Command {
	var f inputFlags
	cmd := &cobra.Command{
		Use:   "mapping INPUT [flags]",
		Short: "Print a starter mapping file (YAML) for INPUT, made by auto-mapping its header",
		Example: `  revcent-import mapping prospects.csv > mapping.yaml
  revcent-import import prospects.csv --mapping mapping.yaml --campaign "Spring Promo"`,
		Args: oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := f.source()
			if err != nil {
				return usageError{err}
			}
			opts.Warn = func(msg string) { fmt.Fprintf(io.err, "revcent-import: warning: %s\n", msg) }
			src, info, err := source.Open(args[0], io.in, opts)
			if err != nil {
				return usageError{err}
			}
			defer src.Close()
			spec, unmapped, notes := mapping.AutoNotes(src.Columns())
			_, err = io.out.Write(mapping.Starter(info.Name, spec, unmapped, notes))
			return err
		},
	}
	fl := cmd.Flags()
	fl.SortFlags = false
	f.register(fl, false)
	return cmd
}
