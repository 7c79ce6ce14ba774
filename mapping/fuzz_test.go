package mapping

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/revcent-import/revcent-import/internal/schemacheck"
	"github.com/revcent-import/revcent-import/revcent/sandbox"
)

// FuzzMap checks that every row ends as a request or as field errors, and
// that a request without errors is one the strict sandbox accepts: bad
// rows must never cost an API call.
func FuzzMap(f *testing.F) {
	f.Add("Ada", "Lovelace", "ADA@example.com", "gb", "4111 1111 1111 1111", "07/2031", "123", "x", "020 7946 0958", "Ada King")
	f.Add("", " ", "a@b", "Atlantis", "1234", "13/99", "12345", strings.Repeat("é", 300), "12", "")
	f.Add("Zoë", "Ødegård", "z@x.io", "Deutschland", "", "", "", "", "+49 30 1234567", "Lovelace, Ada")
	f.Add("Info", "Desk", "INFO@ROYALTY_CC.COM", "España", "", "", "", "", "'+34 91 123 45 67", "")
	f.Add("José", "Pérez", "josé@example.com", "México", "", "", "", "a\x00b", "n/a", "")
	f.Add("Bo", "Bad", "bo@mail.-bad-.com", "Korea, South", "", "", "", "", "-1e400", "")
	cols := []string{"First Name", "Last Name", "Email", "Country", "Card Number", "Expiry", "CVV", "Note", "Phone", "Billing Name", "Extra"}
	spec, _ := Auto(cols)
	spec.Fields = append(spec.Fields,
		Field{Target: "metadata.note", Column: "Note"}, Field{Target: "bill_to.city", Column: "Note"},
		Field{Target: "customer.phone", Column: "Phone", Transforms: []string{"phone_e164"}},
		Field{Target: "bill_to.first_name", Column: "Billing Name", Transforms: []string{"given_name"}},
		Field{Target: "bill_to.last_name", Column: "Billing Name", Transforms: []string{"family_name"}})
	srv := sandbox.New(sandbox.Options{})
	f.Fuzz(func(t *testing.T, first, last, email, country, cardNo, exp, cvv, note, phone, billName string) {
		m, err := Compile(spec, cols, indexOf(cols), Options{Campaign: "Spring Promo", UnmappedAsMetadata: true, TruncateMetadata: true})
		if err != nil {
			t.Fatal(err)
		}
		req, errs := m.Map([]string{first, last, email, country, cardNo, exp, cvv, note, phone, billName, note})
		for _, e := range errs {
			if e.Reason == "" || (e.Column == "" && e.Target == "") {
				t.Fatalf("field error without a reason or place: %+v", e)
			}
			if len(cvv) >= 3 && strings.Contains(e.Error(), cvv) && e.Target == "payment.credit_card.card_code" {
				t.Fatalf("error %q reveals the card code", e)
			}
		}
		if errs != nil {
			return
		}
		body, _ := json.Marshal(req)
		r := httptest.NewRequest("POST", "/v2/customers", bytes.NewReader(body))
		r.Header.Set("x-api-key", sandbox.DefaultAPIKey)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("mapped without errors but the sandbox refused it: %s\nbody %s", w.Body, body)
		}
		// The independent judge: RevCent's own schema, formats asserted.
		if err := schemacheck.Check(body); err != nil && schemacheck.Available() == nil {
			t.Fatalf("mapped without errors but RevCent's schema refuses it: %v\nbody %s", err, body)
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add("customer.email: Email\ncampaign: {value: X}\n")
	f.Add(`{"customer.phone": {"column": "P", "transform": "digits"}}`)
	f.Add("metadata.: x\n")
	f.Fuzz(func(t *testing.T, data string) {
		spec, err := Parse("m.yaml", []byte(data))
		if err != nil {
			return
		}
		for _, fd := range spec.Fields {
			if checkTarget(fd.Target) != nil {
				t.Fatalf("Parse accepted target %q", fd.Target)
			}
		}
	})
}
