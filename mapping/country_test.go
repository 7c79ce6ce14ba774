package mapping

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/biter777/countries"
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
)

// Two spelling lists measure the country lookup. Issue 11's bar is at
// least 95% found and none wrong; a refusal (unknown, or ambiguous) is a
// miss, never a wrong answer.
//
// country_spellings.tsv (3,011 spellings) was built in stop 3 from Debian's
// iso-codes (ISO 3166-1 names and their translations into 20 languages) and
// spellings seen in real exports. Since then iso-codes' translations are
// one of the lookup's sources, so this list is no longer independent: it
// guards against regressions (99.2% found).
//
// country_spellings_mledoze.tsv (8,884 spellings) is the independent one:
// mledoze/countries, a different project, with English, native and 24
// languages' common and official names and its alternate spellings.
// Measured: 79.4% overall; common names 98.8% English, 92.0% in 24
// languages, 77.4% native; official names 89.1% English, 69.6% translated,
// 55.1% native; romanised alternates 41.2%. None wrong; two spellings where
// the list contradicts CLDR are counted as disputed (see countCountries).
// The floors hold these figures, so that a change can only raise them.

func TestCountrySpellings(t *testing.T) {
	res := countCountries(t, "testdata/country_spellings.tsv", func(src string) string {
		switch {
		case strings.HasPrefix(src, "iso-codes en"):
			return "ISO English names, official and common"
		case src == "real exports":
			return "spellings seen in real exports"
		}
		return "translations of ISO's short names (20 languages)"
	})
	res.atLeast(t, "", 0.99)
	res.atLeast(t, "ISO English names, official and common", 0.995)
}

func TestCountrySpellingsIndependent(t *testing.T) {
	res := countCountries(t, "testdata/country_spellings_mledoze.tsv", func(src string) string {
		w := strings.Fields(src)
		switch {
		case src == "alternate spelling":
			return src
		case w[0] == "en":
			return "English " + w[1]
		case w[0] == "native":
			return "native " + w[2]
		}
		return "translated " + w[1]
	})
	res.atLeast(t, "", 0.79)
	res.atLeast(t, "English common", 0.985)
	res.atLeast(t, "English official", 0.89)
	res.atLeast(t, "translated common", 0.919)
	res.atLeast(t, "native common", 0.77)
	if res.disputed > 2 {
		t.Errorf("%d spellings where the list contradicts CLDR, was 2", res.disputed)
	}
}

type countryTally struct {
	total, hit, disputed int
	by                   map[string][2]int // category -> {hits, spellings}
}

func (c countryTally) atLeast(t *testing.T, category string, floor float64) {
	t.Helper()
	hit, n := c.hit, c.total
	if category != "" {
		hit, n = c.by[category][0], c.by[category][1]
	}
	if n == 0 || float64(hit)/float64(n) < floor {
		t.Errorf("%q: %d of %d found, want at least %.1f%%", category, hit, n, 100*floor)
	}
}

// countCountries looks up every spelling of a list (spelling, alpha-3,
// source) and fails on a wrong answer. An answer that differs from the
// list's but is the country CLDR itself gives that spelling to, in some
// language, is disputed rather than wrong: "多米尼加共和国" is CLDR's Chinese
// for the Dominican Republic, which mledoze gives to Dominica.
func countCountries(t *testing.T, path string, category func(source string) string) countryTally {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res := countryTally{by: map[string][2]int{}}
	var missed []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		p := strings.Split(line, "\t")
		if len(p) != 3 {
			t.Fatalf("%s: %q is not spelling, code, source", path, line)
		}
		cat := category(p[2])
		c := res.by[cat]
		c[1]++
		res.total++
		got, reason := normCountry(p[0])
		switch {
		case reason == "" && got == p[1]:
			c[0]++
			res.hit++
		case reason == "" && cldrGives(p[0], got):
			res.disputed++
			t.Logf("disputed: %s: the list says %s, CLDR %s", p[0], p[1], got)
		case reason == "":
			t.Errorf("wrong: %s -> %s, want %s (%s)", p[0], got, p[1], p[2])
		default:
			missed = append(missed, p[0]+" ("+p[1]+", "+p[2]+"): "+reason)
		}
		res.by[cat] = c
	}
	t.Logf("%s: %d of %d found (%.1f%%), %d refused, %d disputed", path, res.hit, res.total,
		100*float64(res.hit)/float64(res.total), len(missed), res.disputed)
	for cat, c := range res.by {
		t.Logf("  %s: %d of %d (%.1f%%)", cat, c[0], c[1], 100*float64(c[0])/float64(c[1]))
	}
	for i, m := range missed {
		if i < 10 || os.Getenv("COUNTRY_MISSES") != "" {
			t.Logf("refused: %s", m)
		}
	}
	return res
}

// cldrGives reports whether CLDR, in any language, names the country a3
// with spelling.
func cldrGives(spelling, a3 string) bool {
	region, err := language.ParseRegion(countries.ByName(a3).Alpha2())
	if err != nil {
		return false
	}
	for _, tag := range display.Supported.Tags() {
		if n := display.Regions(tag); n != nil && foldCountry(n.Name(region)) == foldCountry(spelling) {
			return true
		}
	}
	return false
}

// TestAmbiguousCountryIsRefused: a spelling that names two countries is
// refused with both named.
func TestAmbiguousCountryIsRefused(t *testing.T) {
	for spelling, ix := range countryIndex() {
		if len(ix) > 1 {
			if _, reason := lookupCountry(spelling); !strings.Contains(reason, "could be any of") {
				t.Errorf("%q names %v but was not refused: %q", spelling, ix, reason)
			}
			return
		}
	}
	t.Skip("no ambiguous spelling in the index")
}
