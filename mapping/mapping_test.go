package mapping

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/revcent-import/revcent-import/revcent"
)

func indexOf(cols []string) func(string) int {
	return func(name string) int {
		for i, c := range cols {
			if c == name {
				return i
			}
		}
		return -1
	}
}

func targetsOf(s Spec) map[string]string {
	m := map[string]string{}
	for _, f := range s.Fields {
		m[f.Target] = f.Column
	}
	return m
}

func TestAutoCRMExport(t *testing.T) {
	cols := strings.Split("Index,Customer Id,First Name,Last Name,Company,City,Country,Phone 1,Phone 2,Email,Subscription Date,Website", ",")
	spec, unmapped := Auto(cols)
	want := map[string]string{
		"internal_customer_id": "Customer Id", "customer.first_name": "First Name", "customer.last_name": "Last Name",
		"customer.company": "Company", "customer.city": "City", "customer.country": "Country",
		"customer.phone": "Phone 1", "customer.email": "Email",
	}
	if got := targetsOf(spec); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	if w := []string{"Index", "Phone 2", "Subscription Date", "Website"}; !reflect.DeepEqual(unmapped, w) {
		t.Errorf("unmapped %q, want %q", unmapped, w)
	}
}

func TestAutoSynonyms(t *testing.T) {
	for header, want := range map[string]string{
		"E-mail Address": "customer.email", "EMAIL_ADDRESS": "customer.email", "emailAddress": "customer.email",
		"Surname": "customer.last_name", "Given Name": "customer.first_name", "firstName": "customer.first_name", "first_name": "customer.first_name",
		"Zip Code": "customer.zip", "Postal Code": "customer.zip", "Phone 1": "customer.phone", "Mobile": "customer.phone",
		"Customer Id": "internal_customer_id", "External ID": "internal_customer_id", "Province": "customer.state", "Region": "customer.state",
		"Organization": "customer.company", "Street": "customer.address_line_1", "Address": "customer.address_line_1",
		"Address Line 2": "customer.address_line_2", "address.city": "customer.city", "address.zipCode": "customer.zip",
		"Billing City": "bill_to.city", "billing.email": "bill_to.email", "Bill To Zip": "bill_to.zip",
		"Card Number": "payment.credit_card.card_number", "CVV": "payment.credit_card.card_code", "countryCode": "customer.country",
	} {
		spec, _ := Auto([]string{header})
		if got := targetsOf(spec); len(got) != 1 || got[want] != header {
			t.Errorf("%q maps to %v, want %s", header, got, want)
		}
	}
	spec, _ := Auto([]string{"Expiry"})
	if got := targetsOf(spec); len(got) != 2 || got["payment.credit_card.exp_month"] != "Expiry" || got["payment.credit_card.exp_year"] != "Expiry" {
		t.Errorf("Expiry maps to %v, want month and year", got)
	}
	spec, unmapped := Auto([]string{"Email", "E-mail", "Phone 2", "Notes"})
	if got := targetsOf(spec); len(got) != 1 || got["customer.email"] != "Email" || len(unmapped) != 3 {
		t.Errorf("the first column naming a target wins: %v, unmapped %q", got, unmapped)
	}
}

