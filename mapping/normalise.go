package mapping

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/biter777/countries"
	"github.com/nyaruka/phonenumbers"
	"golang.org/x/text/cases"
	"golang.org/x/text/language"

	"github.com/revcent-import/revcent-import/revcent"
)

// tfunc is a compiled transform: the new value, or a reason the value is
// unusable. rc carries what a transform may need from the rest of the row.
type tfunc func(v string, rc *rowCtx) (string, string)

// rowCtx is the part of a row a transform may depend on.
type rowCtx struct {
	country string // the contact's ISO alpha-3 country, when known
}

// simple are the transforms that need neither an argument nor the row.
var simple = map[string]func(string) (string, string){
	"trim":        func(s string) (string, string) { return strings.TrimSpace(s), "" },
	"lower":       func(s string) (string, string) { return strings.ToLower(s), "" },
	"upper":       func(s string) (string, string) { return strings.ToUpper(s), "" },
	"title":       func(s string) (string, string) { return cases.Title(language.Und).String(strings.ToLower(s)), "" },
	"digits":      func(s string) (string, string) { return keepDigits(s), "" },
	"email":       normEmail,
	"country":     normCountry,
	"exp_month":   expMonth,
	"exp_year":    expYear,
	"given_name":  givenName,
	"family_name": familyName,
}

// lookupTransform compiles a transform written as name or name:argument.
func lookupTransform(spec string) (tfunc, error) {
	name, arg, hasArg := strings.Cut(strings.TrimSpace(spec), ":")
	if fn, ok := simple[name]; ok {
		if hasArg {
			return nil, fmt.Errorf("transform %q takes no argument", name)
		}
		return func(v string, _ *rowCtx) (string, string) { return fn(v) }, nil
	}
	if name == "phone_e164" {
		region := strings.ToUpper(strings.TrimSpace(arg))
		if hasArg && !phonenumbers.GetSupportedRegions()[region] {
			return nil, fmt.Errorf("transform phone_e164:%s: %q is not a region (use an ISO alpha-2 code such as US or GB)", arg, arg)
		}
		return func(v string, rc *rowCtx) (string, string) { return phoneE164(v, region, rc) }, nil
	}
	return nil, fmt.Errorf("unknown transform %q%s (known: %s)", name, suggest(name, transformNames()), strings.Join(transformNames(), ", "))
}

func transformNames() []string {
	out := make([]string, 0, len(simple)+1)
	for k := range simple {
		out = append(out, k)
	}
	out = append(out, "phone_e164")
	sort.Strings(out)
	return out
}

// phoneE164 formats a phone number as E.164 (+15551234567). A number
// without a country code is read in region (phone_e164:GB), else in the
// row's country, else as a US number. A number that cannot be a phone
// number there makes the row invalid.
func phoneE164(v, region string, rc *rowCtx) (string, string) {
	if region == "" && rc != nil && rc.country != "" {
		region = countries.ByName(rc.country).Alpha2()
	}
	if region == "" {
		region = "US"
	}
	num, err := phonenumbers.Parse(v, region)
	if err != nil || !phonenumbers.IsPossibleNumber(num) {
		return v, fmt.Sprintf("is not a phone number (read in region %s; write it with its +country code, or set phone_e164:REGION)", region)
	}
	return phonenumbers.Format(num, phonenumbers.E164), ""
}

// particles start a family name: "Ludwig van Beethoven" is Ludwig and
// van Beethoven.
var particles = map[string]bool{"van": true, "von": true, "de": true, "da": true, "di": true, "del": true, "della": true,
	"der": true, "den": true, "le": true, "la": true, "du": true, "dos": true, "das": true, "ter": true, "ten": true, "bin": true, "al": true, "st.": true}

