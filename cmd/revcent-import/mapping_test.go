package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"

	"github.com/revcent-import/revcent-import/results"
	"github.com/revcent-import/revcent-import/revcent/sandbox"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestMessyExport is issue 3's first case: a 60-row semicolon CSV with a
// BOM, CRLF, quoted newlines, emails with spaces and capitals, countries
// in three forms, CRM header names, and bad rows, imported by auto-mapping.
func TestMessyExport(t *testing.T) {
	countries := []struct{ in, a3 string }{{"de", "DEU"}, {"usa", "USA"}, {"United Kingdom", "GBR"}, {"FR", "FRA"}, {"bra", "BRA"}, {"Japan", "JPN"}}
	var b strings.Builder
	b.WriteString("\uFEFFFirst Name;Surname;Email Address;Street;Zip Code;Country;Notes\r\n")
	type want struct {
		status           results.Status
		email, a3, issue string
	}
	wants := map[int]want{}
	for i := 1; i <= 60; i++ {
		c := countries[i%len(countries)]
		first, last, email, country := fmt.Sprintf("Name%d", i), fmt.Sprintf("Family%d", i), fmt.Sprintf("  Person.%d@Example.COM ", i), c.in
		w := want{status: results.Created, email: fmt.Sprintf("person.%d@example.com", i), a3: c.a3}
		switch i {
		case 7:
			last, w = "", want{status: results.Invalid, issue: `column "Surname" is empty`}
		case 13:
			email, w = "person13-at-example.com", want{status: results.Invalid, issue: `column "Email Address": "person13-at-example.com" is not an email address`}
		case 21:
			country, w = "Narnia", want{status: results.Invalid, issue: `column "Country": "Narnia" is not a country`}
		case 34:
			email, w = "PERSON.3@example.com", want{status: results.Duplicate, issue: "same email as row 3"}
		}
		wants[i] = w
		// Every fifth row has a street with a line break inside quotes.
		street := fmt.Sprintf("%d Main St", i)
		if i%5 == 0 {
			street = fmt.Sprintf("\"%d Main St\r\nFlat 2\"", i)
		}
		fmt.Fprintf(&b, "%s;%s;%s;%s;%05d;%s;\"said \"\"hi\"\"; twice\"\r\n", first, last, email, street, 10000+i, country)
	}
	in := write(t, "messy.csv", b.String())

	base := startSandbox(t)
	code, out, stderr := importProcess(t, []string{"REVCENT_API_KEY=" + sandbox.DefaultAPIKey}, in, "--base-url", base, "--campaign", "Spring Promo", "--rate", "0")
	if code != exitRowsFailed {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, stderr)
	}
	d := dump(t, base, sandbox.DefaultAPIKey)
	if d.Requests != 56 || d.Created != 56 || d.Rejected != 0 {
		t.Errorf("sandbox saw %d requests, created %d, rejected %d; want 56 requests for 56 valid rows", d.Requests, d.Created, d.Rejected)
	}
	byEmail := map[string]sandbox.Customer{}
	for _, c := range d.Customers {
		byEmail[c.Request.Customer.Email] = c
	}
	lines := map[int]results.Record{}
	for _, r := range readRecords(t, in+".results.csv") {
		lines[r.Row] = r
	}
	for i, w := range wants {
		r := lines[i]
		if r.Status != w.status || !strings.Contains(r.Message, w.issue) {
			t.Errorf("row %d: %s %q, want %s %q", i, r.Status, r.Message, w.status, w.issue)
		}
		if w.status == results.Invalid && !strings.HasPrefix(r.Message, fmt.Sprintf("line %d, ", r.Line)) {
			t.Errorf("row %d: message %q does not start with its line %d", i, r.Message, r.Line)
		}
		if w.status != results.Created {
			continue
		}
		c, ok := byEmail[w.email]
		if !ok || c.ID != r.CustomerID {
			t.Errorf("row %d: %s not created once (results %+v)", i, w.email, r)
			continue
		}
		k := c.Request.Customer
		if k.FirstName != fmt.Sprintf("Name%d", i) || k.LastName != fmt.Sprintf("Family%d", i) || k.Country != w.a3 || k.Zip != fmt.Sprintf("%05d", 10000+i) {
			t.Errorf("row %d: sent %+v", i, k)
		}
		if i%5 == 0 && k.AddressLine1 != fmt.Sprintf("%d Main St\nFlat 2", i) {
			t.Errorf("row %d: street %q", i, k.AddressLine1)
		}
	}
	// Lines: the row after each quoted newline starts one line later.
	if r := lines[6]; r.Line != 8 {
		t.Errorf("row 6 starts on line %d, want 8 (row 5 spans lines 6-7)", r.Line)
	}
}

