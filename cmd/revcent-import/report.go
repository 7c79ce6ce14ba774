package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/revcent-import/revcent-import/importer"
	"github.com/revcent-import/revcent-import/mapping"
	"github.com/revcent-import/revcent-import/results"
	"github.com/revcent-import/revcent-import/source"
)

func reportCommand(io stdio, getenv func(string) string) *cobra.Command {
	var input, errorsCSV, successCSV, changedCSV, ledgerFlag, format string
	var in inputFlags
	cmd := &cobra.Command{
		Use:   "report RESULTS [flags]",
		Short: "Summarise a results file; export the failed rows to fix, and the created ones",
		Long: `report reads a results file (also one still being written, or left by a
killed run): rows by status, the errors by code with an example, retries and
429s, rows still in doubt. With --input, it exports the invalid and failed
rows with their original columns plus import_row, import_line,
import_error and import_raw (fix the cells, then import that file as it
is), and the created and existing rows with their customer ids. A row that
could not be split into the header's columns (a stray quote, a field too
many or too few) keeps its original text in import_raw: fix it there, or in
the cells. Exports start with a UTF-8 BOM, so that Excel shows accents.

With --changed-csv, it lists the rows the ledger found changed (existing,
error_code changed: RevCent's create does not update a customer, so they
were not sent): one line per field whose value differs between the request
last sent for that person and the row's, old and new. It reads the ledger,
not the input; the ledger keeps no card field.`,
		Example: `  revcent-import report prospects.csv.results.csv
  revcent-import report prospects.csv.results.csv --input prospects.csv --errors-csv fix-me.csv
  revcent-import import fix-me.csv --campaign "Spring Promo"          # after fixing the cells
  revcent-import report prospects.csv.results.csv --input prospects.csv --success-csv created.csv
  revcent-import report nightly.csv.results.csv --changed-csv changed.csv
  revcent-import report prospects.csv.results.csv --format json`,
		Args: oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "json" {
				return usageError{fmt.Errorf("--format %q: want text or json", format)}
			}
			if (errorsCSV != "" || successCSV != "") && input == "" {
				return usageError{errors.New("--errors-csv and --success-csv need --input, the file that was imported")}
			}
			opts, err := in.source()
			if err != nil {
				return usageError{err}
			}
			var export *results.Exporter
			if input != "" {
				export = results.NewExporter(args[0], errorsCSV != "", successCSV != "")
				var spec *mapping.Spec
				if in.mappingFile != "" {
					data, err := os.ReadFile(in.mappingFile)
					if err != nil {
						return usageError{err}
					}
					s, err := mapping.Parse(filepath.Base(in.mappingFile), data)
					if err != nil {
						return usageError{err}
					}
					spec = &s
				}
				export.Cards = func(cols []string) ([]string, []string) {
					if spec != nil {
						return mapping.CardColumns(*spec)
					}
					auto, _ := mapping.Auto(cols)
					return mapping.CardColumns(auto)
				}
			}
			if getenv("GOMEMLIMIT") == "" {
				// An export reads a million rows back one by one: its
				// garbage need not grow the process (see import). What is
				// live is the journal's index, 24 bytes a row; the rest is
				// garbage, collected when it is a third as much again.
				defer importer.HoldMemoryLimit(40<<20, 1.33)()
			}
			// One read of the journal serves the report and the changed
			// rows (a few); the exports read rows back through its index.
			var changedRows []results.Record
			var collect func(results.Record) error
			if changedCSV != "" {
				collect = func(rec results.Record) error {
					if isChanged(rec) {
						changedRows = append(changedRows, rec)
					}
					return nil
				}
			}
			rep, err := results.Summarize(args[0], collect)
			if err != nil {
				return usageError{err}
			}
			defer rep.Index.Close()
			if export != nil {
				export.Index = rep.Index
			}
			out := bufio.NewWriter(io.out)
			defer out.Flush()
			changed := -1
			if changedCSV != "" {
				p := ledgerPath(ledgerFlag, getenv)
				if p == "" || p == "off" {
					return usageError{errors.New("--changed-csv reads the ledger: pass --ledger FILE")}
				}
				store, err := openLedger(p)
				if err != nil {
					return usageError{err}
				}
				defer store.Close()
				f, err := os.Create(changedCSV)
				if err != nil {
					return usageError{err}
				}
				bw := bufio.NewWriter(f)
				changed, err = writeChanged(cmd.Context(), bw, args[0], rep.Index.Target.String(), changedRows, store)
				if err == nil {
					err = bw.Flush()
				}
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					os.Remove(changedCSV)
					return usageError{err}
				}
			}
			var counts results.ExportCounts
			if input != "" {
				files := map[string]*os.File{}
				create := func(path string) (*bufio.Writer, error) {
					if path == "" {
						return nil, nil
					}
					f, err := os.Create(path)
					if err != nil {
						return nil, err
					}
					files[path] = f
					return bufio.NewWriter(f), nil
				}
				ew, err := create(errorsCSV)
				if err != nil {
					return usageError{err}
				}
				sw, err := create(successCSV)
				if err != nil {
					return usageError{err}
				}
				open := func() (source.Reader, source.Input, error) { return source.Open(input, io.in, opts) }
				counts, err = export.Write(open, writerOrNil(ew), writerOrNil(sw))
				for _, w := range []*bufio.Writer{ew, sw} {
					if w != nil {
						w.Flush()
					}
				}
				for path, f := range files {
					if cerr := f.Close(); err == nil && cerr != nil {
						err = cerr
					}
					if err != nil {
						os.Remove(path)
					}
				}
				if err != nil {
					return usageError{err}
				}
			}
			if format == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					*results.Report
					ErrorsExported  *int `json:"errors_exported,omitempty"`
					CreatedExported *int `json:"created_exported,omitempty"`
					ChangedExported *int `json:"changed_exported,omitempty"`
				}{rep, optional(errorsCSV, counts.Errors), optional(successCSV, counts.Created), optional(changedCSV, changed)})
			}
			rep.Print(out)
			if errorsCSV != "" {
				fmt.Fprintf(out, "\n%d invalid and failed rows written to %s: fix the cells, then import that file (a new results file goes beside it)\n", counts.Errors, errorsCSV)
			}
			if successCSV != "" {
				fmt.Fprintf(out, "%d created rows written to %s with their customer ids\n", counts.Created, successCSV)
			}
			if changedCSV != "" {
				fmt.Fprintf(out, "%d changed rows written to %s, a line per field changed, old and new (not sent: RevCent's create does not update)\n", changed, changedCSV)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.SortFlags = false
	fl.StringVar(&input, "input", "", "the input that was imported, to export rows with their original columns")
	fl.StringVar(&errorsCSV, "errors-csv", "", "write the invalid and failed rows here (needs --input)")
	fl.StringVar(&successCSV, "success-csv", "", "write the created rows here, with their customer ids (needs --input)")
	fl.StringVar(&changedCSV, "changed-csv", "", "write the rows found changed since the ledger's last send here, a line per field, old and new")
	fl.StringVar(&ledgerFlag, "ledger", "", "the ledger, for --changed-csv (env REVCENT_LEDGER; default $XDG_STATE_HOME/revcent-import/ledger.db)")
	fl.StringVar(&format, "format", "text", "text or json")
	fl.StringVar(&in.mappingFile, "mapping", "", "the mapping file the import used, to know its card columns (default: the columns auto-mapping would take)")
	// The input's format comes from its name; its dialect may be given.
	fl.StringVar(&in.delimiter, "delimiter", "", "the input's CSV field delimiter (default: detected)")
	fl.StringVar(&in.encoding, "encoding", "", "the input's encoding (default: UTF-8, and Windows-1252 for text that is not)")
	completeValues(cmd, map[string][]string{"format": {"text", "json"}, "delimiter": inputValues["delimiter"], "encoding": inputValues["encoding"]})
	return cmd
}

func optional(path string, n int) *int {
	if path == "" {
		return nil
	}
	return &n
}

// writerOrNil keeps a nil *bufio.Writer from becoming a non-nil io.Writer.
func writerOrNil(w *bufio.Writer) interface{ Write([]byte) (int, error) } {
	if w == nil {
		return nil
	}
	return w
}
