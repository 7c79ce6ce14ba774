// Package schemacheck checks CreateCustomer request bodies against
// RevCent's own published schema (shared/api/CreateCustomer.json) with an
// independent JSON Schema validator (santhosh-tekuri/jsonschema, formats
// asserted), for tests: whatever the importer's validation lets through
// must be a body RevCent's schema accepts.
package schemacheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Path is where the schema lives: shared/ beside the repository.
func Path() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "api", "CreateCustomer.json")
}

var load = sync.OnceValues(func() (*jsonschema.Schema, error) {
	b, err := os.ReadFile(Path())
	if err != nil {
		return nil, err
	}
	var op struct {
		RequestBody struct {
			Content map[string]struct {
				Schema json.RawMessage `json:"schema"`
			} `json:"content"`
		} `json:"requestBody"`
	}
	if err := json.Unmarshal(b, &op); err != nil {
		return nil, err
	}
	raw := op.RequestBody.Content["application/json"].Schema
	if len(raw) == 0 {
		return nil, fmt.Errorf("%s: no request body schema", Path())
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("create-customer.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("create-customer.json")
})

// Available reports whether the schema can be read (shared/ is beside the
// repository), and why not.
func Available() error {
	_, err := load()
	return err
}

// Check validates one request body (JSON).
func Check(body []byte) error {
	sch, err := load()
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return err
	}
	return sch.Validate(v)
}