func TestWindows1252(t *testing.T) {
	text := "First Name,Last Name,Email\nJosé,Müller,jose@example.com\nFrançoise,Lefèvre,francoise@example.com\nÆthelred,Œstergaard,ae@example.com\n"
	cp, err := charmap.Windows1252.NewEncoder().String(text)
	if err != nil {
		t.Fatal(err)
	}
	base := startSandbox(t)
	env := []string{"REVCENT_API_KEY=" + sandbox.DefaultAPIKey}
	for _, args := range [][]string{{}, {"--encoding", "windows-1252"}} {
		in := write(t, "excel.csv", cp)
		code, out, stderr := importProcess(t, env, append([]string{in, "--base-url", base, "--campaign", "Spring Promo", "--rate", "0"}, args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, out, stderr)
		}
		if len(args) == 0 && !strings.Contains(stderr, "Windows-1252") {
			t.Errorf("no warning naming the guessed encoding:\n%s", stderr)
		}
	}
	names := map[string]bool{}
	for _, c := range dump(t, base, sandbox.DefaultAPIKey).Customers {
		names[c.Request.Customer.FirstName+" "+c.Request.Customer.LastName] = true
	}
	for _, n := range []string{"José Müller", "Françoise Lefèvre", "Æthelred Œstergaard"} {
		if !names[n] {
			t.Errorf("%q not received as UTF-8 (got %v)", n, names)
		}
	}
}

