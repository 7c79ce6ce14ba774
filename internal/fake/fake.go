// Package fake writes realistic prospect lists shaped like CRM exports
// (the header of the common "customers-N.csv" samples), deterministically
// from a seed, for tests, benchmarks and sample_data.
package fake

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"

	"github.com/xuri/excelize/v2"
)

// Header is the CRM export header the importer's acceptance tests use.
var Header = []string{"Index", "Customer Id", "First Name", "Last Name", "Company", "City", "Country", "Phone 1", "Phone 2", "Email", "Subscription Date", "Website"}

var (
	firsts    = []string{"Sheryl", "Preston", "Roy", "Linda", "Joanna", "Aimee", "Darren", "Brett", "Sheryl", "Michelle", "Zoë", "José", "Ingrid", "Mateo", "Priya", "Kenji", "Amara", "Olivia", "Noah", "Émile", "Søren", "Aisha", "Lucas", "Hannah", "Wei"}
	lasts     = []string{"Baxter", "Lozano", "Berry", "Keller", "Bentley", "Mcmillan", "Gallagher", "Mckay", "Sanders", "Fischer", "Müller", "García", "Okafor", "Nakamura", "Lindqvist", "O'Brien", "Dubois", "Rossi", "Kowalski", "Haddad", "Chen", "Novak", "Silva", "Walsh", "Patel"}
	companies = []string{"Rasmussen Group", "Vega-Gentry", "Murillo-Perry", "Dominguez, Mcmillan and Donovan", "Martin, Lavine and Bernard", "Acme \"Widgets\" Ltd", "Northwind Traders", "Blue Harbor LLC", "Kline & Sons", "Papadopoulos GmbH"}
	cities    = []string{"East Leonard", "East Jimmychester", "Isabelborough", "Bensonview", "West Priscilla", "Lake Charlottestad", "São Paulo", "Zürich", "Kraków", "Toronto", "Austin", "Dublin"}
	// Countries as CRM exports write them: English names.
	countries = []string{"Chile", "Djibouti", "Antigua and Barbuda", "Dominican Republic", "Slovakia", "Bosnia and Herzegovina", "United States", "Canada", "Germany", "France", "United Kingdom", "Brazil", "Japan", "India", "Poland", "Ireland", "Italy", "Spain", "Mexico", "Australia", "Nigeria", "Sweden", "Norway", "Netherlands", "Switzerland"}
	alpha2    = map[string]string{"Chile": "CL", "Djibouti": "DJ", "Antigua and Barbuda": "AG", "Dominican Republic": "DO", "Slovakia": "SK", "Bosnia and Herzegovina": "BA", "United States": "US", "Canada": "CA", "Germany": "DE", "France": "FR", "United Kingdom": "GB", "Brazil": "BR", "Japan": "JP", "India": "IN", "Poland": "PL", "Ireland": "IE", "Italy": "IT", "Spain": "ES", "Mexico": "MX", "Australia": "AU", "Nigeria": "NG", "Sweden": "SE", "Norway": "NO", "Netherlands": "NL", "Switzerland": "CH"}
	domains   = []string{"example.com", "mail.example.org", "crm.example.net", "example.io"}
)

// Prospect is one generated row.
type Prospect struct {
	Index      int
	CustomerID string
	First      string
	Last       string
	Company    string
	City       string
	Country    string // English name
	Phone1     string
	Phone2     string
	Email      string
	Subscribed string
	Website    string
}

// Alpha2 returns the prospect's country as an alpha-2 code.
func (p Prospect) Alpha2() string { return alpha2[p.Country] }

// Prospects returns n distinct prospects from seed. Emails are unique.
func Prospects(n int, seed uint64) []Prospect {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]Prospect, n)
	for i := range out {
		p := &out[i]
		p.Index = i + 1
		p.CustomerID = fmt.Sprintf("%015X", r.Uint64()>>4)
		p.First, p.Last = firsts[r.IntN(len(firsts))], lasts[r.IntN(len(lasts))]
		p.Company, p.City = companies[r.IntN(len(companies))], cities[r.IntN(len(cities))]
		p.Country = countries[r.IntN(len(countries))]
		p.Phone1 = fmt.Sprintf("%03d.%03d.%04d", 200+r.IntN(800), r.IntN(1000), r.IntN(10000))
		p.Phone2 = fmt.Sprintf("+1-%03d-%03d-%04dx%d", 200+r.IntN(800), r.IntN(1000), r.IntN(10000), r.IntN(999))
		local := strings.NewReplacer("'", "", "ë", "e", "é", "e", "É", "e", "ü", "u", "í", "i", "ø", "o", "Ø", "o").Replace(strings.ToLower(p.First + "." + p.Last))
		p.Email = fmt.Sprintf("%s%d@%s", local, i+1, domains[r.IntN(len(domains))])
		p.Subscribed = fmt.Sprintf("20%02d-%02d-%02d", 20+r.IntN(6), 1+r.IntN(12), 1+r.IntN(28))
		p.Website = fmt.Sprintf("https://www.%s.example/", strings.ToLower(p.Last))
	}
	return out
}

// Record returns p as a CSV record in Header's order.
func (p Prospect) Record() []string {
	return []string{fmt.Sprint(p.Index), p.CustomerID, p.First, p.Last, p.Company, p.City, p.Country, p.Phone1, p.Phone2, p.Email, p.Subscribed, p.Website}
}

// WriteCSV writes ps as a CSV file with Header.
func WriteCSV(w io.Writer, ps []Prospect) error {
	cw := csv.NewWriter(w)
	cw.Write(Header)
	for _, p := range ps {
		cw.Write(p.Record())
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSONL writes ps as JSONL with camelCase keys, alpha-2 countries and
// the address nested, as an application's export would.
func WriteJSONL(w io.Writer, ps []Prospect) error {
	enc := json.NewEncoder(w)
	for _, p := range ps {
		err := enc.Encode(map[string]any{
			"customerId": p.CustomerID, "firstName": p.First, "lastName": p.Last, "emailAddress": p.Email,
			"phoneNumber": p.Phone1, "companyName": p.Company,
			"address":      map[string]any{"city": p.City, "countryCode": p.Alpha2()},
			"subscribedOn": p.Subscribed,
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// WriteXLSX writes ps as a workbook at path, sheet "Customers": the same
// cells, header first, as WriteCSV writes.
func WriteXLSX(path string, ps []Prospect) error {
	f := excelize.NewFile()
	defer f.Close()
	if err := f.SetSheetName("Sheet1", "Customers"); err != nil {
		return err
	}
	sw, err := f.NewStreamWriter("Customers")
	if err != nil {
		return err
	}
	row := func(n int, cells []string) error {
		vals := make([]any, len(cells))
		for i, v := range cells {
			vals[i] = v
		}
		cell, _ := excelize.CoordinatesToCellName(1, n)
		return sw.SetRow(cell, vals)
	}
	if err := row(1, Header); err != nil {
		return err
	}
	for i, p := range ps {
		if err := row(i+2, p.Record()); err != nil {
			return err
		}
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	return f.SaveAs(path)
}
