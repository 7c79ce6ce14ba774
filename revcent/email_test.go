package revcent

import "testing"

func TestValidEmail(t *testing.T) {
	for s, want := range map[string]bool{
		"a@b.co": true, "first.last+tag@sub.example.org": true, "o'brien@example.ie": true,
		"": false, "a@b": false, "@b.co": false, "a@@b.co": false, "a b@c.co": false, "a@b.co ": false,
		"a@b..co": false, "a@.co": false, "a@b.": false, ".a@b.co": false, "a.@b.co": false, "a..b@c.co": false,
		"Ada <a@b.co>": false, "a@b,co": false,
	} {
		if ValidEmail(s) != want {
			t.Errorf("ValidEmail(%q) = %v, want %v", s, !want, want)
		}
	}
}
