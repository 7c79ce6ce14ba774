package mapping

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Field maps one target path to its source.
type Field struct {
	Target     string   // dotted target path, e.g. customer.email or metadata.source
	Column     string   // the source column; empty for a constant
	Value      string   // the constant, when Column is empty
	Default    string   // used when the column's value is empty
	Transforms []string // applied in order, before the automatic normalisation
	Line       int      // line in the mapping file; 0 when auto-mapped
}

// Spec is a whole mapping: a parsed mapping file or an auto-mapping.
type Spec struct {
	Name   string // the mapping file's name, for messages; "" when auto-mapped
	Fields []Field
	// UnmappedAsMetadata and TruncateMetadata are the file's
	// options.unmapped_as_metadata and options.truncate_metadata: see Options.
	UnmappedAsMetadata bool
	TruncateMetadata   bool
}

// entry is the object form of a mapping value.
type entry struct {
	Column    *string `yaml:"column"`
	Value     *string `yaml:"value"`
	Default   string  `yaml:"default"`
	Transform any     `yaml:"transform"` // a name or a list of names
}

// Parse reads a mapping file (YAML, or JSON of the same shape). name is
// used in messages. Every problem names the file and line.
func Parse(name string, data []byte) (Spec, error) {
	spec := Spec{Name: name}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return spec, fmt.Errorf("%s: not valid YAML or JSON: %w", name, err)
	}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return spec, fmt.Errorf("%s: the mapping is empty: want target: column lines such as \"customer.email: Email\"", name)
	}
	var values []*ast.MappingValueNode
	switch b := f.Docs[0].Body.(type) {
	case *ast.MappingNode:
		values = b.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{b}
	default:
		return spec, fmt.Errorf("%s line %d: want a mapping of target paths to columns, got %s", name, b.GetToken().Position.Line, b.Type())
	}
	var errs []error
	seen := map[string]int{}
	for _, mv := range values {
		line := mv.Key.GetToken().Position.Line
		at := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("%s line %d: %s", name, line, fmt.Sprintf(format, a...)))
		}
		key := strings.TrimSpace(mv.Key.GetToken().Value)
		if opt, ok := strings.CutPrefix(key, "options."); ok {
			var on bool
			if err := yaml.NodeToValue(mv.Value, &on); err != nil {
				at("%s wants true or false", key)
				continue
			}
			switch opt {
			case "unmapped_as_metadata":
				spec.UnmappedAsMetadata = on
			case "truncate_metadata":
				spec.TruncateMetadata = on
			default:
				at("unknown option %q%s (options are unmapped_as_metadata and truncate_metadata)", key,
					suggest(key, []string{"options.unmapped_as_metadata", "options.truncate_metadata"}))
			}
			continue
		}
		if err := checkTarget(key); err != nil {
			at("%v", err)
			continue
		}
		if prev, dup := seen[key]; dup {
			at("%q is mapped twice (first on line %d)", key, prev)
			continue
		}
		seen[key] = line
		fd := Field{Target: key, Line: line}
		switch v := mv.Value.(type) {
		case *ast.StringNode:
			fd.Column = v.Value
		case *ast.MappingNode, *ast.MappingValueNode:
			var e entry
			if err := yaml.NodeToValue(v, &e, yaml.DisallowUnknownField()); err != nil {
				at("%s: %v (an entry takes column or value, default and transform)", key, firstLine(err))
				continue
			}
			switch {
			case e.Column != nil && e.Value != nil:
				at("%s has both column and value: keep one", key)
				continue
			case e.Column != nil:
				fd.Column = *e.Column
			case e.Value != nil:
				fd.Value = *e.Value
			default:
				at("%s needs a column or a value", key)
				continue
			}
			fd.Default = e.Default
			ts, err := transformList(e.Transform)
			if err != nil {
				at("%s: %v", key, err)
				continue
			}
			fd.Transforms = ts
		case *ast.NullNode:
			at("%s has no column: write the column name after the colon", key)
			continue
		default:
			// Numbers, booleans: a column named "2024" is still a name.
			fd.Column = strings.TrimSpace(v.GetToken().Value)
		}
		if fd.Column == "" && fd.Value == "" && fd.Target != "campaign" {
			at("%s has an empty column name", key)
			continue
		}
		bad := false
		for _, t := range fd.Transforms {
			if _, err := lookupTransform(t); err != nil {
				at("%v", err)
				bad = true
			}
		}
		if !bad {
			spec.Fields = append(spec.Fields, fd)
		}
	}
	return spec, errors.Join(errs...)
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func transformList(v any) ([]string, error) {
	switch t := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{t}, nil
	case []any:
		out := make([]string, 0, len(t))
		for _, x := range t {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("transform %v is not a name", x)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("transform must be a name or a list of names")
}

// checkTarget returns an error with a suggestion for an unknown target.
func checkTarget(t string) error {
	if _, ok := targets[t]; ok {
		return nil
	}
	if name, ok := strings.CutPrefix(t, "metadata."); ok {
		if n := utf8.RuneCountInString(name); n < 1 || n > 100 {
			return fmt.Errorf("metadata name %q must be 1-100 characters, it has %d", name, n)
		}
		return nil
	}
	var names []string
	for k := range targets {
		names = append(names, k)
	}
	return fmt.Errorf("unknown target %q%s (targets are customer.*, bill_to.*, payment.credit_card.*, internal_customer_id, campaign, metadata.<name>)", t, suggest(t, names))
}

// suggest returns ` (did you mean "x"?)` for the candidate closest to s,
// or "" when none is close.
func suggest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := distance(strings.ToLower(s), strings.ToLower(c)); d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	if best == "" || bestD > max(2, len(s)/3) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein edit distance between a and b, in runes.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// Auto maps columns by their header names (case, spaces, _, - and . are
// ignored; common synonyms, and the headers of the usual exports, are
// known). It returns the columns left unmapped, in input order. See
// AutoNotes for what an operator should be told about the choice.
func Auto(columns []string) (Spec, []string) {
	spec, unmapped, _ := AutoNotes(columns)
	return spec, unmapped
}

// AutoNotes is Auto with notes for the operator: two columns that match one
// target (which one was chosen, and why), and unmapped columns that look
// like a target (a shipping address, which CreateCustomer has no place
// for; a second phone).
func AutoNotes(columns []string) (Spec, []string, []string) {
	var spec Spec
	var notes []string
	type pick struct {
		column string
		rank   int
		fields []Field
	}
	best := map[string]*pick{} // target -> the column chosen for it
	lost := map[string]bool{}  // columns that lost to another for a target (noted)
	var order []string         // targets in the order first matched
	var unmapped []string
	for _, c := range columns {
		ts, rank := autoTargetsRank(c)
		if len(ts) == 0 {
			unmapped = append(unmapped, c)
			continue
		}
		var fields []Field
		for _, t := range ts {
			fd := Field{Target: t, Column: c}
			if len(ts) == 2 { // a combined expiry
				fd.Transforms = []string{strings.TrimPrefix(t, "payment.credit_card.")}
			}
			fields = append(fields, fd)
		}
		key := ts[0]
		switch prev := best[key]; {
		case prev == nil:
			best[key] = &pick{c, rank, fields}
			order = append(order, key)
		case rank < prev.rank:
			notes = append(notes, fmt.Sprintf("columns %q and %q both map to %s: using %q (a plain name wins over a prefixed one)", prev.column, c, key, c))
			unmapped = append(unmapped, prev.column)
			lost[prev.column] = true
			best[key] = &pick{c, rank, fields}
		default:
			notes = append(notes, fmt.Sprintf("columns %q and %q both map to %s: using %q, the first", prev.column, c, key, prev.column))
			unmapped = append(unmapped, c)
			lost[c] = true
		}
	}
	taken := map[string]bool{}
	for _, key := range order {
		for _, fd := range best[key].fields {
			taken[fd.Target] = true
			spec.Fields = append(spec.Fields, fd)
		}
	}
	// Keep unmapped in input order.
	pos := map[string]int{}
	for i, c := range columns {
		pos[c] = i
	}
	slices.SortStableFunc(unmapped, func(a, b string) int { return pos[a] - pos[b] })
	// A lone full-name column feeds both names when no column names them,
	// unless the header says the rows are companies: a column about the
	// company that is not the person's company field ("Company Domain
	// Name", "Company owner", "Organization Type" in a companies export).
	// Then "Name" is the company's name, and is not split into a person's.
	companies := false
	for _, c := range columns {
		n := normalise(c)
		mentions := strings.Contains(n, "company") || strings.Contains(n, "organization") || strings.Contains(n, "organisation")
		if mentions && !slices.Contains(autoTargets(c), "customer.company") && !slices.Contains(autoTargets(c), "bill_to.company") {
			companies = true
		}
	}
	if !taken["customer.first_name"] && !taken["customer.last_name"] {
		for i, c := range unmapped {
			if !fullNames[normalise(c)] {
				continue
			}
			if companies && normalise(c) == "name" {
				if !taken["customer.company"] {
					spec.Fields = append(spec.Fields, Field{Target: "customer.company", Column: c})
					taken["customer.company"] = true
					unmapped = append(unmapped[:i:i], unmapped[i+1:]...)
				}
				break
			}
			spec.Fields = append(spec.Fields,
				Field{Target: "customer.first_name", Column: c, Transforms: []string{"given_name"}},
				Field{Target: "customer.last_name", Column: c, Transforms: []string{"family_name"}})
			unmapped = append(unmapped[:i:i], unmapped[i+1:]...)
			break
		}
	}
	for _, c := range unmapped {
		if why := looksLikeTarget(c); why != "" && !lost[c] {
			notes = append(notes, fmt.Sprintf("column %q is not sent: %s", c, why))
		}
	}
	return spec, unmapped, notes
}

// looksLikeTarget says why an unmapped column looks like something
// CreateCustomer could take, or "".
func looksLikeTarget(c string) string {
	n := normalise(c)
	for _, w := range []string{"label", "type", "marketing", "phonetic", "formatted", "verified", "optin", "consent"} {
		if strings.Contains(n, w) {
			return "" // about a field, not the field
		}
	}
	for _, p := range shippingPrefixes {
		if strings.HasPrefix(n, p) && n != p {
			return "it is a shipping address, and CreateCustomer has none (map it to customer.* or bill_to.* in a mapping file if it is the customer's address)"
		}
	}
	for _, w := range []string{"address", "street", "city", "zip", "postal", "country", "phone", "mobile", "company", "email", "state", "province"} {
		if strings.Contains(n, w) {
			return fmt.Sprintf("it looks like a %s, but no rule maps it (map it in a mapping file, or pass --unmapped-as-metadata)", w)
		}
	}
	return ""
}

var fullNames = map[string]bool{"name": true, "fullname": true, "contactname": true, "customername": true, "contact": true, "prospectname": true}