// splitName splits a full name into given and family names: "Lovelace,
// Ada" by its comma; otherwise the last word, with any particles before
// it, is the family name.
func splitName(s string) (given, family string) {
	s = strings.Join(strings.Fields(s), " ")
	if last, first, ok := strings.Cut(s, ","); ok {
		return strings.TrimSpace(first), strings.TrimSpace(last)
	}
	words := strings.Fields(s)
	if len(words) < 2 {
		return s, ""
	}
	i := len(words) - 1
	for i > 1 && particles[strings.ToLower(words[i-1])] {
		i--
	}
	return strings.Join(words[:i], " "), strings.Join(words[i:], " ")
}

func givenName(s string) (string, string) {
	g, _ := splitName(s)
	return g, ""
}

func familyName(s string) (string, string) {
	_, f := splitName(s)
	if f == "" {
		return s, "has no family name to split off (one word)"
	}
	return f, ""
}

func keepDigits(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func normEmail(s string) (string, string) {
	s = strings.ToLower(strings.TrimSpace(s))
	if !revcent.ValidEmail(s) {
		return s, "is not an email address"
	}
	return s, ""
}

// normCountry turns an ISO code or a country's name, in any language and
// case (see lookupCountry), into an ISO 3166-1 alpha-3 code.
func normCountry(s string) (string, string) {
	if len(s) > 100 { // no country's name is this long
		return s, "is not a country (use an ISO code such as DE or DEU, or the country's name)"
	}
	return lookupCountry(s)
}

// countryAnswer is a country spelling's lookup, cached by the Mapper.
type countryAnswer struct{ a3, reason string }

// splitExpiry reads MM/YY, MM/YYYY, M/YY, MM-YY, MMYY or MM/YY with spaces.
// It returns month and year as written, or ok false.
func splitExpiry(s string) (month, year string, ok bool) {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "/-. "); i > 0 {
		return strings.TrimSpace(s[:i]), strings.Trim(s[i+1:], "/-. "), true
	}
	// Four digits are MMYY when they start with a month; else a year.
	if len(s) == 4 && keepDigits(s) == s && s[:2] >= "01" && s[:2] <= "12" {
		return s[:2], s[2:], true
	}
	return "", "", false
}

// expMonth reads a card's expiry month from M, MM or a whole expiry.
func expMonth(s string) (string, string) {
	if m, _, ok := splitExpiry(s); ok {
		s = m
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 12 || len(s) > 2 {
		return s, "is not an expiry month (1-12, MM/YY or MM/YYYY)"
	}
	return strconv.Itoa(n), ""
}

// expYear reads a card's expiry year from YY, YYYY or a whole expiry, as
// the two digits RevCent wants.
func expYear(s string) (string, string) {
	if _, y, ok := splitExpiry(s); ok {
		s = y
	}
	n, err := strconv.Atoi(s)
	switch {
	case err != nil || n < 0:
		return s, "is not an expiry year (YY, YYYY, MM/YY or MM/YYYY)"
	case len(s) == 4 && n >= 2000 && n <= 2099:
		n -= 2000
	case len(s) != 2 && len(s) != 1:
		return s, "is not an expiry year (YY, YYYY, MM/YY or MM/YYYY)"
	}
	return fmt.Sprintf("%02d", n), ""
}

// cardNumber strips spaces and dashes and checks length and Luhn sum.
func cardNumber(s string) (string, string) {
	d := strings.NewReplacer(" ", "", "-", "").Replace(s)
	if keepDigits(d) != d || len(d) < 12 || len(d) > 19 {
		return d, "is not a card number (12-19 digits)"
	}
	if !revcent.Luhn(d) {
		return d, "is not a valid card number (Luhn check failed)"
	}
	return d, ""
}

func cardCode(s string) (string, string) {
	if keepDigits(s) != s || len(s) < 3 || len(s) > 4 {
		return s, "is not a card code (3 or 4 digits)"
	}
	return s, ""
}

// Mask hides all but the last four characters of a card number or code.
func Mask(s string) string { return revcent.Mask(s) }

// NormalizeEmail normalises an email as the mapping does (trimmed, lower
// case, checked): the ledger's key for a person. The second result is why
// it is refused, or "".
func NormalizeEmail(s string) (string, string) { return normEmail(s) }
