package mapping

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	_ "embed"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

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
	"popular": true, "confederation": true, "emirate": true, "emirates": true,
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
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mc, r):
			// Spacing marks are inside words: Devanagari's vowel signs.
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

// eachName calls f with every name the sources give a country: the ISO
// English names (biter777), CLDR's names in every language (English only
// when englishOnly) and iso-codes' names, each with its language, its
// source ("iso" or "cldr") and whether it is an official name.
func eachName(englishOnly bool, f func(name, a3, lang, source string, official bool)) {
	tags := []language.Tag{language.English} // CLDR's English names are in the first tier
	if !englishOnly {
		tags = display.Supported.Tags()
	}
	for _, c := range countries.All() {
		a2, a3 := c.Alpha2(), c.Alpha3()
		if len(a2) != 2 || len(a3) != 3 {
			continue
		}
		f(c.String(), a3, "en", "iso", false)
		region, err := language.ParseRegion(a2)
		if err != nil {
			continue
		}
		for _, t := range tags {
			if n := display.Regions(t); n != nil {
				if name := n.Name(region); name != "" {
					f(name, a3, t.String(), "cldr", false)
				}
			}
		}
	}
	for _, n := range isoNames(englishOnly) {
		f(n.name, n.a3, n.lang, "iso", n.official)
	}
}

func buildCountryIndex(cldr bool) countryNames {
	ix := map[string][]string{}
	langs := map[string][]string{} // spelling -> the languages giving it
	seen := map[string]bool{}      // name+code+language+source
	// byLang holds, per language and code, each source's folded names,
	// so that a name one source alone gives can be checked against the
	// other source's names in that language (see corroborated).
	type langCode struct{ lang, a3 string }
	byLang := map[langCode]map[string][]string{}
	var qualified []isoName // the names with a parenthesis
	put := func(name, a3, lang, source string) {
		if strings.HasSuffix(name, ")") {
			qualified = append(qualified, isoName{a3: a3, name: name})
		}
		if i := strings.IndexAny(lang, "-_@"); i > 0 {
			lang = lang[:i] // "ar-EG", "pt_BR": one language
		}
		key := name + "\x00" + a3 + "\x00" + lang + "\x00" + source
		if seen[key] {
			return
		}
		seen[key] = true
		lc := langCode{lang, a3}
		if byLang[lc] == nil {
			byLang[lc] = map[string][]string{}
		}
		byLang[lc][source] = append(byLang[lc][source], foldCountry(name))
		for _, v := range variants(foldCountry(name)) {
			if !slices.Contains(langs[v], lang) {
				langs[v] = append(langs[v], lang)
			}
			if !slices.Contains(ix[v], a3) {
				ix[v] = append(ix[v], a3)
			}
		}
	}
	eachName(!cldr, func(name, a3, lang, source string, _ bool) {
		put(name, a3, lang, source)
		// "Congo - Kinshasa", "Hong Kong SAR China", "Korea, South".
		if i := strings.Index(name, ", "); i > 0 && source == "cldr" {
			put(name[i+2:]+" "+name[:i], a3, lang, source)
		}
	})
	only := map[string]bool{}
	for v, ls := range langs {
		if len(ls) != 1 || ls[0] == "en" {
			continue
		}
		// One language gives v. It is trusted when, for each country v
		// names, both sources give it in that language: CLDR's and
		// iso-codes' French both say "Chine". Arabic iso-codes alone says
		// "المالديف" for Moldova (CLDR: "مولدوفا"), and it stays suspect.
		for _, a3 := range ix[v] {
			if !corroborated(v, byLang[langCode{ls[0], a3}]) {
				only[v] = true
			}
		}
	}
	// The name before a name's parenthesis is a name too: "Santa Sede
	// (Ciudad Estado del Vaticano)", "Insulele Cocos (Keeling)", "Sint
	// Maarten (Alankomaat)". Not when it names another country already,
	// and where two countries' names have it before their parentheses it
	// names both: "San Martín (parte francesa)" and "San Martín (parte
	// holandesa)" make "San Martín" ambiguous, refused.
	outers := map[string][]string{}
	var order []string
	for _, q := range qualified {
		open := strings.LastIndex(q.name, "(")
		if open <= 0 || !strings.HasSuffix(q.name, ")") || len(ix[foldCountry(q.name)]) != 1 {
			continue
		}
		outer := foldCountry(q.name[:open])
		if outer == "" || len(ix[outer]) > 0 {
			continue
		}
		if len(outers[outer]) == 0 {
			order = append(order, outer)
			langs[outer] = langs[foldCountry(q.name)]
		}
		if !slices.Contains(outers[outer], q.a3) {
			outers[outer] = append(outers[outer], q.a3)
		}
	}
	for _, outer := range order {
		ix[outer] = slices.Sorted(slices.Values(outers[outer]))
	}
	for alias, a3 := range countryAliases {
		ix[alias] = []string{a3} // an alias settles what it names
		delete(only, alias)
	}
	return countryNames{codes: ix, translatedOnly: only}
}