// TestCardsNeverLeak maps card columns: digit-only numbers and integer
// expiry reach RevCent; no full number or code reaches results, logs or
// dry-run output.
func TestCardsNeverLeak(t *testing.T) {
	m := write(t, "cards.yaml", `
customer.first_name: First Name
customer.last_name: Last Name
customer.email: Email
payment.credit_card.card_number: Card Number
payment.credit_card.exp_month: {column: Expiry, transform: [exp_month]}
payment.credit_card.exp_year: {column: Expiry, transform: [exp_year]}
payment.credit_card.card_code: CVV
`)
	in := write(t, "cards.csv", "First Name,Last Name,Email,Card Number,Expiry,CVV\n"+
		"Ada,Lovelace,ada@example.com,4111 1111 1111 1111,07/29,737\n"+
		"Grace,Hopper,grace@example.com,5500-0000-0000-0004,3/2031,5521\n"+
		"Alan,Turing,alan@example.com,4111 1111 1111 1112,07/29,123\n") // Luhn fails
	base := startSandbox(t)
	env := []string{"REVCENT_API_KEY=" + sandbox.DefaultAPIKey}
	code, out, stderr := importProcess(t, env, in, "--mapping", m, "--base-url", base, "--campaign", "Spring Promo", "--rate", "0", "--log-format", "json")
	if code != exitRowsFailed {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	d := dump(t, base, sandbox.DefaultAPIKey)
	got := map[string]string{}
	for _, c := range d.Customers {
		cc := c.Request.Payment.CreditCard
		got[c.Request.Customer.Email] = fmt.Sprintf("%s %d/%d", cc.CardNumber, cc.ExpMonth, cc.ExpYear)
	}
	if got["ada@example.com"] != "1111 7/29" || got["grace@example.com"] != "0004 3/31" || len(got) != 2 {
		t.Errorf("received %v (the sandbox keeps the last four digits of what it was sent)", got)
	}
	code, dryOut, dryErr := runCLI(t, nil, "import", in, "--mapping", m, "--dry-run", "--campaign", "Spring Promo")
	if code != exitRowsFailed {
		t.Errorf("dry run exit %d\n%s\n%s", code, dryOut, dryErr)
	}
	res, _ := os.ReadFile(in + ".results.csv")
	dry, _ := os.ReadFile(in + ".dry-run.jsonl")
	if !bytes.Contains(dry, []byte(`"card_number":"************1111"`)) || !bytes.Contains(dry, []byte(`"card_code":"***"`)) {
		t.Errorf("dry-run output does not show masked cards:\n%s", dry)
	}
	for name, s := range map[string]string{"results": string(res), "stdout": out + dryOut, "stderr": stderr + dryErr, "dry-run": string(dry)} {
		for _, secret := range []string{"4111111111111111", "4111 1111 1111 1111", "5500000000000004", "5500-0000-0000-0004", "4111111111111112", "4111 1111 1111 1112", "737", "5521"} {
			// A code's digits may stand in a time or a duration by chance
			// ("…12.737Z", "1.737s"): those are left out before looking.
			if regexp.MustCompile(`(^|[^0-9.])` + regexp.QuoteMeta(secret) + `([^0-9.]|$)`).MatchString(noise.ReplaceAllString(s, " ")) {
				t.Errorf("%s contains %q", name, secret)
			}
		}
	}
	if !strings.Contains(string(res), "************1112") || !strings.Contains(string(res), "Luhn") {
		t.Errorf("the invalid card's row does not explain itself with the last four digits:\n%s", res)
	}
}

// TestStarterMappingRoundTrips: the mapping command's output, fed back as
// --mapping, sends the same requests as auto-mapping (compared through
// --dry-run, byte for byte).
func TestStarterMappingRoundTrips(t *testing.T) {
	for _, sample := range []string{"prospects.csv", "prospects.jsonl"} {
		dir := t.TempDir()
		in := filepath.Join(dir, sample)
		data, _ := os.ReadFile(filepath.Join("../../sample_data", sample))
		os.WriteFile(in, data, 0o644)
		code, starter, stderr := runCLI(t, nil, "mapping", in)
		if code != 0 {
			t.Fatalf("mapping: %d %s", code, stderr)
		}
		m := filepath.Join(dir, "starter.yaml")
		os.WriteFile(m, []byte(starter), 0o644)
		runCLI(t, nil, "import", in, "--dry-run", "--campaign", "Spring Promo")
		auto, _ := os.ReadFile(in + ".dry-run.jsonl")
		runCLI(t, nil, "import", in, "--dry-run", "--campaign", "Spring Promo", "--mapping", m)
		mapped, _ := os.ReadFile(in + ".dry-run.jsonl")
		if len(auto) == 0 || !bytes.Equal(auto, mapped) {
			t.Errorf("%s: the starter mapping sends other requests than auto-mapping (%d vs %d bytes)\n%s", sample, len(auto), len(mapped), starter)
		}
	}
}

// TestGoldenRequests pins the request bodies built from sample_data:
// auto-mapped, through mapping.yaml, and from JSONL. go test -update
// rewrites them after a deliberate change.
func TestGoldenRequests(t *testing.T) {
	cases := []struct {
		golden string
		args   []string
	}{
		{"prospects.csv.auto.jsonl", []string{"prospects.csv", "--campaign", "Spring Promo"}},
		{"prospects.csv.mapping.jsonl", []string{"prospects.csv", "--mapping", "../../sample_data/mapping.yaml"}},
		{"prospects.jsonl.auto.jsonl", []string{"prospects.jsonl", "--campaign", "Spring Promo"}},
	}
	for _, c := range cases {
		dir := t.TempDir()
		in := filepath.Join(dir, c.args[0])
		data, _ := os.ReadFile(filepath.Join("../../sample_data", c.args[0]))
		os.WriteFile(in, data, 0o644)
		runCLI(t, nil, append([]string{"import", in, "--dry-run"}, c.args[1:]...)...)
		got, err := os.ReadFile(in + ".dry-run.jsonl")
		if err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", c.golden)
		if *update {
			os.MkdirAll("testdata", 0o755)
			os.WriteFile(golden, got, 0o644)
		}
		want, err := os.ReadFile(golden)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs from the golden file (%v): rerun with -update after a deliberate change", c.golden, err)
		}
	}
}

