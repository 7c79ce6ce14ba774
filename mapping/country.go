package mapping

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"

	"github.com/biter777/countries"
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
	"golang.org/x/text/unicode/norm"
)

// Countries are read from what real exports write: ISO codes, English
// names, names in the customer's own language ("España", "Deutschland",
// "Brasil"), ISO's official names ("Argentine Republic"), and the usual
// variants ("The Netherlands", "Trinidad & Tobago", "Korea, South", "Hong
// Kong SAR"). The names come from CLDR in every language it has (through
// golang.org/x/text/language/display) and from the ISO data of
// biter777/countries. A spelling that names two countries is refused with
// both named, never guessed.

// countryIndex maps a spelling, folded (see foldCountry), to the alpha-3
// codes it names: one, or several when it is ambiguous. englishIndex is
// its small first tier, the ISO English names and the aliases, built in a
// millisecond: most exports need nothing else, and the whole index (CLDR
// in every language, about 24,000 names) takes a few hundred.
var (
	fullIndex    = sync.OnceValue(func() countryNames { return buildCountryIndex(true) })
	countryIndex = func() map[string][]string { return fullIndex().codes }
	englishIndex = sync.OnceValue(func() map[string][]string { return buildCountryIndex(false).codes })
)

// countryNames is the index and, beside it, the spellings that a single
// language attests, in CLDR or iso-codes, and English does not. Those are
// the least checked: where such a name is also the stem of another
// country's name it is refused as ambiguous. Arabic iso-codes gives
// "المالديف" to Moldova (inside "جزر المالديف", the Maldives); Kirundi's
// CLDR gives "Guyane" to Guyana (French's "Guyane française" is French
// Guiana, which French speakers write "Guyane").
type countryNames struct {
	codes          map[string][]string
	translatedOnly map[string]bool
}

// stemIndex maps the first or last words of a name to the codes of the
// names that start or end with them: "guinea" to GNQ, PNG and GNB.
var stemIndex = sync.OnceValue(buildStems)

// officialForms are the words official names put before "of": "Republic
// of", "Kingdom of the", "Plurinational State of", "Grand Duchy of".
var officialWords = map[string]bool{
	"republic": true, "kingdom": true, "principality": true, "state": true, "states": true, "commonwealth": true,
	"union": true, "sultanate": true, "grand": true, "duchy": true, "federation": true, "islamic": true,
	"people's": true, "peoples": true, "democratic": true, "federal": true, "socialist": true, "arab": true,
	"plurinational": true, "hashemite": true, "united": true, "federative": true, "bolivarian": true,
	"oriental": true, "independent": true, "co-operative": true, "cooperative": true, "territory": true,
	"special": true, "administrative": true, "region": true, "sovereign": true, "the": true, "of": true,
	"lao": true, "popular": true, "confederation": true, "emirate": true, "emirates": true,
}