func compile(t *testing.T, cols []string, opts Options) *Mapper {
	t.Helper()
	spec, _ := Auto(cols)
	m, err := Compile(spec, cols, indexOf(cols), opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMapNormalises(t *testing.T) {
	cols := []string{"First Name", "Last Name", "Email", "Country", "Customer Id", "Phone 1", "Billing Zip"}
	m := compile(t, cols, Options{Campaign: "Spring Promo"})
	req, errs := m.Map([]string{"  Ada ", "Lovelace", "  Ada.Lovelace@Example.COM ", "united kingdom", "C-7", "+44 20 7946 0000", "SW1"})
	if errs != nil {
		t.Fatal(errs)
	}
	want := revcent.CreateCustomerRequest{
		Campaign:           "Spring Promo",
		Customer:           revcent.Contact{FirstName: "Ada", LastName: "Lovelace", Email: "ada.lovelace@example.com", Country: "GBR", Phone: "+44 20 7946 0000"},
		BillTo:             &revcent.Contact{FirstName: "Ada", LastName: "Lovelace", Email: "ada.lovelace@example.com", Zip: "SW1"},
		InternalCustomerID: "C-7",
	}
	if !reflect.DeepEqual(req, want) {
		t.Errorf("got %+v\nwant %+v", req, want)
	}
	for in, a3 := range map[string]string{"US": "USA", "usa": "USA", "United States": "USA", "de": "DEU", "Germany": "DEU", "fra": "FRA", "Côte d'Ivoire": "CIV", "U.K.": "GBR"} {
		req, errs := m.Map([]string{"A", "B", "a@b.co", in, "", "", ""})
		if errs != nil || req.Customer.Country != a3 {
			t.Errorf("country %q -> %q %v, want %s", in, req.Customer.Country, errs, a3)
		}
	}
}

func TestMapRowErrors(t *testing.T) {
	cols := []string{"First Name", "Last Name", "Email", "Country"}
	m := compile(t, cols, Options{Campaign: "X"})
	tests := []struct {
		row  []string
		want []string
	}{
		{[]string{"Ada", "", "a@b.co", ""}, []string{`column "Last Name" is empty; RevCent requires last name`}},
		{[]string{"Ada", "L", "ada@", ""}, []string{`column "Email": "ada@" is not an email address`}},
		{[]string{"Ada", "L", "a@b.co", "Atlantis"}, []string{`column "Country": "Atlantis" is not a country (use an ISO code such as DE or DEU, or the country's name)`}},
		{[]string{"", "", "", "Atlantis"}, []string{`column "Country": "Atlantis" is not a country`, `column "First Name" is empty`, `column "Last Name" is empty`, `column "Email" is empty`}},
		{[]string{"Ada"}, []string{`column "Last Name" is empty`, `column "Email" is empty`}}, // a short row
	}
	for _, tt := range tests {
		_, errs := m.Map(tt.row)
		if len(errs) != len(tt.want) {
			t.Errorf("%q: got %v, want %d errors", tt.row, errs, len(tt.want))
			continue
		}
		for i, w := range tt.want {
			if !strings.HasPrefix(errs[i].Error(), w) {
				t.Errorf("%q: error %d = %q, want %q", tt.row, i, errs[i], w)
			}
		}
	}
}

func TestMapCards(t *testing.T) {
	cols := []string{"First Name", "Last Name", "Email", "Card Number", "Expiry", "CVV"}
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	m := compile(t, cols, Options{Campaign: "X", Now: now})
	tests := []struct {
		card, exp, cvv string
		month, year    int
		err            string
	}{
		{"4111 1111 1111 1111", "07/27", "123", 7, 27, ""},
		{"4111-1111-1111-1111", "7/2027", "1234", 7, 27, ""},
		{"4111111111111111", "12/26", "", 12, 26, ""},
		{"4111111111111112", "07/27", "", 0, 0, `column "Card Number": "************1112" is not a valid card number (Luhn check failed)`},
		{"4111 1111", "07/27", "", 0, 0, `"****1111" is not a card number`},
		{"4111111111111111", "13/27", "", 0, 0, `column "Expiry": "13" is not an expiry month`},
		{"4111111111111111", "10/26", "", 0, 0, `"10/26" has passed: the card is expired`},
		{"4111111111111111", "07/27", "12a", 0, 0, `column "CVV": "***" is not a card code`},
	}
	for _, tt := range tests {
		req, errs := m.Map([]string{"A", "B", "a@b.co", tt.card, tt.exp, tt.cvv})
		if tt.err != "" {
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.err) {
				t.Errorf("%s %s %s: got %v, want %q", tt.card, tt.exp, tt.cvv, errs, tt.err)
			}
			for _, e := range errs {
				if strings.Contains(e.Error(), "4111111111111112") || (tt.cvv != "" && strings.Contains(e.Error(), tt.cvv)) {
					t.Errorf("error %q reveals the card", e)
				}
			}
			continue
		}
		cc := req.Payment.CreditCard
		if errs != nil || cc.CardNumber != "4111111111111111" || cc.ExpMonth != tt.month || cc.ExpYear != tt.year || cc.CardCode != tt.cvv {
			t.Errorf("%s %s: got %+v %v", tt.card, tt.exp, cc, errs)
		}
	}
}

func TestMapMetadataAndConstants(t *testing.T) {
	spec, err := Parse("m.yaml", []byte(`
campaign: {value: Spring Promo}
customer.first_name: First
customer.last_name: {column: Last, transform: [upper]}
customer.email: Email
metadata.source: {value: spring-list}
metadata.note: {column: Note, default: none}
metadata.long: Long
`))
	if err != nil {
		t.Fatal(err)
	}
	cols := []string{"First", "Last", "Email", "Note", "Long"}
	m, err := Compile(spec, cols, indexOf(cols), Options{})
	if err != nil {
		t.Fatal(err)
	}
	req, errs := m.Map([]string{"Ada", "Lovelace", "a@b.co", "", ""})
	if errs != nil || req.Campaign != "Spring Promo" || req.Customer.LastName != "LOVELACE" ||
		!reflect.DeepEqual(req.Metadata, []revcent.Metadata{{Name: "source", Value: "spring-list"}, {Name: "note", Value: "none"}}) {
		t.Errorf("got %+v %v", req, errs)
	}
	_, errs = m.Map([]string{"Ada", "L", "a@b.co", "", strings.Repeat("x", 256)})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "is 256 characters; RevCent takes at most 255") {
		t.Errorf("long metadata: %v", errs)
	}
	m, _ = Compile(spec, cols, indexOf(cols), Options{Campaign: "Override"})
	if req, _ := m.Map([]string{"A", "B", "a@b.co", "", ""}); req.Campaign != "Override" {
		t.Errorf("--campaign did not override the mapping: %q", req.Campaign)
	}
}

