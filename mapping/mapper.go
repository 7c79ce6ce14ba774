package mapping

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/revcent-import/revcent-import/revcent"
)

// ErrNoCampaign means neither --campaign nor the mapping supplies one.
var ErrNoCampaign = errors.New("no campaign: pass --campaign NAME or map campaign in the mapping file")

// FieldError is one problem with one value of one row.
type FieldError struct {
	Column string // the source column; "" for a constant
	Target string // the target path
	Value  string // the offending value; card numbers masked, card codes hidden
	Reason string
}

func (e FieldError) Error() string {
	where := fmt.Sprintf("column %q", e.Column)
	if e.Column == "" {
		where = e.Target
	}
	if e.Value == "" {
		return where + " " + e.Reason
	}
	return fmt.Sprintf("%s: %q %s", where, e.Value, e.Reason)
}

// Options adjust compilation.
type Options struct {
	// Campaign, when set, is sent on every row and overrides the mapping.
	Campaign string
	// Now, when set, makes a card whose expiry has passed invalid.
	Now time.Time
	// UnmappedAsMetadata sends every column no field uses as a metadata
	// entry named after the column (empty values skipped).
	UnmappedAsMetadata bool
	// TruncateMetadata cuts metadata values to RevCent's 255 characters
	// instead of making the row invalid.
	TruncateMetadata bool
	// MaxFieldLength is the most characters a customer, bill_to or card
	// field may hold (DefaultMaxFieldLength when 0): RevCent's schema
	// sets no limit, so an absurd value (a 2 MB street) is refused here
	// rather than by RevCent. The sandbox holds to the same default.
	MaxFieldLength int
}

// DefaultMaxFieldLength is Options.MaxFieldLength's default: 255
// characters, the common column size, far above any real name or address.
const DefaultMaxFieldLength = 255

type compiled struct {
	Field
	index int // column position; -1 for a constant
	target
	transforms []tfunc
	needsRow   bool   // a transform reads the row (phone_e164): run it after the others
	metadata   string // metadata name, for metadata.<name>
}

// Mapper turns rows into requests. It is not safe for concurrent use.
type Mapper struct {
	fields   []compiled
	columns  map[string]string // required target -> the column feeding it
	now      time.Time
	country  map[string]countryAnswer // each spelling looked up once
	truncate bool
	maxLen   int
}

// addUnmapped adds a metadata field for every column that no field of spec
// reads and no explicit metadata entry names.
func (m *Mapper) addUnmapped(spec Spec, columns []string, index func(string) int) []error {
	used := map[string]bool{}
	for _, f := range spec.Fields {
		if f.Column != "" {
			used[f.Column] = true
		}
		if name, ok := strings.CutPrefix(f.Target, "metadata."); ok {
			used["\x00"+name] = true
		}
	}
	var errs []error
	for _, c := range columns {
		if used[c] || used["\x00"+c] {
			continue
		}
		if n := utf8.RuneCountInString(c); n > 100 {
			errs = append(errs, fmt.Errorf("column %q cannot be sent as metadata: its name has %d characters, RevCent takes at most 100 (map it, or shorten the header)", c, n))
			continue
		}
		m.fields = append(m.fields, compiled{Field: Field{Target: "metadata." + c, Column: c}, index: index(c), metadata: c})
	}
	return errs
}

