package mapping

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml"
)

// Starter writes spec as a mapping file an operator can edit: one line per
// field, then the unmapped columns as commented-out metadata entries. Fed
// back to Parse, it maps rows exactly as spec does.
// notes, from AutoNotes, come first, as comments.
func Starter(input string, spec Spec, unmapped, notes []string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Mapping for %s, made by auto-mapping its header.\n", input)
	fmt.Fprintf(&b, "# Edit it, then: revcent-import import %s --mapping THIS_FILE\n", input)
	b.WriteString("# Targets: customer.*, bill_to.*, payment.credit_card.*, internal_customer_id,\n")
	b.WriteString("# campaign, metadata.<name>. A value is a column name, or\n")
	b.WriteString("# {column: NAME | value: CONSTANT, default: VALUE, transform: [NAMES]}.\n")
	b.WriteString("# Transforms: " + strings.Join(transformNames(), ", ") + ".\n\n")
	for _, n := range notes {
		b.WriteString("# NOTE: " + n + "\n")
	}
	if len(notes) > 0 {
		b.WriteString("\n")
	}
	hasCampaign := false
	for _, f := range spec.Fields {
		hasCampaign = hasCampaign || f.Target == "campaign"
	}
	if !hasCampaign {
		b.WriteString("# campaign: {value: YOUR CAMPAIGN}   # or pass --campaign\n")
	}
	for _, f := range spec.Fields {
		b.WriteString(f.Target + ": " + entryYAML(f) + "\n")
	}
	if len(unmapped) > 0 {
		b.WriteString("\n# Not mapped: uncomment a line to send the column as metadata, or set\n")
		b.WriteString("# options.unmapped_as_metadata: true to send them all.\n")
		for _, c := range unmapped {
			fmt.Fprintf(&b, "# metadata.%s: %s\n", slug(c), scalar(c))
		}
	}
	return b.Bytes()
}

func entryYAML(f Field) string {
	if f.Column != "" && f.Default == "" && len(f.Transforms) == 0 {
		return scalar(f.Column)
	}
	var parts []string
	if f.Column != "" {
		parts = append(parts, "column: "+quoted(f.Column))
	} else {
		parts = append(parts, "value: "+quoted(f.Value))
	}
	if f.Default != "" {
		parts = append(parts, "default: "+quoted(f.Default))
	}
	if len(f.Transforms) > 0 {
		parts = append(parts, "transform: ["+strings.Join(f.Transforms, ", ")+"]")
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// scalar writes s as a plain YAML scalar when that reads back as the same
// string, else double-quoted.
func scalar(s string) string {
	if s != "" && !strings.ContainsAny(s, "\n\r\t#") {
		var m map[string]any
		if yaml.Unmarshal([]byte("k: "+s), &m) == nil {
			if v, ok := m["k"].(string); ok && v == s {
				return s
			}
		}
	}
	return quoted(s)
}

// quoted writes s double-quoted; a JSON string is a valid YAML one.
func quoted(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// slug turns a column name into a metadata name: lower case, words joined
// by underscores.
func slug(s string) string {
	var b strings.Builder
	sep := false
	for _, r := range strings.ToLower(s) {
		if r == ' ' || r == '-' || r == '.' || r == '_' || r == '/' {
			sep = b.Len() > 0
			continue
		}
		if sep {
			b.WriteByte('_')
			sep = false
		}
		b.WriteRune(r)
	}
	if b.Len() == 0 {
		return "column"
	}
	return b.String()
}
