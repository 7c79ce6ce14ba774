package mapping

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/biter777/countries"
	"golang.org/x/text/cases"
	"golang.org/x/text/language"

	"github.com/revcent-import/revcent-import/revcent"
)

// transforms are the named transforms a mapping entry may list. Each
// returns the new value or a reason the value is unusable.
var transforms = map[string]func(string) (string, string){
	"trim":      func(s string) (string, string) { return strings.TrimSpace(s), "" },
	"lower":     func(s string) (string, string) { return strings.ToLower(s), "" },
	"upper":     func(s string) (string, string) { return strings.ToUpper(s), "" },
	"title":     func(s string) (string, string) { return cases.Title(language.Und).String(strings.ToLower(s)), "" },
	"digits":    func(s string) (string, string) { return keepDigits(s), "" },
	"email":     normEmail,
	"country":   normCountry,
	"exp_month": expMonth,
	"exp_year":  expYear,
}

func transformNames() []string {
	out := make([]string, 0, len(transforms))
	for k := range transforms {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
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

// normCountry turns an alpha-2 code, an alpha-3 code or an English name, in
// any case, into an ISO 3166-1 alpha-3 code.
func normCountry(s string) (string, string) {
	// No country name is this long, and the library's lookup is quadratic
	// in the input's length.
	if len(s) > 64 {
		return s, "is not a country (use ISO alpha-2/alpha-3 or an English name)"
	}
	c := countries.ByName(s)
	if a3 := c.Alpha3(); c != countries.Unknown && c.IsValid() && len(a3) == 3 {
		return a3, ""
	}
	return s, "is not a country (use ISO alpha-2/alpha-3 or an English name)"
}

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
	if !luhn(d) {
		return d, "is not a valid card number (Luhn check failed)"
	}
	return d, ""
}

func luhn(d string) bool {
	sum, double := 0, false
	for i := len(d) - 1; i >= 0; i-- {
		n := int(d[i] - '0')
		if double {
			if n *= 2; n > 9 {
				n -= 9
			}
		}
		sum += n
		double = !double
	}
	return sum%10 == 0
}

func cardCode(s string) (string, string) {
	if keepDigits(s) != s || len(s) < 3 || len(s) > 4 {
		return s, "is not a card code (3 or 4 digits)"
	}
	return s, ""
}

// Mask hides all but the last four characters of a card number or code.
func Mask(s string) string {
	if len(s) <= 4 {
		return strings.Repeat("*", len(s))
	}
	return strings.Repeat("*", len(s)-4) + s[len(s)-4:]
}