// corroborated reports whether two sources, of the names one language
// gives one country (source -> folded names), both give v.
func corroborated(v string, bySource map[string][]string) bool {
	n := 0
	for _, names := range bySource {
		for _, name := range names {
			if slices.Contains(variants(name), v) {
				n++
				break
			}
		}
	}
	return n > 1
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

// isoName is one name of the table: official is true for ISO's official
// names ("Republic of Angola") and their translations.
type isoName struct {
	a3, name, lang string
	official       bool
}

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
		if len(p) != 4 {
			continue
		}
		if englishOnly && p[2] != "en" {
			break // the English names come first
		}
		out = append(out, isoName{p[0], p[1], p[2], p[3] == "official"})
	}
	if sc.Err() != nil {
		panic("mapping: the embedded iso-codes table cannot be read: " + sc.Err().Error())
	}
	return out
}

// Warm builds, on a goroutine of its own, what a country lookup of a
// common English name needs (the index's first tier, 3-4 ms). An import
// calls it before it opens its ledger, so that its first request does not
// wait for the first row's country.
func Warm() {
	go lookupCountry("Sweden")
}

// lookupCountry returns the alpha-3 code for s, or a reason it is refused.
// The UN's formal names start with an article ("la République du Mali",
// "l'Australie"): a spelling not found as it stands is read without it.
// "El Salvador" is found whole first.
func lookupCountry(s string) (string, string) {
	s = strings.TrimRight(strings.TrimSpace(s), " *") // "Taiwan*": a footnote's mark
	a3, reason := lookupName(s)
	if reason == "" {
		return a3, ""
	}
	if rest := cutArticle(s); rest != "" {
		if b, why := lookupName(rest); why == "" {
			return b, ""
		}
	}
	return "", reason
}

// leadingArticles are the definite articles of the languages whose formal
// names carry one in front: French, Spanish, Italian and Portuguese.
var leadingArticles = []string{"the ", "le ", "la ", "les ", "l'", "l’", "el ", "los ", "las ", "il ", "lo ", "gli ", "o ", "os ", "as "}

// cutArticle returns s without a leading article, or "" when it has none.
func cutArticle(s string) string {
	for _, a := range leadingArticles {
		if len(s) > len(a) && strings.EqualFold(s[:len(a)], a) {
			return strings.TrimSpace(s[len(a):])
		}
	}
	return ""
}

// lookupName is lookupCountry without the article's second reading.
func lookupName(s string) (string, string) {
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
	stripped = append(stripped, untitledUnspaced(f)...)
	if a3, reason, done := lookupQualified(s); done {
		return a3, reason
	}
	for k, forms := range [][]string{exact, stripped, looseVariants(s)} {
		for tier, index := range []func() map[string][]string{englishIndex, countryIndex} {
			ix := index() // the whole index only when the first tier has no answer
			for _, v := range forms {
				codes := ix[v]
				// The first tier's names are ISO's English ones and the
				// aliases: only a whole spelling found there needs no
				// second look (nor the whole index built to give it one).
				if (k > 0 || tier > 0 && fullIndex().translatedOnly[v]) && len(codes) == 1 {
					// A title read off and a short name found again
					// vouches for it: "Republik Guinea" is German
					// iso-codes' alone, and the start of "Republik
					// Guinea-Bissau", but "Guinea" is CLDR's.
					if other := sharedStem(v, codes[0]); other != "" {
						if a3, _ := lookupTitled(s); a3 != codes[0] || k > 0 {
							codes = []string{codes[0], other}
						}
					}
				}
				switch len(codes) {
				case 0:
					continue
				case 1:
					return codes[0], ""
				default:
					if k == 0 {
						return "", couldBe(codes)
					}
					// Stripped of a title, a name may be a stem of
					// another's; the titled reading below compares
					// whole names instead.
					if a3, codes := lookupTitled(s); a3 != "" || len(codes) > 1 {
						if a3 != "" {
							return a3, ""
						}
						return "", couldBe(codes)
					}
					return "", couldBe(codes)
				}
			}
		}
	}
	a3, codes := lookupTitled(s)
	switch {
	case a3 != "":
		return a3, ""
	case len(codes) > 1:
		return "", couldBe(codes)
	}
	if a3 := lookupNear(f); a3 != "" {
		return a3, ""
	}
	if a3 := lookupArabicSkeleton(f); a3 != "" {
		return a3, ""
	}
	if a3 := lookupWords(f); a3 != "" {
		return a3, ""
	}
	if codes := acronymsOf(s); len(codes) == 1 {
		return codes[0], ""
	} else if len(codes) > 1 {
		return "", couldBe(codes)
	}
	return "", "is not a country (use an ISO code such as DE or DEU, or the country's name)"
}

func couldBe(codes []string) string {
	names := make([]string, len(codes))
	for i, c := range codes {
		names[i] = fmt.Sprintf("%s (%s)", countries.ByName(c).String(), c)
	}
	return fmt.Sprintf("could be any of %s: write its ISO code", strings.Join(names, ", "))
}

