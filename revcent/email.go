package revcent

import "strings"

// ValidEmail reports whether s passes the importer's reading of the
// CreateCustomer schema's "email" format: one @, a local part and a dotted
// domain, no spaces, quotes or brackets, no empty dot-separated parts.
// The sandbox applies the same rule, so a row that passes validation is
// not refused for its email.
func ValidEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at != strings.LastIndexByte(s, '@') || strings.ContainsAny(s, " \t\r\n<>()[],;:\"\\") {
		return false
	}
	local, domain := s[:at], s[at+1:]
	dot := strings.LastIndexByte(domain, '.')
	return dot > 0 && dot < len(domain)-1 &&
		!strings.Contains(domain, "..") && !strings.HasPrefix(domain, ".") &&
		!strings.HasPrefix(local, ".") && !strings.HasSuffix(local, ".") && !strings.Contains(local, "..")
}