// Compile resolves spec against an input's columns. index returns a
// column's position in a row's values, or -1 when the input has no such
// column; columns are the input's names, used for suggestions. Unknown
// columns, unknown transforms and missing required targets are errors
// naming the mapping file and line.
func Compile(spec Spec, columns []string, index func(string) int, opts Options) (*Mapper, error) {
	m := &Mapper{columns: map[string]string{}, now: opts.Now, country: map[string]countryAnswer{}}
	where := func(f Field) string {
		if spec.Name == "" || f.Line == 0 {
			return fmt.Sprintf("auto-mapping of %q", f.Column)
		}
		return fmt.Sprintf("%s line %d", spec.Name, f.Line)
	}
	var errs []error
	hasCampaign := opts.Campaign != ""
	for _, f := range spec.Fields {
		if f.Target == "campaign" && opts.Campaign != "" {
			continue // --campaign overrides
		}
		if err := checkTarget(f.Target); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where(f), err))
			continue
		}
		c := compiled{Field: f, index: -1}
		if name, ok := strings.CutPrefix(f.Target, "metadata."); ok {
			c.metadata = name
		} else {
			c.target = targets[f.Target]
		}
		if f.Column != "" {
			if c.index = index(f.Column); c.index < 0 {
				errs = append(errs, fmt.Errorf("%s: %s: the input has no column %q%s", where(f), f.Target, f.Column, suggest(f.Column, columns)))
				continue
			}
		}
		for _, t := range f.Transforms {
			fn, err := lookupTransform(t)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where(f), err))
				continue
			}
			c.transforms = append(c.transforms, fn)
			c.needsRow = c.needsRow || strings.HasPrefix(t, "phone_e164")
		}
		if f.Target == "campaign" {
			hasCampaign = true
		}
		m.columns[f.Target] = f.Column
		m.fields = append(m.fields, c)
	}
	if opts.Campaign != "" {
		m.fields = append(m.fields, compiled{Field: Field{Target: "campaign", Value: opts.Campaign}, index: -1, target: targets["campaign"]})
	}
	if opts.UnmappedAsMetadata || spec.UnmappedAsMetadata {
		errs = append(errs, m.addUnmapped(spec, columns, index)...)
	}
	// Transforms that read the row run once the rest of it is mapped.
	sort.SliceStable(m.fields, func(i, j int) bool { return !m.fields[i].needsRow && m.fields[j].needsRow })
	m.truncate = opts.TruncateMetadata || spec.TruncateMetadata
	m.maxLen = opts.MaxFieldLength
	if m.maxLen <= 0 {
		m.maxLen = DefaultMaxFieldLength
	}
	for _, t := range []string{"customer.first_name", "customer.last_name", "customer.email"} {
		if _, ok := m.columns[t]; !ok {
			errs = append(errs, fmt.Errorf("nothing maps to %s, which RevCent requires: name a column for it in the mapping file, or rename the column (columns: %s)",
				t, strings.Join(columns, ", ")))
		}
	}
	if !hasCampaign {
		errs = append(errs, ErrNoCampaign)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

// Map builds the request for one row's values (in the input's column
// order). A row with problems yields every FieldError found; the request
// is then incomplete and must not be sent.
func (m *Mapper) Map(values []string) (revcent.CreateCustomerRequest, []FieldError) {
	var req revcent.CreateCustomerRequest
	var errs []FieldError
	for i := range m.fields {
		f := &m.fields[i]
		v := f.Value
		if f.index >= 0 {
			if f.index < len(values) {
				v = values[f.index]
			} else {
				v = ""
			}
		}
		v = unguard(strings.TrimSpace(v))
		if v == "" {
			v = f.Default
		}
		if v == "" {
			continue
		}
		reason := ""
		if len(f.transforms) > 0 {
			rc := rowCtx{country: req.Customer.Country}
			if strings.HasPrefix(f.Target, "bill_to.") && req.BillTo != nil && req.BillTo.Country != "" {
				rc.country = req.BillTo.Country
			}
			for _, t := range f.transforms {
				if v, reason = t(v, &rc); reason != "" {
					break
				}
			}
		}
		if reason == "" && v != "" {
			v, reason = m.normalise(f.kind, v)
		}
		if reason == "" {
			reason = checkText(v, f.metadata == "", m.maxLen)
		}
		if reason != "" {
			errs = append(errs, fieldError(f, v, reason))
			continue
		}
		if v == "" {
			continue
		}
		if f.metadata != "" {
			if n := utf8.RuneCountInString(v); n > 255 && m.truncate {
				v = string([]rune(v)[:255])
			} else if n > 255 {
				errs = append(errs, FieldError{Column: f.Column, Target: f.Target,
					Value: string([]rune(v)[:32]) + "...", Reason: fmt.Sprintf("is %d characters; RevCent takes at most 255 in a metadata value (or pass --truncate-metadata)", n)})
				continue
			}
			req.Metadata = append(req.Metadata, revcent.Metadata{Name: f.metadata, Value: v})
			continue
		}
		f.set(&req, v)
	}
	errs = m.check(&req, errs)
	return req, errs
}

// checkText refuses what no field of a customer holds: control
// characters (NUL and the like; tabs and line breaks pass), and, outside
// metadata (which has its own limit), more than max characters.
func checkText(v string, limited bool, max int) string {
	for _, r := range v {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return fmt.Sprintf("contains a control character (U+%04X): remove it", r)
		}
	}
	if limited && max > 0 {
		if n := utf8.RuneCountInString(v); n > max {
			return fmt.Sprintf("is %d characters long; a customer field takes at most %d (raise it with --max-field-length)", n, max)
		}
	}
	return ""
}

// phoneExt is an extension at a phone number's end: "x12", "ext. 12".
var phoneExt = regexp.MustCompile(`(?i)\s*(ext\.?|extension|x)\s*\d+$`)

// checkPhone refuses what cannot be a phone number: no digits ("n/a"), or
// letters ("-1e400", a spreadsheet's number gone wrong). Digits, spaces,
// + - ( ) . / and an extension pass as written.
func checkPhone(v string) string {
	rest := v
	if strings.ContainsAny(v, "xXeE") { // an extension, perhaps: the regexp only then
		rest = phoneExt.ReplaceAllString(v, "")
	}
	digits := 0
	for _, r := range rest {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case strings.ContainsRune(" +-().,/#*\t", r):
		default:
			return "is not a phone number: only digits, spaces, + - ( ) . / and an extension may be in one"
		}
	}
	if digits < 3 {
		return "is not a phone number: it has fewer than 3 digits"
	}
	return ""
}

