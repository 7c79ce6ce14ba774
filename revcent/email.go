package revcent

import "strings"

// ValidEmail reports whether s is an email address as CreateCustomer's
// schema means it (format "email": RFC 5321's mailbox, as JSON Schema
// validators read it), or stricter: an ASCII dot-atom local part of at
// most 64 characters, an @, and a host name of dotted labels (letters,
// digits and inner hyphens, 63 characters each, 253 in all, the last not
// all digits); 254 characters at most. Quoted local parts, address
// literals and internationalised addresses (josé@example.com, which the
// schema's "email" does not take; "idn-email" would) are refused. The
// sandbox applies the same rule, so that validate and import agree.
func ValidEmail(s string) bool {
	if len(s) > 254 {
		return false
	}
	at := strings.IndexByte(s, '@')
	if at <= 0 || at != strings.LastIndexByte(s, '@') {
		return false
	}
	local, domain := s[:at], s[at+1:]
	return len(local) <= 64 && dotAtom(local) && hostName(domain)
}

// dotAtom: atext runs joined by single dots (RFC 5322 3.2.3).
func dotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.':
		case strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// hostName: two or more labels (RFC 1123), the top one not numeric.
func hostName(s string) bool {
	if len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return strings.Trim(labels[len(labels)-1], "0123456789") != ""
}