// countryAliases are spellings seen in real exports that neither CLDR nor
// the ISO data has: official names built on an adjective, which no rule
// can take apart, and common short forms. Each is checked against the
// spelling list in the tests.
var countryAliases = map[string]string{
	"argentine republic": "ARG", "french republic": "FRA", "italian republic": "ITA", "hellenic republic": "GRC",
	"lebanese republic": "LBN", "gabonese republic": "GAB", "kyrgyz republic": "KGZ", "swiss confederation": "CHE",
	"united mexican states": "MEX", "czech republic": "CZE", "slovak republic": "SVK", "togolese republic": "TGO",
	"syrian arab republic": "SYR", "arab republic of egypt": "EGY", "oriental republic of uruguay": "URY",
	"korea south": "KOR", "south korea": "KOR", "korea north": "PRK", "north korea": "PRK", "korea republic of": "KOR",
	"republic of korea": "KOR", "korea democratic people's republic of": "PRK", "democratic people's republic of korea": "PRK",
	"congo drc": "COD", "drc": "COD", "dr congo": "COD", "democratic republic of the congo": "COD", "congo democratic republic of the": "COD",
	"congo republic": "COG", "republic of the congo": "COG", "congo brazzaville": "COG", "congo kinshasa": "COD",
	"turkiye": "TUR", "holland": "NLD", "great britain": "GBR", "britain": "GBR", "uk": "GBR", "england": "GBR",
	"scotland": "GBR", "wales": "GBR", "northern ireland": "GBR", "usa": "USA", "us": "USA", "u s a": "USA", "u s": "USA",
	"united states of america": "USA", "united kingdom of great britain and northern ireland": "GBR", "america": "USA", "uae": "ARE", "ivory coast": "CIV", "cote divoire": "CIV",
	"cape verde": "CPV", "swaziland": "SWZ", "macedonia": "MKD", "burma": "MMR", "east timor": "TLS",
	"vatican": "VAT", "vatican city": "VAT", "holy see": "VAT", "russia": "RUS", "vietnam": "VNM", "viet nam": "VNM",
	"laos": "LAO", "syria": "SYR", "iran": "IRN", "bolivia": "BOL", "venezuela": "VEN", "tanzania": "TZA",
	"moldova": "MDA", "micronesia": "FSM", "palestine": "PSE", "brunei": "BRN", "taiwan": "TWN",
	"eswatini": "SWZ", "kingdom of eswatini": "SWZ", "north macedonia": "MKD", "czechia": "CZE",
}