// Official names in every language: "Republik Guinea", "Republika
// Gwinei", "Afganistanin islamilainen tasavalta", "Guinea, Republic of".
// The words states put in their titles are learned from the sources
// themselves: wherever iso-codes gives a country an official name, in a
// language, that holds one of its short names in that language, the
// official name's other words are title words ("republik",
// "islamilainen", "tasavalta"), once three countries show them. A
// spelling with title words is read without them, and compared with
// every short name (CLDR's and ISO's) read the same way, word for word,
// allowing a declension's ending ("Gwinei" for "Gwinea", "Afganisztáni"
// for "Afganisztán"). It names a country only when every short name it
// matches is that country's: "Republika Konga" matches the Republic of
// the Congo's "Kongo" and the Democratic Republic's "Demokratyczna
// Republika Konga", and is refused.
type titledName struct {
	words []string
	a3    string
}

type titledIndex struct {
	titles map[string]bool
	names  map[string][]titledName // by titledKey
	// titlesOf are the title words each country's names hold, in any
	// language: what tells twins of one name apart ("démocratique"
	// for the Democratic Republic of the Congo).
	titlesOf map[langCode]map[string]bool
}

type langCode struct{ lang, a3 string }

// titledKey buckets names that can match: the same number of words, and
// the first word's first three letters (sameWord needs four in common).
func titledKey(words []string) string {
	r := []rune(words[0])
	if len(r) > 3 {
		r = r[:3]
	}
	return fmt.Sprint(len(words), " ", string(r))
}

var titled = sync.OnceValue(buildTitled)

// titleTwins are the countries whose official title tells them from
// another of the same name, where the sources name only one of them:
// Taiwan's official name is the Republic of China, which ISO and CLDR do
// not give it. Stripped of its title, a name of China may be either.
var titleTwins = map[string]string{"CHN": "TWN"}

// titleSet is what the titled reading learns first, and all a spelling
// without a title needs of it: the title words, and the affixes of the
// scripts without spaces. The index of names (titled) is built only when
// a spelling has a title to strip.
type titleSet struct {
	titles map[string]bool
	// prefixes and suffixes are the titles of the scripts that write no
	// spaces, learned the same way: "共和国" of "博茨瓦纳共和国", "国" of
	// "日本国". Longest first.
	prefixes, suffixes []string
}

var titleWords = sync.OnceValue(buildTitleWords)

// namesByLanguage is every short and official name (folded as titles
// are), by language and country.
func namesByLanguage() (short, official map[langCode][]string) {
	short = map[langCode][]string{}
	official = map[langCode][]string{}
	eachName(false, func(name, a3, lang, _ string, isOfficial bool) {
		if i := strings.IndexAny(lang, "-_@"); i > 0 {
			lang = lang[:i]
		}
		lc := langCode{lang, a3}
		if isOfficial {
			official[lc] = append(official[lc], foldTitled(name))
		} else {
			short[lc] = append(short[lc], foldTitled(name))
		}
	})
	return short, official
}

func buildTitleWords() titleSet {
	short, official := namesByLanguage()
	// Title words: what an official name has beyond a short name of the
	// same country in the same language.
	seenIn := map[string]map[string]bool{} // title word -> countries
	for lc, longs := range official {
		for _, long := range longs {
			lw := strings.Fields(long)
			for _, sh := range short[lc] {
				sw := strings.Fields(sh)
				if len(sw) >= len(lw) {
					continue
				}
				rest, ok := alignWords(lw, sw)
				if !ok {
					continue
				}
				for _, w := range rest {
					if seenIn[w] == nil {
						seenIn[w] = map[string]bool{}
					}
					seenIn[w][lc.a3] = true
				}
			}
		}
	}
	titles := map[string]bool{}
	for w, in := range seenIn {
		if len(in) >= 3 {
			titles[w] = true
		}
	}
	for w := range officialWords {
		titles[w] = true
	}
	for w := range articles {
		titles[w] = true
	}
	ix := titleSet{titles: titles}
	pre, suf := map[string]map[string]bool{}, map[string]map[string]bool{}
	note := func(m map[string]map[string]bool, affix, a3 string) {
		if m[affix] == nil {
			m[affix] = map[string]bool{}
		}
		m[affix][a3] = true
	}
	for lc, longs := range official {
		for _, long := range longs {
			if strings.Contains(long, " ") || !unspaced(long) {
				continue
			}
			for _, sh := range short[lc] {
				switch {
				case len(sh) >= len(long) || strings.Contains(sh, " "):
				case strings.HasPrefix(long, sh):
					note(suf, long[len(sh):], lc.a3)
				case strings.HasSuffix(long, sh):
					note(pre, long[:len(long)-len(sh)], lc.a3)
				}
			}
		}
	}
	for affix, in := range pre {
		if len(in) >= 3 {
			ix.prefixes = append(ix.prefixes, affix)
		}
	}
	for affix, in := range suf {
		if len(in) >= 3 {
			ix.suffixes = append(ix.suffixes, affix)
		}
	}
	longestFirst := func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) }
	slices.SortFunc(ix.prefixes, longestFirst)
	slices.SortFunc(ix.suffixes, longestFirst)
	return ix
}

