package mapping

import (
	"reflect"
	"strings"
	"testing"

	"github.com/revcent-import/revcent-import/revcent"
)

func TestPhoneE164(t *testing.T) {
	cols := []string{"First Name", "Last Name", "Email", "Country", "Phone"}
	spec := Spec{Fields: []Field{
		{Target: "customer.phone", Column: "Phone", Transforms: []string{"phone_e164"}}, // before Country: must still see it
		{Target: "customer.first_name", Column: "First Name"}, {Target: "customer.last_name", Column: "Last Name"},
		{Target: "customer.email", Column: "Email"}, {Target: "customer.country", Column: "Country"},
	}}
	m, err := Compile(spec, cols, indexOf(cols), Options{Campaign: "X"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ country, phone, want, err string }{
		{"", "(415) 555-2671", "+14155552671", ""},
		{"United Kingdom", "020 7946 0958", "+442079460958", ""},
		{"de", "030 1234567", "+49301234567", ""},
		{"", "+44 20 7946 0958", "+442079460958", ""},
		{"", "12", "", "is not a phone number (read in region US"},
	} {
		req, errs := m.Map([]string{"A", "B", "a@b.co", tt.country, tt.phone})
		if tt.err != "" {
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.err) {
				t.Errorf("%q: %v, want %q", tt.phone, errs, tt.err)
			}
			continue
		}
		if errs != nil || req.Customer.Phone != tt.want {
			t.Errorf("%q in %q: %q %v, want %q", tt.phone, tt.country, req.Customer.Phone, errs, tt.want)
		}
	}
	if _, err := lookupTransform("phone_e164:XX"); err == nil || !strings.Contains(err.Error(), "not a region") {
		t.Errorf("bad region: %v", err)
	}
	f, _ := lookupTransform("phone_e164:gb")
	if v, r := f("020 7946 0958", &rowCtx{country: "USA"}); v != "+442079460958" || r != "" {
		t.Errorf("an explicit region wins over the row's country: %q %q", v, r)
	}
}

func TestSplitName(t *testing.T) {
	for in, want := range map[string][2]string{
		"Ada Lovelace": {"Ada", "Lovelace"}, "  Ada   King  Lovelace ": {"Ada King", "Lovelace"},
		"Lovelace, Ada": {"Ada", "Lovelace"}, "Ludwig van Beethoven": {"Ludwig", "van Beethoven"},
		"Charles de la Fontaine": {"Charles", "de la Fontaine"}, "Madonna": {"Madonna", ""},
	} {
		g, f := splitName(in)
		if g != want[0] || f != want[1] {
			t.Errorf("splitName(%q) = %q, %q; want %q", in, g, f, want)
		}
	}
	cols := []string{"Full Name", "Email"}
	spec, unmapped := Auto(cols)
	if len(unmapped) != 0 {
		t.Errorf("unmapped %q", unmapped)
	}
	m, err := Compile(spec, cols, indexOf(cols), Options{Campaign: "X"})
	if err != nil {
		t.Fatal(err)
	}
	req, errs := m.Map([]string{"Grace Brewster Hopper", "g@navy.mil"})
	if errs != nil || req.Customer.FirstName != "Grace Brewster" || req.Customer.LastName != "Hopper" {
		t.Errorf("%+v %v", req.Customer, errs)
	}
	if _, errs := m.Map([]string{"Madonna", "m@x.io"}); len(errs) != 1 || !strings.Contains(errs[0].Error(), `"Madonna" has no family name`) {
		t.Errorf("one-word name: %v", errs)
	}
	// With first and last name columns, a Name column stays unmapped.
	if _, unmapped := Auto([]string{"Name", "First Name", "Last Name"}); !reflect.DeepEqual(unmapped, []string{"Name"}) {
		t.Errorf("unmapped %q", unmapped)
	}
}