// foldCountry folds a spelling for lookup: lower case, accents and
// punctuation gone, "&" read as "and", spaces single.
func foldCountry(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if !ascii {
		// Decomposed, without the combining marks: "é" is "e". Both sides
		// of a lookup are folded alike, so nothing is recomposed.
		s = norm.NFD.String(s)
	}
	s = strings.ToLower(s)
	var b strings.Builder
	space := false
	for _, r := range s {
		r = foldArabic(r)
		switch {
		case r == 0 || unicode.Is(unicode.Mn, r):
			continue
		case r == '&':
			b.WriteString(" and ")
			space = true
			continue
		case r == '\'' || r == '’' || r == '.':
			continue // "Côte d'Ivoire", "U.S.A."
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteRune(r)
			space = false
		default:
			space = true
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// foldArabic folds the Arabic script's letter variants as search engines
// do: Arabic and Persian kaf and yeh, hamza on alef, teh marbuta; tatweel
// and the zero-width joiners are dropped (returned as 0).
func foldArabic(r rune) rune {
	switch r {
	case 'ك':
		return 'ک'
	case 'ي', 'ى':
		return 'ی'
	case 'أ', 'إ', 'آ', 'ٱ':
		return 'ا'
	case 'ة':
		return 'ه'
	case 'ـ', '\u200c', '\u200d':
		return 0
	}
	return r
}

// variants returns the other spellings a name is written as: without a
// leading "the", "X, Y" as "Y X", without "SAR" or "SAR China", and with
// " and " for "&" (folding does that).
func variants(folded string) []string {
	out := []string{folded}
	add := func(v string) {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	add(strings.TrimPrefix(folded, "the "))
	for _, suffix := range []string{" sar china", " sar"} {
		add(strings.TrimSuffix(folded, suffix))
	}
	return out
}

// looseVariants are the last spellings tried: with hyphens and spaces
// closed up ("Bouvet-Insel" for "Bouvetinsel"). A parenthesis is never
// dropped: "Saint Martin (Dutch part)" is not Saint Martin.
func looseVariants(s string) []string {
	var out []string
	if strings.ContainsAny(s, "-") {
		out = append(out, strings.ReplaceAll(foldCountry(strings.ReplaceAll(s, "-", "")), " ", ""))
	}
	return out
}

func buildCountryIndex(cldr bool) countryNames {
	ix := map[string][]string{}
	langs := map[string][]string{} // spelling -> the languages giving it
	seen := map[string]bool{}      // name+code+language
	put := func(name, a3, lang string) {
		if i := strings.IndexAny(lang, "-_@"); i > 0 {
			lang = lang[:i] // "ar-EG", "pt_BR": one language
		}
		if seen[name+"\x00"+a3+"\x00"+lang] {
			return
		}
		seen[name+"\x00"+a3+"\x00"+lang] = true
		for _, v := range variants(foldCountry(name)) {
			if !slices.Contains(langs[v], lang) {
				langs[v] = append(langs[v], lang)
			}
			if !slices.Contains(ix[v], a3) {
				ix[v] = append(ix[v], a3)
			}
		}
	}
	tags := []language.Tag{language.English} // CLDR's English names are in the first tier
	if cldr {
		tags = display.Supported.Tags()
	}
	for _, c := range countries.All() {
		a2, a3 := c.Alpha2(), c.Alpha3()
		if len(a2) != 2 || len(a3) != 3 {
			continue
		}
		put(c.String(), a3, "en")
		region, err := language.ParseRegion(a2)
		if err != nil {
			continue
		}
		for _, t := range tags {
			if n := display.Regions(t); n != nil {
				if name := n.Name(region); name != "" {
					put(name, a3, t.String())
					// "Congo - Kinshasa", "Hong Kong SAR China", "Korea, South".
					if i := strings.Index(name, ", "); i > 0 {
						put(name[i+2:]+" "+name[:i], a3, t.String())
					}
				}
			}
		}
	}
	for _, n := range isoNames(!cldr) {
		put(n.name, n.a3, n.lang)
	}
	only := map[string]bool{}
	for v, ls := range langs {
		if len(ls) == 1 && ls[0] != "en" {
			only[v] = true
		}
	}
	for alias, a3 := range countryAliases {
		ix[alias] = []string{a3} // an alias settles what it names
		delete(only, alias)
	}
	return countryNames{codes: ix, translatedOnly: only}
}

// buildStems maps the first or last words of every indexed name to the
// codes of the names that start or end with them.
func buildStems() map[string][]string {
	stems := map[string][]string{}
	for n, codes := range countryIndex() {
		w := strings.Fields(n)
		for k := 1; k < len(w); k++ {
			for _, stem := range []string{strings.Join(w[:k], " "), strings.Join(w[k:], " ")} {
				for _, c := range codes {
					if !slices.Contains(stems[stem], c) {
						stems[stem] = append(stems[stem], c)
					}
				}
			}
		}
	}
	for _, cs := range stems {
		slices.Sort(cs)
	}
	return stems
}

// isocodesTable is Debian's iso-codes ISO 3166-1 names (short, official
// and common) with their translations into its 158 locales, generated by
// internal/gen/isocodes. CLDR names each country once per language;
// iso-codes adds the ISO forms localised software writes ("Federación
// Rusa", "Corée, République de", "Falklandinseln (Malwinen)").
//
//go:embed isocodes.tsv.gz
var isocodesTable []byte

type isoName struct{ a3, name, lang string }

func isoNames(englishOnly bool) []isoName {
	zr, err := gzip.NewReader(bytes.NewReader(isocodesTable))
	if err != nil {
		panic("mapping: the embedded iso-codes table is not gzip: " + err.Error())
	}
	var out []isoName
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		p := strings.Split(line, "\t")
		if len(p) != 3 {
			continue
		}
		if englishOnly && p[2] != "en" {
			break // the English names come first
		}
		out = append(out, isoName{p[0], p[1], p[2]})
	}
	if sc.Err() != nil {
		panic("mapping: the embedded iso-codes table cannot be read: " + sc.Err().Error())
	}
	return out
}

// lookupCountry returns the alpha-3 code for s, or a reason it is refused.
func lookupCountry(s string) (string, string) {
	s = strings.TrimSpace(s)
	if len(s) == 2 || len(s) == 3 {
		if c := countries.ByName(s); c != countries.Unknown && c.IsValid() && (strings.EqualFold(c.Alpha2(), s) || strings.EqualFold(c.Alpha3(), s)) {
			return c.Alpha3(), ""
		}
	}
	f := foldCountry(s)
	exact := variants(f)
	// "Korea, South" reads as "south korea"; "Bolivia, Plurinational
	// State of" as "plurinational state of bolivia".
	if i := strings.Index(s, ","); i > 0 {
		exact = append(exact, variants(foldCountry(s[i+1:]+" "+s[:i]))...)
	}
	// Official names, last: "Republic of Angola", "Kingdom of the
	// Netherlands", "Plurinational State of Bolivia". Stripped of their
	// state's title, some names stop telling two countries apart
	// ("Democratic Republic of the Congo" and "Republic of the Congo"):
	// those are refused, not guessed.
	var stripped []string
	// ISO's short names qualify after a comma, in every language:
	// "Bolivia, Estado plurinacional de", "Tanzania, Zjednoczona Republika".
	if i := strings.Index(s, ","); i > 0 {
		stripped = append(stripped, variants(foldCountry(s[:i]))...)
	}
	for _, v := range exact {
		if w := strings.Fields(v); len(w) > 2 {
			for i := len(w) - 2; i > 0; i-- {
				if w[i] == "of" && allOfficial(w[:i]) {
					stripped = append(stripped, strings.TrimPrefix(strings.Join(w[i+1:], " "), "the "))
					break
				}
			}
		}
	}
	if a3, reason, done := lookupQualified(s); done {
		return a3, reason
	}
	for k, forms := range [][]string{exact, stripped, looseVariants(s)} {
		for _, index := range []func() map[string][]string{englishIndex, countryIndex} {
			ix := index() // the whole index only when the first tier has no answer
			for _, v := range forms {
				codes := ix[v]
				if (k > 0 || fullIndex().translatedOnly[v]) && len(codes) == 1 {
					if other := sharedStem(v, codes[0]); other != "" {
						codes = []string{codes[0], other}
					}
				}
				switch len(codes) {
				case 0:
					continue
				case 1:
					return codes[0], ""
				default:
					names := make([]string, len(codes))
					for i, c := range codes {
						names[i] = fmt.Sprintf("%s (%s)", countries.ByName(c).String(), c)
					}
					return "", fmt.Sprintf("could be any of %s: write its ISO code", strings.Join(names, ", "))
				}
			}
		}
	}
	return "", "is not a country (use an ISO code such as DE or DEU, or the country's name)"
}

// lookupQualified reads a name with a qualifier in parentheses after it,
// "Falkland Islands (Malvinas)", "Palaos (Palau)": the name outside is
// taken when the qualifier names the same country, or names none and no
// other country has a name that starts or ends with the outer name's
// words. "Saint-Martin (partie néerlandaise)" is then refused, not taken
// as Saint-Martin: CLDR's French name of Sint Maarten starts the same way.
// done is false when s has no such qualifier, or the whole of s is a name.
func lookupQualified(s string) (a3, reason string, done bool) {
	open := strings.LastIndex(s, "(")
	if open <= 0 || !strings.HasSuffix(s, ")") || strings.Count(s, "(") != 1 {
		return "", "", false
	}
	if len(countryIndex()[foldCountry(s)]) > 0 {
		return "", "", false // a name as it stands, with its parenthesis
	}
	outer, inner := strings.TrimSpace(s[:open]), strings.TrimSpace(s[open+1:len(s)-1])
	a, why := lookupCountry(outer)
	if why != "" {
		return "", "", false
	}
	if b, why := lookupCountry(inner); why == "" {
		if b == a {
			return a, "", true
		}
		return "", fmt.Sprintf("could be any of %s (%s), %s (%s): write its ISO code", countries.ByName(a).String(), a, countries.ByName(b).String(), b), true
	}
	if other := sharedStem(foldCountry(outer), a); other != "" {
		return "", fmt.Sprintf("could be any of %s (%s), %s (%s): write its ISO code", countries.ByName(a).String(), a, countries.ByName(other).String(), other), true
	}
	return a, "", true
}

// sharedStem returns another country one of whose names starts or ends
// with name's words ("kongo" in "kongo kinshasa", "guinea" in "equatorial
// guinea"), or "": a name stripped of its state's title or qualifier may
// then be either.
func sharedStem(name, a3 string) string {
	for _, c := range stemIndex()[name] {
		if c != a3 {
			return c
		}
	}
	return ""
}

func allOfficial(words []string) bool {
	for _, w := range words {
		if !officialWords[w] {
			return false
		}
	}
	return true
}