func buildTitled() titledIndex {
	tw := titleWords()
	short, official := namesByLanguage()
	titles := tw.titles
	ix := titledIndex{titles: titles, names: map[string][]titledName{}, titlesOf: map[langCode]map[string]bool{}}
	seen := map[string]bool{}
	for lc, names := range short {
		for _, name := range names {
			words, _ := ix.strip(name)
			if len(words) == 0 {
				continue
			}
			// A name one source alone gives, inside another country's
			// name, is as suspect here as in the exact lookup.
			if f := foldCountry(name); fullIndex().translatedOnly[f] && sharedStem(f, lc.a3) != "" {
				continue
			}
			cs := []string{lc.a3}
			if twin := titleTwins[lc.a3]; twin != "" {
				cs = append(cs, twin)
			}
			for _, c := range cs {
				key := strings.Join(words, " ") + "\x00" + c
				if !seen[key] {
					seen[key] = true
					k := titledKey(words)
					ix.names[k] = append(ix.names[k], titledName{words, c})
				}
			}
		}
	}
	// Titles are kept for the countries that share a name with another,
	// stripped of titles, the only ones twinByTitle compares.
	byWords := map[string][]string{}
	for _, bucket := range ix.names {
		for _, n := range bucket {
			k := strings.Join(n.words, " ")
			if !slices.Contains(byWords[k], n.a3) {
				byWords[k] = append(byWords[k], n.a3)
			}
		}
	}
	twinned := map[string]bool{}
	for _, cs := range byWords {
		if len(cs) > 1 {
			for _, c := range cs {
				twinned[c] = true
			}
		}
	}
	for _, byName := range []map[langCode][]string{short, official} {
		for lc, names := range byName {
			for _, name := range names {
				for _, w := range strings.Fields(name) {
					if !twinned[lc.a3] || !titles[w] || articles[w] {
						continue
					}
					if ix.titlesOf[lc] == nil {
						ix.titlesOf[lc] = map[string]bool{}
					}
					ix.titlesOf[lc][w] = true
				}
			}
		}
	}
	return ix
}

// foldTitled folds a name as foldCountry does, with an elided article
// apart: "dell'Iraq" is "dell iraq".
func foldTitled(s string) string {
	return foldCountry(strings.NewReplacer("'", " ", "’", " ").Replace(s))
}

// alignWords matches every word of short, in order, to a word of long,
// allowing endings (sameWord), and returns long's other words.
func alignWords(long, short []string) ([]string, bool) {
	var rest []string
	j := 0
	for _, w := range long {
		if j < len(short) && sameWord(w, short[j]) {
			j++
			continue
		}
		rest = append(rest, w)
	}
	return rest, j == len(short)
}

// sameWord reports whether a and b are one word, perhaps declined: equal,
// or sharing all but at most two of the shorter one's letters, and at
// least four, with at most three more letters on the longer.
func sameWord(a, b string) bool {
	if a == b {
		return true
	}
	ra, rb := []rune(a), []rune(b)
	// Endings are read in the alphabets of declined languages only:
	// Hangul's folded syllables are letters in a row, and CJK names are
	// not declined.
	if len(ra) == 0 || len(rb) == 0 || !unicode.In(ra[0], unicode.Latin, unicode.Cyrillic, unicode.Greek) {
		return false
	}
	if len(ra) > len(rb) {
		ra, rb = rb, ra
	}
	if len(ra) < 4 || len(rb)-len(ra) > 3 {
		return false
	}
	p := 0
	for p < len(ra) && ra[p] == rb[p] {
		p++
	}
	return p >= 4 && p >= len(ra)-2
}

// strip returns a folded name's words without its title words, or nil
// when no word is left that is long enough to name a country, and
// whether any title word was taken away.
func (ix titledIndex) strip(folded string) ([]string, bool) {
	var out []string
	long, titled := false, false
	for _, w := range strings.Fields(folded) {
		if ix.titles[w] {
			titled = true
			continue
		}
		out = append(out, w)
		long = long || len([]rune(w)) >= 4
	}
	if !long {
		return nil, titled
	}
	return out, titled
}