func TestCompileErrors(t *testing.T) {
	cols := []string{"First Name", "Last Name", "Email Adress"}
	spec, err := Parse("m.yaml", []byte("customer.first_name: First Name\ncustomer.last_name: Last Name\ncustomer.email: Email Address\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile(spec, cols, indexOf(cols), Options{Campaign: "X"})
	if err == nil || !strings.Contains(err.Error(), `m.yaml line 3: customer.email: the input has no column "Email Address" (did you mean "Email Adress"?)`) {
		t.Errorf("got %v", err)
	}
	spec, _ = Auto([]string{"First Name", "Email"})
	_, err = Compile(spec, []string{"First Name", "Email"}, indexOf([]string{"First Name", "Email"}), Options{})
	if err == nil || !strings.Contains(err.Error(), "nothing maps to customer.last_name") || !strings.Contains(err.Error(), ErrNoCampaign.Error()) {
		t.Errorf("got %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := map[string]string{
		"customer.first_name: A\ncustomer.emial: E\n":       `m.yaml line 2: unknown target "customer.emial" (did you mean "customer.email"?)`,
		"customer.phone: {column: P, transform: [digts]}\n": `m.yaml line 1: unknown transform "digts" (did you mean "digits"?)`,
		"customer.phone: {column: P, value: x}\n":           "m.yaml line 1: customer.phone has both column and value",
		"customer.phone: P\ncustomer.phone: Q\n":            `[2:1] mapping key "customer.phone" already defined at [1:1]`,
		"customer.phone: {colum: P}\n":                      "m.yaml line 1: customer.phone:",
		"customer.phone:\n":                                 "m.yaml line 1: customer.phone has no column",
		"metadata." + strings.Repeat("n", 101) + ": X\n":    "must be 1-100 characters",
		"- a\n- b\n":              "want a mapping of target paths to columns",
		"":                        "the mapping is empty",
		"customer.email: [a, b\n": "not valid YAML or JSON",
	}
	for in, want := range tests {
		_, err := Parse("m.yaml", []byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", in, err, want)
		}
	}
}

func TestParseJSON(t *testing.T) {
	spec, err := Parse("m.json", []byte(`{"customer.email": "Email", "customer.phone": {"column": "Phone 1", "transform": ["digits"]}, "campaign": {"value": "X"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Field{{Target: "customer.email", Column: "Email", Line: 1}, {Target: "customer.phone", Column: "Phone 1", Transforms: []string{"digits"}, Line: 1}, {Target: "campaign", Value: "X", Line: 1}}
	if !reflect.DeepEqual(spec.Fields, want) {
		t.Errorf("got %+v", spec.Fields)
	}
}

func TestExpiryParsing(t *testing.T) {
	for in, want := range map[string][2]string{
		"07/27": {"7", "27"}, "7/2027": {"7", "27"}, "12-30": {"12", "30"}, "0727": {"7", "27"}, "07 / 27": {"7", "27"},
	} {
		m, r1 := expMonth(in)
		y, r2 := expYear(in)
		if m != want[0] || y != want[1] || r1 != "" || r2 != "" {
			t.Errorf("%q -> %q %q (%s %s), want %q", in, m, y, r1, r2, want)
		}
	}
	for in, want := range map[string]string{"2027": "27", "27": "27", "5": "05"} {
		if y, r := expYear(in); y != want || r != "" {
			t.Errorf("expYear(%q) = %q %s, want %q", in, y, r, want)
		}
	}
	for _, bad := range []string{"1999", "abc", "123", "1327"} {
		if _, r := expYear(bad); r == "" {
			t.Errorf("expYear(%q) accepted", bad)
		}
	}
}