func TestValidateCommand(t *testing.T) {
	code, out, stderr := runCLI(t, nil, "validate", "../../sample_data/prospects.csv")
	if code != exitRowsFailed {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{
		`prospects.csv:18: column "Last Name" is empty; RevCent requires last name`,
		`prospects.csv:43: column "Email": "jane.doe@" is not an email address`,
		`prospects.csv:89: column "Country": "Atlantis" is not a country`,
		`prospects.csv:124: duplicate: same email as row 5`,
		`prospects.csv:251: has 13 fields, the header has 12`,
		"300 rows read in", "295 valid, 4 invalid, 1 duplicate", "invalid rows by reason:",
		`1  column "Country" is not a country (use an ISO code such as DE or DEU, or the country's name)  (first on line 89)`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr, "no campaign given") {
		t.Errorf("no note about the missing campaign: %s", stderr)
	}
	if _, err := os.Stat("../../sample_data/prospects.csv.results.csv"); err == nil {
		t.Error("validate wrote a results file")
	}
	clean := write(t, "clean.csv", "First Name,Last Name,Email\nAda,Lovelace,ada@example.com\n")
	if code, out, _ := runCLI(t, nil, "validate", clean, "--campaign", "X"); code != 0 || !strings.Contains(out, "1 valid, 0 invalid") {
		t.Errorf("clean file: exit %d\n%s", code, out)
	}
}

// TestSpreadsheetLeftovers: what spreadsheets leave in exports.
func TestSpreadsheetLeftovers(t *testing.T) {
	t.Run("blank rows are skipped and counted, not invalid", func(t *testing.T) {
		in := write(t, "l.csv", "First Name;Last Name;Email;Country\nAda;Lovelace;ada@example.com;GB\n;;;\n;;;;;;\n  ; ;;\nBo;Diddley;bo@example.com;US\n")
		code, out, stderr := runCLI(t, nil, "import", in, "--sandbox", "--campaign", "Spring Promo", "--rate", "0", "--progress", "none")
		if code != 0 || !strings.Contains(out, "created            2") || !strings.Contains(out, "blank              3") || strings.Contains(out, "invalid            1") {
			t.Errorf("exit %d\n%s\n%s", code, out, stderr)
		}
		code, out, _ = runCLI(t, nil, "validate", in)
		if code != 0 || !strings.Contains(out, "3 blank rows") {
			t.Errorf("validate: exit %d\n%s", code, out)
		}
	})
	t.Run("a leading apostrophe before digits or + is Excel's guard, not the value", func(t *testing.T) {
		in := write(t, "s.csv", "First Name,Last Name,Email,Phone,Zip,Company\nAda,Lovelace,ada@example.com,'+44 20 7946 0000,'01234,'Quoted' Ltd\n")
		dry := in + ".dry-run.jsonl"
		code, out, _ := runCLI(t, nil, "import", in, "--dry-run", "--campaign", "Spring Promo")
		body := string(mustRead(t, dry))
		if code != 0 || !strings.Contains(body, `"phone":"+44 20 7946 0000"`) || !strings.Contains(body, `"zip":"01234"`) || !strings.Contains(body, `"company":"'Quoted' Ltd"`) {
			t.Errorf("exit %d\n%s\n%s", code, out, body)
		}
	})
	t.Run("a lone Name in a companies export is the company's", func(t *testing.T) {
		in := write(t, "c.csv", "Record ID,Name,Company Domain Name,Email,City\n1,Acme Widgets,acme.com,info@acme.com,Austin\n")
		code, out, _ := runCLI(t, nil, "mapping", in)
		if code != 0 || !strings.Contains(out, "customer.company: Name") || strings.Contains(out, "customer.first_name") {
			t.Errorf("exit %d\n%s", code, out)
		}
		// A person list with a Company column still splits its Name.
		in = write(t, "p.csv", "Name,Email,Company\nAda Lovelace,ada@example.com,Analytical Engines\n")
		if _, out, _ := runCLI(t, nil, "mapping", in); !strings.Contains(out, "customer.first_name: {column: \"Name\", transform: [given_name]}") || !strings.Contains(out, "customer.company: Company") {
			t.Errorf("person list:\n%s", out)
		}
	})
	for _, tc := range []struct{ name, content string }{{"header only", "First Name,Last Name,Email\n"}, {"empty", ""}, {"only blank rows", "First Name,Last Name,Email\n,,\n"}} {
		t.Run(tc.name+": no rows, exit 1", func(t *testing.T) {
			in := write(t, "e.csv", tc.content)
			code, out, stderr := runCLI(t, nil, "import", in, "--sandbox", "--campaign", "Spring Promo", "--rate", "0", "--progress", "none")
			if code != exitRowsFailed || !strings.Contains(out, "no rows") || !strings.Contains(stderr, "no rows") {
				t.Errorf("exit %d, want 1 and a warning\n%s\n%s", code, out, stderr)
			}
			code, out, _ = runCLI(t, nil, "validate", in)
			if code != exitRowsFailed || !strings.Contains(out, "no rows") {
				t.Errorf("validate: exit %d\n%s", code, out)
			}
		})
	}
}