func TestUnmappedAsMetadata(t *testing.T) {
	cols := []string{"First Name", "Last Name", "Email", "Index", "Notes", "Source"}
	spec, _ := Auto(cols)
	spec.Fields = append(spec.Fields, Field{Target: "metadata.Source", Value: "crm"})
	m, err := Compile(spec, cols, indexOf(cols), Options{Campaign: "X", UnmappedAsMetadata: true})
	if err != nil {
		t.Fatal(err)
	}
	req, errs := m.Map([]string{"A", "B", "a@b.co", "7", "", "ignored"})
	want := []revcent.Metadata{{Name: "Source", Value: "crm"}, {Name: "Index", Value: "7"}}
	if errs != nil || !reflect.DeepEqual(req.Metadata, want) {
		t.Errorf("metadata %+v %v, want %+v (empty skipped, explicit entry wins)", req.Metadata, errs, want)
	}
	long := strings.Repeat("x", 300)
	if _, errs := m.Map([]string{"A", "B", "a@b.co", long, "", ""}); len(errs) != 1 || !strings.Contains(errs[0].Error(), "--truncate-metadata") {
		t.Errorf("long value: %v", errs)
	}
	m, _ = Compile(spec, cols, indexOf(cols), Options{Campaign: "X", UnmappedAsMetadata: true, TruncateMetadata: true})
	if req, errs := m.Map([]string{"A", "B", "a@b.co", long, "", ""}); errs != nil || len([]rune(req.Metadata[1].Value)) != 255 {
		t.Errorf("truncated: %v %d", errs, len(req.Metadata[1].Value))
	}
	longName := strings.Repeat("n", 101)
	cols2 := []string{"First Name", "Last Name", "Email", longName}
	spec2, _ := Auto(cols2)
	if _, err := Compile(spec2, cols2, indexOf(cols2), Options{Campaign: "X", UnmappedAsMetadata: true}); err == nil || !strings.Contains(err.Error(), "at most 100") {
		t.Errorf("long column name: %v", err)
	}
}

func TestOptionsInMappingFile(t *testing.T) {
	spec, err := Parse("m.yaml", []byte("customer.email: Email\noptions.unmapped_as_metadata: true\noptions.truncate_metadata: true\n"))
	if err != nil || !spec.UnmappedAsMetadata || !spec.TruncateMetadata {
		t.Errorf("%+v %v", spec, err)
	}
	for in, want := range map[string]string{
		"options.unmaped_as_metadata: true\n": `m.yaml line 1: unknown option "options.unmaped_as_metadata" (did you mean "options.unmapped_as_metadata"?)`,
		"options.truncate_metadata: maybe\n":  "m.yaml line 1: options.truncate_metadata wants true or false",
	} {
		if _, err := Parse("m.yaml", []byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v", in, err)
		}
	}
}

// TestStarterRoundTrips feeds the starter mapping back: it must map rows
// exactly as the auto-mapping it came from, whatever the column names.
func TestStarterRoundTrips(t *testing.T) {
	headers := [][]string{
		strings.Split("Index,Customer Id,First Name,Last Name,Company,City,Country,Phone 1,Phone 2,Email,Subscription Date,Website", ","),
		{"Full Name", "E-mail: work", "Expiry", "Card Number", "true", "#tag", " - dash", `quote "q"`, "{brace}", "a, b", "null", "10"},
	}
	for _, cols := range headers {
		auto, unmapped := Auto(cols)
		out := Starter("in.csv", auto, unmapped, nil)
		spec, err := Parse("starter.yaml", out)
		if err != nil {
			t.Fatalf("starter does not parse: %v\n%s", err, out)
		}
		for i := range spec.Fields {
			spec.Fields[i].Line = 0
		}
		if !reflect.DeepEqual(spec.Fields, auto.Fields) {
			t.Errorf("round trip:\n got %+v\nwant %+v\n%s", spec.Fields, auto.Fields, out)
		}
		for _, c := range unmapped {
			if !strings.Contains(string(out), "# metadata.") || !strings.Contains(string(out), c) && !strings.Contains(string(out), quoted(c)) {
				t.Errorf("unmapped column %q not listed:\n%s", c, out)
			}
		}
	}
}