// lookupTitled reads s as a title and a name (see titledIndex). It returns
// the country, or the countries it could be when more than one.
func lookupTitled(s string) (string, []string) {
	f := foldTitled(s)
	if i := strings.Index(s, ","); i > 0 { // "Guinea, Republic of"
		f = foldTitled(s[i+1:] + " " + s[:i])
	}
	words, stripped := titledIndex{titles: titleWords().titles}.strip(f)
	if len(words) == 0 || !stripped {
		return "", nil // a name without a title is looked up as it is
	}
	ix := titled()
	var codes, exactly []string
	for _, n := range ix.names[titledKey(words)] {
		match, exact := true, true
		for i, w := range words {
			if !sameWord(w, n.words[i]) {
				match = false
				break
			}
			exact = exact && w == n.words[i]
		}
		if match && !slices.Contains(codes, n.a3) {
			codes = append(codes, n.a3)
		}
		if exact && match && !slices.Contains(exactly, n.a3) {
			exactly = append(exactly, n.a3)
		}
	}
	if len(codes) == 2 && len(exactly) == 2 && titleTwins[exactly[0]] != exactly[1] && titleTwins[exactly[1]] != exactly[0] {
		if a3 := ix.twinByTitle(strings.Fields(f), exactly[0], exactly[1]); a3 != "" {
			codes = []string{a3}
		}
	}
	if len(codes) == 1 && !titleNamesOther(ix, strings.Fields(f), codes[0]) {
		return codes[0], nil
	}
	if len(codes) == 1 {
		return "", nil
	}
	slices.Sort(codes)
	return "", codes
}

// twinByTitle tells apart two countries of one short name by the title
// words of a spelling, compared with each language's titles for both: a
// title word that one has there, and the other in no language, names it
// ("República Popular Democrática de Corea"); a title that is all the
// plain one's,
// where the other's has more, names the plain one ("République du
// Congo"). A spelling that no language reads one way only is left
// ambiguous, as is any spelling of a language that titles only one of
// them ("Repubblica di Corea": Italian names North Korea's title only, and
// South Korea's "Corea del Sud").
func (ix titledIndex) twinByTitle(words []string, a, b string) string {
	var title []string
	for _, w := range words {
		if ix.titles[w] && !articles[w] {
			title = append(title, w)
		}
	}
	if len(title) == 0 {
		return ""
	}
	subset := func(ws []string, set map[string]bool) bool {
		for _, w := range ws {
			if !set[w] {
				return false
			}
		}
		return true
	}
	strictlyIn := func(x, y map[string]bool) bool { // x a strict subset of y
		for w := range x {
			if !y[w] {
				return false
			}
		}
		return len(x) < len(y)
	}
	all := func(a3 string) map[string]bool { // a country's titles in every language
		set := map[string]bool{}
		for lc, ts := range ix.titlesOf {
			if lc.a3 == a3 {
				for w := range ts {
					set[w] = true
				}
			}
		}
		return set
	}
	allA, allB := all(a), all(b)
	found := map[string]bool{}
	for lc, ta := range ix.titlesOf {
		if lc.a3 != a {
			continue
		}
		tb := ix.titlesOf[langCode{lc.lang, b}]
		if !shareTitle(ta, tb) {
			continue
		}
		for _, w := range title {
			switch {
			case ta[w] && !tb[w] && !allB[w]:
				found[a] = true
			case tb[w] && !ta[w] && !allA[w]:
				found[b] = true
			}
		}
		if subset(title, ta) && subset(title, tb) {
			switch {
			case strictlyIn(ta, tb):
				found[a] = true
			case strictlyIn(tb, ta):
				found[b] = true
			}
		}
	}
	if len(found) == 1 {
		for c := range found {
			return c
		}
	}
	return ""
}

// shareTitle reports whether two countries' titles in one language have a
// state's title in common, a word of four letters or more ("république"),
// not only a preposition ("del" of "Corea del Sud"): only then is the
// language's title for one of them compared with its title for the other.
func shareTitle(ta, tb map[string]bool) bool {
	for w := range ta {
		if tb[w] && len([]rune(w)) >= 4 {
			return true
		}
	}
	return false
}

// titleNamesOther reports whether words hold, with a title word among
// them, the name of a country other than a3: "Islas Vírgenes del Reino
// Unido" is not read as "Islas Vírgenes ... Unido" (the US Virgin Islands'
// "Islas Vírgenes de los Estados Unidos"), since "Reino Unido" is a name.
func titleNamesOther(ix titledIndex, words []string, a3 string) bool {
	for i := range words {
		hasTitle := false
		for j := i + 1; j <= len(words); j++ {
			hasTitle = hasTitle || ix.titles[words[j-1]]
			if !hasTitle || j-i == len(words) || (j-i == 1 && len([]rune(words[i])) < 4) {
				continue
			}
			for _, c := range countryIndex()[strings.Join(words[i:j], " ")] {
				if c != a3 {
					return true
				}
			}
		}
	}
	return false
}

