package revcent

import (
	"strings"
)

// Scrub removes card data from text that is about to be recorded or
// logged: a server's error message may quote the request back, as many
// payment APIs do. It masks the given card number wherever it appears
// (to its last four digits), hides the card code where it stands alone
// (not inside a longer number: "line 123" keeps its digits only when the
// code is not 123 or the digits run on), and masks anything shaped like a
// card number: 13 to 19 digits, with single spaces or dashes between them,
// that pass the Luhn check.
func Scrub(s, cardNumber, cardCode string) string {
	if s == "" {
		return s
	}
	if len(cardNumber) >= 4 && strings.Contains(s, cardNumber) {
		s = strings.ReplaceAll(s, cardNumber, Mask(cardNumber))
	}
	if len(cardCode) >= 3 {
		s = hideToken(s, cardCode)
	}
	return maskCardShaped(s)
}

// ScrubRequest is Scrub with the card of req.
func ScrubRequest(s string, req *CreateCustomerRequest) string {
	var number, code string
	if req != nil && req.Payment != nil && req.Payment.CreditCard != nil {
		number, code = req.Payment.CreditCard.CardNumber, req.Payment.CreditCard.CardCode
	}
	return Scrub(s, number, code)
}

// Mask hides all but the last four characters of a card number or code.
func Mask(s string) string {
	if len(s) <= 4 {
		return strings.Repeat("*", len(s))
	}
	return strings.Repeat("*", len(s)-4) + s[len(s)-4:]
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// hideToken replaces each occurrence of tok that is not part of a longer
// run of digits with asterisks.
func hideToken(s, tok string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], tok)
		if j < 0 {
			b.WriteString(s[i:])
			break
		}
		j += i
		end := j + len(tok)
		alone := (j == 0 || !isDigit(s[j-1])) && (end == len(s) || !isDigit(s[end]))
		b.WriteString(s[i:j])
		if alone {
			b.WriteString(strings.Repeat("*", len(tok)))
		} else {
			b.WriteString(tok)
		}
		i = end
	}
	return b.String()
}

// maskCardShaped masks runs of 13-19 digits, single spaces or dashes
// allowed between digits, that pass the Luhn check.
func maskCardShaped(s string) string {
	digitsIn := 0
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			digitsIn++
		}
	}
	if digitsIn < 13 {
		return s
	}
	b := []byte(s)
	for i := 0; i < len(b); {
		if !isDigit(b[i]) || (i > 0 && isDigit(b[i-1])) {
			i++
			continue
		}
		// A run from i: digits, with single separators between them.
		var pos []int
		j := i
		for j < len(b) {
			if isDigit(b[j]) {
				pos = append(pos, j)
				j++
				continue
			}
			if (b[j] == ' ' || b[j] == '-') && j+1 < len(b) && isDigit(b[j+1]) && len(pos) > 0 {
				j++
				continue
			}
			break
		}
		if n := len(pos); n >= 13 && n <= 19 {
			d := make([]byte, n)
			for k, p := range pos {
				d[k] = b[p]
			}
			if Luhn(string(d)) {
				for _, p := range pos[:n-4] {
					b[p] = '*'
				}
			}
		}
		i = j
	}
	return string(b)
}

// Luhn reports whether the digits d pass the Luhn check, as every card
// number does.
func Luhn(d string) bool {
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
