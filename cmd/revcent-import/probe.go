package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/revcent-import/revcent-import/importer"
	"github.com/revcent-import/revcent-import/revcent"
)

// profile is what probe --save writes and import --profile reads.
type profile struct {
	BaseURL    string           `json:"base_url"`
	MeasuredAt string           `json:"measured_at"`
	Settle     revcent.Duration `json:"settle"`
	ExistsCode string           `json:"exists_error_code,omitempty"`
	revcent.Findings
}

func readProfile(path string) (profile, error) {
	var p profile
	b, err := os.ReadFile(path)
	if err != nil {
		return p, fmt.Errorf("--profile: %w", err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("--profile %s is not a file written by probe --save: %v", path, err)
	}
	if p.Settle.Duration < 0 {
		return p, fmt.Errorf("--profile %s: settle %v is negative", path, p.Settle)
	}
	return p, nil
}

func probeCommand(ctx context.Context, io stdio, getenv func(string) string, code *int) *cobra.Command {
	var email, campaign, first, last, baseURL, keyFile, save string
	var yes bool
	var maxLag, timeout time.Duration
	cmd := &cobra.Command{
		Use:   "probe --email ADDRESS --campaign C [flags]",
		Short: "Learn what your account's API does where RevCent's docs are silent, and recommend settings",
		Long: `probe creates one customer, with the email you give, to learn what RevCent's
documentation does not say about your account: the shape of GetCustomer's
answer, how long a new customer takes to be found by the search (the search
lag), and what a second create with the same email does (another customer,
the existing one, or a refusal). It prints what it found and the --settle it
recommends, and --save writes them to a file that import --profile reads.

Run it once before a first large migration, and again if RevCent changes.
It creates that customer (and, if your account creates another customer for
a repeated email, a second one with the same email): use an address you can
recognise and delete, such as probe+DATE@your-domain.`,
		Example: `  REVCENT_API_KEY=... revcent-import probe --email probe+2026-12-02@example.com --campaign "Spring Promo" --save revcent.profile
  REVCENT_API_KEY=... revcent-import import prospects.csv --campaign "Spring Promo" --profile revcent.profile`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if email == "" || campaign == "" {
				return usageError{errors.New("--email and --campaign are required: probe creates that one customer in that campaign")}
			}
			email = strings.ToLower(strings.TrimSpace(email))
			if !revcent.ValidEmail(email) {
				return usageError{fmt.Errorf("--email %q is not an email address", email)}
			}
			if baseURL == "" {
				baseURL = getenv("REVCENT_BASE_URL")
			}
			key, err := apiKey(keyFile, getenv)
			if err != nil {
				return usageError{err}
			}
			client, err := revcent.NewClient(revcent.Config{BaseURL: baseURL, APIKey: key, Timeout: timeout, MaxConns: 2, UserAgent: "revcent-import/" + version()})
			if err != nil {
				return usageError{err}
			}
			defer client.Close()
			target := baseURL
			if target == "" {
				target = revcent.DefaultBaseURL
			}
			fmt.Fprintf(io.err, "probe will create the customer %s %s <%s> in campaign %q at %s,\n"+
				"read it back, search for it until found (up to %v), and create it once more to see what a repeated email does\n"+
				"(if your account allows duplicate emails, that makes a second customer with the same email).\n",
				first, last, email, campaign, target, maxLag)
			if !yes {
				if !isTerminal(io.err) || !isTerminalReader(io.in) {
					return usageError{errors.New("probe creates a customer: pass --yes to confirm when not on a terminal")}
				}
				fmt.Fprint(io.err, "Type yes to go on: ")
				line, _ := bufio.NewReader(io.in).ReadString('\n')
				if strings.TrimSpace(strings.ToLower(line)) != "yes" {
					return usageError{errors.New("not confirmed: nothing was created")}
				}
			}
			req := revcent.CreateCustomerRequest{Campaign: campaign, Customer: revcent.Contact{FirstName: first, LastName: last, Email: email}}
			f, err := client.Probe(ctx, req, 200*time.Millisecond, maxLag, func(s string) { fmt.Fprintln(io.err, "- "+s) })
			if err != nil {
				var e *revcent.Error
				switch {
				case errors.Is(err, revcent.ErrProbeEmailExists):
					return usageError{err}
				case errors.As(err, &e) && (e.Class == revcent.Fatal || e.Class == revcent.Final):
					return &importer.AbortError{Err: err}
				case ctx.Err() != nil:
					return importer.ErrInterrupted
				}
				return &importer.AbortError{Err: err}
			}
			p := profile{BaseURL: target, MeasuredAt: time.Now().UTC().Format(time.RFC3339), Findings: f,
				Settle: revcent.Duration{Duration: f.RecommendedSettle(importer.DefaultSettle)}, ExistsCode: f.ExistsCode}
			printFindings(io, p)
			if save != "" {
				b, _ := json.MarshalIndent(p, "", "  ")
				if err := os.WriteFile(save, append(b, '\n'), 0o644); err != nil {
					return &importer.AbortError{Err: fmt.Errorf("--save: %w", err)}
				}
				fmt.Fprintf(io.out, "\nsaved to %s: pass --profile %s to import\n", save, save)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&email, "email", "", "the one customer's email probe may create (required)")
	fl.StringVar(&campaign, "campaign", "", "campaign name or id to create it in (required)")
	fl.StringVar(&first, "first-name", "Probe", "its first name")
	fl.StringVar(&last, "last-name", "Revcent-Import", "its last name")
	fl.StringVar(&baseURL, "base-url", "", "API root (env REVCENT_BASE_URL; default "+revcent.DefaultBaseURL+")")
	fl.StringVar(&keyFile, "api-key-file", "", "file holding the API key (else env REVCENT_API_KEY)")
	fl.StringVar(&save, "save", "", "write the findings and recommended settings to this file, for import --profile")
	fl.BoolVar(&yes, "yes", false, "do not ask for confirmation (needed when not on a terminal)")
	fl.DurationVar(&maxLag, "max-lag", 2*time.Minute, "stop searching after this long")
	fl.DurationVar(&timeout, "timeout", 30*time.Second, "per request")
	return cmd
}

func isTerminalReader(r any) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func printFindings(io stdio, p profile) {
	w := io.out
	f := p.Findings
	fmt.Fprintf(w, "\nwhat %s does:\n", p.BaseURL)
	switch f.GetShape {
	case "flat":
		fmt.Fprintf(w, "  GetCustomer      flat, as documented (fields: %s)\n", strings.Join(f.GetFields, ", "))
	default:
		fmt.Fprintf(w, "  GetCustomer      %s, not as documented (fields: %s); the importer reads both\n", f.GetShape, strings.Join(f.GetFields, ", "))
	}
	if f.SearchFound {
		fmt.Fprintf(w, "  search lag       %v: a new customer is found by the search after that long\n", f.SearchLag.Round(100*time.Millisecond))
	} else {
		fmt.Fprintf(w, "  search lag       more than %v: the search never found the new customer; reconciliation will rely on the customer list\n", f.SearchLag.Round(time.Second))
	}
	switch f.Duplicates {
	case "create":
		fmt.Fprintf(w, "  repeated email   creates another customer (%s and %s now share the email): only the importer's ledger and reconciliation stop duplicates\n", f.CustomerIDs[0], f.CustomerIDs[1])
	case "existing":
		fmt.Fprintf(w, "  repeated email   answers with the existing customer: such rows are recorded existing\n")
	case "refuse":
		fmt.Fprintf(w, "  repeated email   refused with error_code %q: such rows are recorded existing, with the customer found by search\n", f.ExistsCode)
	}
	fmt.Fprintf(w, "\nrecommended: --settle %v", p.Settle.Duration)
	if f.ExistsCode != "" {
		fmt.Fprintf(w, " (and the refusal code above, which --profile passes on)")
	}
	fmt.Fprintln(w)
}