// lookupQualified reads a name with a qualifier in parentheses after it.
// A qualifier that is a title, or an article, is read before the name:
// "Bolivia (Plurinational State of)", "KOREA (THE REPUBLIC OF)", the UN's
// "Republic of Korea (the)". A qualifier that is a name must name the
// same country: "Falkland Islands (Malvinas)", "Palaos (Palau)". Any
// other qualifier may change what the name means ("San Martín (parte
// Holandesa)" is Sint Maarten, not Saint-Martin), and the spelling is
// then looked up whole. done is false when s has no such qualifier, or
// the whole of s is a name, or the qualifier is not read.
func lookupQualified(s string) (a3, reason string, done bool) {
	open := strings.LastIndex(s, "(")
	if open <= 0 || !strings.HasSuffix(s, ")") || strings.Count(s, "(") != 1 {
		return "", "", false
	}
	if len(countryIndex()[foldCountry(s)]) > 0 {
		return "", "", false // a name as it stands, with its parenthesis
	}
	outer, inner := strings.TrimSpace(s[:open]), strings.TrimSpace(s[open+1:len(s)-1])
	if onlyArticles(inner) {
		a, why := lookupCountry(outer)
		return a, why, true
	}
	if isTitle(inner) {
		a, why := lookupCountry(inner + " " + outer)
		if why != "" && !strings.HasPrefix(why, "could be") {
			a, why = lookupCountry(outer)
		}
		return a, why, true
	}
	a, why := lookupCountry(outer)
	if why != "" {
		return "", "", false
	}
	b, why := lookupCountry(inner)
	switch {
	case why == "" && b == a:
		return a, "", true
	case why == "":
		// The qualifier names another country: the state it belongs to
		// ("Saint Martin (Ranska)"), or the part it is ("San Martín (parte
		// Holandesa)"). The whole spelling is read instead, or refused.
		return "", "", false
	case strings.Contains(why, "("+a+")"):
		// The qualifier could be a, among others: "Taiwán (República de
		// China)".
		return a, "", true
	}
	return "", "", false
}

// articles are the articles the UN's names put in parentheses, and the
// abbreviations of titles lists write ("Rep. Ceca", "Congo (Rep. Dem.)").
var articles = map[string]bool{"the": true, "la": true, "le": true, "l": true, "les": true, "el": true, "los": true, "las": true,
	"rep": true, "dem": true}

// onlyArticles reports whether s is articles only: "(the)", "(l')".
func onlyArticles(s string) bool {
	words := strings.Fields(foldTitled(s))
	for _, w := range words {
		if !articles[w] || w == "rep" || w == "dem" {
			return false
		}
	}
	return len(words) > 0
}

