package revcent

import "testing"

func TestScrub(t *testing.T) {
	for _, tc := range []struct{ in, number, code, want string }{
		{"card 4111111111111111 with cvv 737 declined", "4111111111111111", "737", "card ************1111 with cvv *** declined"},
		{"line 1737: cvv 737", "", "737", "line 1737: cvv ***"},
		{"echo 4242 4242 4242 4242 back", "", "", "echo **** **** **** 4242 back"},
		{"order 1234567890123 is not a card", "", "", "order 1234567890123 is not a card"}, // fails Luhn
		{"HTTP 400 invalid_request", "4111111111111111", "400", "HTTP *** invalid_request"},
		{"", "4111111111111111", "123", ""},
	} {
		if got := Scrub(tc.in, tc.number, tc.code); got != tc.want {
			t.Errorf("Scrub(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