// unguard strips the apostrophe that Shopify and spreadsheet users put
// before digits or a "+" to keep Excel from reading them as a number
// ("'0123", "'+44 20 7946 0000"), and the one report's exports put before
// a cell a spreadsheet would run as a formula ("'=", "'-", "'@"; see
// results.Neutralise): it is not part of the value.
func unguard(v string) string {
	if len(v) > 1 && v[0] == '\'' {
		switch c := v[1]; {
		case c >= '0' && c <= '9', c == '+', c == '-', c == '=', c == '@':
			return v[1:]
		case c == '\t' || c == '\r':
			return strings.TrimSpace(v[1:])
		}
	}
	return v
}

// CardColumns returns the columns spec maps to a card number and to a
// card code: exports mask the one and blank the other.
func CardColumns(spec Spec) (numbers, codes []string) {
	for _, f := range spec.Fields {
		if f.Column == "" {
			continue
		}
		switch f.Target {
		case "payment.credit_card.card_number":
			numbers = append(numbers, f.Column)
		case "payment.credit_card.card_code":
			codes = append(codes, f.Column)
		}
	}
	return numbers, codes
}

// normalise applies what is always applied to a kind of target.
func (m *Mapper) normalise(k kind, v string) (string, string) {
	switch k {
	case emailKind:
		return normEmail(v)
	case countryKind:
		// A file repeats a few spellings: each is looked up once.
		if c, ok := m.country[v]; ok {
			if c.reason != "" {
				return v, c.reason
			}
			return c.a3, ""
		}
		a3, reason := normCountry(v)
		if len(m.country) < 4096 {
			m.country[v] = countryAnswer{a3, reason}
		}
		if reason != "" {
			return v, reason
		}
		return a3, ""
	case phoneKind:
		return v, checkPhone(v)
	case cardNumberKind:
		return cardNumber(v)
	case cardCodeKind:
		return cardCode(v)
	case expMonthKind:
		return expMonth(v)
	case expYearKind:
		return expYear(v)
	}
	return v, ""
}

// check applies the rules that span fields: required fields, bill_to
// completed from the customer, card expiry in the past.
func (m *Mapper) check(req *revcent.CreateCustomerRequest, errs []FieldError) []FieldError {
	missing := func(target, have string) {
		if have == "" && !failed(errs, target) {
			errs = append(errs, FieldError{Column: m.columns[target], Target: target,
				Reason: fmt.Sprintf("is empty; RevCent requires %s", strings.ReplaceAll(strings.TrimPrefix(target, "customer."), "_", " "))})
		}
	}
	missing("customer.first_name", req.Customer.FirstName)
	missing("customer.last_name", req.Customer.LastName)
	missing("customer.email", req.Customer.Email)
	if req.Campaign == "" {
		errs = append(errs, FieldError{Column: m.columns["campaign"], Target: "campaign", Reason: "is empty; pass --campaign or fill the column"})
	}
	if b := req.BillTo; b != nil {
		// Only some bill_to fields mapped: the rest of the required ones
		// come from the customer.
		if b.FirstName == "" {
			b.FirstName = req.Customer.FirstName
		}
		if b.LastName == "" {
			b.LastName = req.Customer.LastName
		}
		if b.Email == "" {
			b.Email = req.Customer.Email
		}
	}
	if p := req.Payment; p != nil && p.CreditCard != nil && !m.now.IsZero() {
		cc := p.CreditCard
		if cc.ExpMonth > 0 && cc.ExpYear > 0 {
			y, mo := m.now.Year()%100, int(m.now.Month())
			if cc.ExpYear < y || (cc.ExpYear == y && cc.ExpMonth < mo) {
				errs = append(errs, FieldError{Column: m.columns["payment.credit_card.exp_year"], Target: "payment.credit_card.exp_year",
					Value: fmt.Sprintf("%02d/%02d", cc.ExpMonth, cc.ExpYear), Reason: "has passed: the card is expired"})
			}
		}
	}
	return errs
}

func failed(errs []FieldError, target string) bool {
	for _, e := range errs {
		if e.Target == target {
			return true
		}
	}
	return false
}

// fieldError reports a value, never revealing a card number beyond its
// last four digits or any part of a card code.
func fieldError(f *compiled, v, reason string) FieldError {
	switch f.kind {
	case cardNumberKind:
		v = Mask(v)
	case cardCodeKind:
		v = strings.Repeat("*", len(v))
	}
	if utf8.RuneCountInString(v) > 60 { // a message quotes the start of a long value
		v = string([]rune(v)[:60]) + "..."
	}
	// Control characters are shown, not sent to a terminal.
	v = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return '\uFFFD'
		}
		return r
	}, v)
	if f.index < 0 {
		return FieldError{Target: f.Target, Value: v, Reason: reason}
	}
	return FieldError{Column: f.Column, Target: f.Target, Value: v, Reason: reason}
}