// isTitle reports whether every word of s is a title word or an article.
func isTitle(s string) bool {
	words := strings.Fields(foldTitled(s))
	for _, w := range words {
		if !articles[w] && !titleWords().titles[w] {
			return false
		}
	}
	return len(words) > 0
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

// A long name one letter away from a country's name, and two letters away
// from no other country's, is that country misspelt: "Kazajstán" for
// "Kazajistán", "Trinidad y Tabago", "Nueva Zelandia", "Untied States".
// Only in alphabets, and only names of at least eight letters: "Iran" and
// "Iraq", "Gambia" and "Zambia" are one letter apart.
const nearMin = 6

var nearIndex = sync.OnceValue(func() map[int][]nearName {
	ix := map[int][]nearName{}
	for name, codes := range countryIndex() {
		r := []rune(name)
		if len(r) >= nearMin-2 {
			ix[len(r)] = append(ix[len(r)], nearName{r, codes})
		}
	}
	return ix
})

// nearScripts are the alphabets and abugidas, where a letter is a sound:
// not Arabic's abjad, where names of few letters are one apart ("المالديف"
// is one letter from Moldova), nor the syllables of CJK.
var nearScripts = []*unicode.RangeTable{unicode.Latin, unicode.Cyrillic, unicode.Greek, unicode.Armenian, unicode.Georgian,
	unicode.Thai, unicode.Devanagari, unicode.Bengali, unicode.Tamil, unicode.Mn, unicode.Mc}

type nearName struct {
	name  []rune
	codes []string
}

func lookupNear(folded string) string {
	r := []rune(folded)
	if len(r) < nearMin {
		return ""
	}
	for _, c := range r {
		if c != ' ' && !unicode.In(c, nearScripts...) {
			return ""
		}
	}
	// Within one letter of one country only, and two of no other. Two
	// letters is too many even in long names: "Cocos Islands" is two
	// from "Cook Islands".
	const k = 1
	var near, margin []string
	for n := len(r) - k - 1; n <= len(r)+k+1; n++ {
		for _, cand := range nearIndex()[n] {
			d := editDistance(r, cand.name, k+1)
			for _, c := range cand.codes {
				switch {
				case d <= k && !slices.Contains(near, c):
					near = append(near, c)
				case d == k+1 && !slices.Contains(margin, c):
					margin = append(margin, c)
				}
			}
		}
	}
	if len(near) != 1 {
		return ""
	}
	for _, c := range margin {
		if c != near[0] {
			return ""
		}
	}
	return near[0]
}

// editDistance is the Damerau-Levenshtein distance of a and b (a swap of
// two letters counts one), or max+1 once it is more than max.
func editDistance(a, b []rune, max int) int {
	if d := len(a) - len(b); d > max || -d > max {
		return max + 1
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		low := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
			low = min(low, cur[j])
		}
		if low > max {
			return max + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// Arabic script writes a name's long vowels, and its article, as it
// pleases: "إرتريا" and "إريتريا", "غابون" and "الغابون", "لكسمبرغ" and
// "لوكسمبورغ". An Arabic-script name that nothing else reads is compared
// by its skeleton (see arabicSkeleton) with the skeletons of the names
// that two sources, or English, give; it names a country when every name
// of that skeleton is that country's.
var arabicSkeletons = sync.OnceValue(func() map[string][]string {
	ix := map[string][]string{}
	full := fullIndex()
	for name, codes := range full.codes {
		if full.translatedOnly[name] || !isArabicScript(name) {
			continue
		}
		k := arabicSkeleton(name)
		for _, c := range codes {
			if !slices.Contains(ix[k], c) {
				ix[k] = append(ix[k], c)
			}
		}
	}
	return ix
})

func lookupArabicSkeleton(folded string) string {
	if !isArabicScript(folded) {
		return ""
	}
	k := arabicSkeleton(folded)
	if len([]rune(strings.ReplaceAll(k, " ", ""))) < 3 {
		return "" // too little left to tell names apart
	}
	codes := arabicSkeletons()[k]
	if len(codes) != 1 {
		return ""
	}
	// Skeletons are short: one letter from another country's is too near
	// ("مولدوڤا" is Moldova, and one letter from the Maldives' "مالدیڤ").
	rk := []rune(k)
	for other, cs := range arabicSkeletons() {
		if other == k || slices.Equal(cs, codes) {
			continue
		}
		if editDistance(rk, []rune(other), 1) <= 1 {
			return ""
		}
	}
	return codes[0]
}

func isArabicScript(s string) bool {
	for _, r := range s {
		if r != ' ' && !unicode.Is(unicode.Arabic, r) {
			return false
		}
	}
	return s != ""
}

// arabicSkeleton is a folded Arabic name without the article of its words
// and without the long vowels (alef, waw, yeh) after a word's first letter.
func arabicSkeleton(folded string) string {
	words := strings.Fields(folded)
	for i, w := range words {
		r := []rune(w)
		if len(r) > 4 && r[0] == 'ا' && r[1] == 'ل' {
			r = r[2:]
		}
		out := r[:1]
		for _, c := range r[1:] {
			if c != 'ا' && c != 'و' && c != 'ی' {
				out = append(out, c)
			}
		}
		words[i] = string(out)
	}
	return strings.Join(words, " ")
}

// unspaced reports whether s is written in a script without spaces
// between words: Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar.
func unspaced(s string) bool {
	for _, r := range s {
		if !unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Thai, unicode.Lao, unicode.Khmer, unicode.Myanmar) {
			return false
		}
	}
	return s != ""
}

// untitledUnspaced returns s without its learned title affixes ("俄罗斯联邦"
// is "俄罗斯"), one prefix and one suffix at most, or nothing.
func untitledUnspaced(folded string) []string {
	if strings.Contains(folded, " ") || !unspaced(folded) {
		return nil
	}
	ix := titleWords()
	var out []string
	for _, p := range append([]string{""}, ix.prefixes...) {
		rest, ok := strings.CutPrefix(folded, p)
		if !ok {
			continue
		}
		for _, x := range append([]string{""}, ix.suffixes...) {
			core, ok := strings.CutSuffix(rest, x)
			if ok && core != "" && core != folded && !slices.Contains(out, core) {
				out = append(out, core)
			}
		}
	}
	return out
}

// acronyms are the initials of the names of two words or more, in every
// language, written in capitals: "ЮАР" (Южно-Африканская Республика),
// "AEB" (Ameriketako Estatu Batuak), "САЩ", "DRC". Both readings count:
// every word's initial, and the capitalised words' only ("EUA" of
// "Estados Unidos de América"). Only spellings of three to five capitals
// that are not ISO codes reach them.
func acronymsOf(s string) []string {
	n := 0
	for _, r := range s {
		if !unicode.IsUpper(r) {
			return nil
		}
		n++
	}
	if n < 3 || n > 5 {
		return nil
	}
	return acronyms()[s]
}

var acronyms = sync.OnceValue(func() map[string][]string {
	ix := map[string][]string{}
	add := func(k, a3 string) {
		if n := len([]rune(k)); n >= 3 && n <= 5 && !slices.Contains(ix[k], a3) {
			ix[k] = append(ix[k], a3)
		}
	}
	eachName(false, func(name, a3, _, _ string, _ bool) {
		words := strings.FieldsFunc(name, func(r rune) bool { return r == ' ' || r == '-' || r == '‐' })
		if len(words) < 2 {
			return
		}
		var all, capital []rune
		for _, w := range words {
			r, _ := utf8.DecodeRuneInString(w)
			if !unicode.IsLetter(r) {
				return // "Congo (Rep.)": not a plain name
			}
			all = append(all, unicode.ToUpper(r))
			if unicode.IsUpper(r) {
				capital = append(capital, r)
			}
		}
		add(string(all), a3)
		add(string(capital), a3)
	})
	for k := range ix {
		slices.Sort(ix[k])
	}
	return ix
})

// Names of territories are compounds that each language words its own way
// ("Tierras Australes y Antárticas Francesas", "Острова Уоллис и
// Футуна", "Ostrva Herd i Makdonald"). The last reading takes a spelling
// word by word: each word the names know (perhaps declined, see closeWord)
// names the countries whose names hold it. A spelling names a country
// when its rare words (of four letters or more, in the names of at most
// wordsRare countries) name that country only, every other word names it
// too, and no word is in no name at all: "Estados Unidos Mexicanos" is
// not read as the United States, and since "French" must name it too,
// "Sint Maarten (partea franceză)" is refused. Words of one or two
// letters that many names have ("i", "of") are not counted; a short word
// is never what decides ("ya" of "Republíki ya Kongó").
const (
	wordsRare   = 10
	wordsCommon = 12
)

type wordVocabulary struct {
	codes map[string][]string // word -> the countries whose names hold it
	near  map[string][]string // the first five letters -> the words (see closeWord)
}

var nameWords = sync.OnceValue(func() wordVocabulary {
	sets := map[string][]string{}
	for name, codes := range fullIndex().codes {
		if len(codes) != 1 {
			continue
		}
		for _, w := range strings.Fields(name) {
			if !slices.Contains(sets[w], codes[0]) {
				sets[w] = append(sets[w], codes[0])
			}
		}
	}
	// Most words name one country, or the same few: their lists are
	// shared, which keeps the vocabulary to a few megabytes.
	interned := map[string][]string{}
	v := wordVocabulary{codes: make(map[string][]string, len(sets)), near: map[string][]string{}}
	for w, cs := range sets {
		slices.Sort(cs)
		k := strings.Join(cs, " ")
		if interned[k] == nil {
			interned[k] = slices.Clip(cs)
		}
		v.codes[w] = interned[k]
		if r := []rune(w); len(r) >= 5 && unicode.In(r[0], unicode.Latin, unicode.Cyrillic, unicode.Greek) {
			v.near[string(r[:5])] = append(v.near[string(r[:5])], w)
		}
	}
	return v
})

// countriesOf returns the countries whose names hold w, perhaps declined.
func (v wordVocabulary) countriesOf(w string) []string {
	r := []rune(w)
	if len(r) < 5 {
		return v.codes[w]
	}
	var out []string
	for _, word := range v.near[string(r[:5])] {
		if closeWord(w, word) {
			for _, c := range v.codes[word] {
				if !slices.Contains(out, c) {
					out = append(out, c)
				}
			}
		}
	}
	if len(out) == 0 {
		return v.codes[w] // a script closeWord does not decline
	}
	return out
}

// closeWord is sameWord with less room, for words read alone: one letter
// of the shorter word may differ at its end, after five in common
// ("аландских" for "аландские"), and "Canary" is not "Canada".
func closeWord(a, b string) bool {
	if a == b {
		return true
	}
	ra, rb := []rune(a), []rune(b)
	if !unicode.In(ra[0], unicode.Latin, unicode.Cyrillic, unicode.Greek) {
		return false
	}
	if len(ra) > len(rb) {
		ra, rb = rb, ra
	}
	if len(ra) < 5 || len(rb)-len(ra) > 3 {
		return false
	}
	p := 0
	for p < len(ra) && ra[p] == rb[p] {
		p++
	}
	return p >= 5 && p >= len(ra)-1
}

func lookupWords(folded string) string {
	words := strings.Fields(folded)
	if len(words) < 2 {
		return ""
	}
	v := nameWords()
	intersect := func(in *[]string, seen *bool, cs []string) {
		if !*seen {
			*in, *seen = slices.Clone(cs), true
			return
		}
		*in = slices.DeleteFunc(*in, func(c string) bool { return !slices.Contains(cs, c) })
	}
	var every, rare []string // the countries every word, and every rare word, names
	var anyWord, anyRare bool
	for _, w := range words {
		if articles[w] {
			continue
		}
		cs := v.countriesOf(w)
		if len(cs) == 0 {
			return "" // "RD" of "RD del Congo" is no name's
		}
		if len(cs) > wordsCommon || len([]rune(w)) < 3 && len(cs) > wordsRare {
			continue // "i", "of", "islands", "republic"
		}
		intersect(&every, &anyWord, cs)
		if len(cs) <= wordsRare && len([]rune(w)) >= 4 {
			intersect(&rare, &anyRare, cs)
		}
	}
	if len(rare) != 1 || len(every) != 1 {
		return ""
	}
	a3 := every[0]
	if titleTwins[a3] != "" || slices.Contains(slices.Collect(maps.Values(titleTwins)), a3) {
		return "" // "Čínska republika" is Taiwan's title, which no source gives
	}
	// Two words or more that are another country's name make the spelling
	// that country's, or a qualified one: "Islas Vírgenes del Reino Unido".
	for i := range words {
		for j := i + 2; j <= len(words); j++ {
			for _, c := range countryIndex()[strings.Join(words[i:j], " ")] {
				if c != a3 {
					return ""
				}
			}
		}
	}
	return a3
}
