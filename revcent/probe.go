package revcent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Findings are what Probe learned about an account's API where RevCent's
// documentation is silent.
type Findings struct {
	// GetShape is how GetCustomer answers: "flat" (the customer's fields
	// beside code, as documented) or "nested" (under "customer").
	GetShape string `json:"get_shape"`
	// GetFields are the customer fields the get answer carried.
	GetFields []string `json:"get_fields"`
	// SearchLag is how long after its create answer the new customer
	// was first found by the search; SearchFound is false when it was not
	// found within the probe's limit.
	SearchLag   Duration `json:"search_lag"`
	SearchFound bool     `json:"search_found"`
	// Duplicates is what a second create with the same email did:
	// "create" (another customer), "existing" (code 1 with the first
	// customer's id) or "refuse" (code 0; ExistsCode is its error_code).
	Duplicates string `json:"duplicates"`
	ExistsCode string `json:"exists_error_code,omitempty"`
	// CustomerIDs are the customers the probe created (two when the
	// account creates another customer for a repeated email).
	CustomerIDs []string `json:"customer_ids"`
}

// Duration is a time.Duration written as text ("5.2s") in JSON.
type Duration struct{ time.Duration }

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration such as \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as \"30s\"", s)
	}
	d.Duration = v
	return nil
}

// ErrProbeEmailExists means the probe's address is already a customer: the
// probe needs one that is not, to time how soon a new customer is found.
var ErrProbeEmailExists = errors.New("is already a customer in this account: probe needs an address that is not (it times how soon a new customer can be found)")

// Probe learns how the account behaves: it checks the key with a search
// for req's email, creates that customer, reads it back with GetCustomer,
// searches for it every poll until found (at most maxLag), then sends the
// same create again. say is told of each step. It creates at most two
// customers, both with req's email.
func (c *Client) Probe(ctx context.Context, req CreateCustomerRequest, poll, maxLag time.Duration, say func(string)) (Findings, error) {
	var f Findings
	email := strings.ToLower(req.Customer.Email)
	w := Want{Email: email, FirstName: strings.ToLower(req.Customer.FirstName), LastName: strings.ToLower(req.Customer.LastName)}

	say("checking the key: searching for " + email)
	found, err := c.FindCustomer(ctx, Want{Email: email, Since: time.Now().Add(time.Hour)})
	if err != nil {
		return f, fmt.Errorf("the key check (a customer search) failed: %w", err)
	}
	if found.OlderID != "" {
		return f, fmt.Errorf("%s %w", email, ErrProbeEmailExists)
	}

	say("creating the customer " + email + " in campaign " + req.Campaign)
	off, _ := c.ServerOffset()
	w.Since = time.Now().Add(off - 2*time.Second)
	id, _, err := c.CreateCustomer(ctx, &req)
	if err != nil {
		return f, fmt.Errorf("creating %s: %w", email, err)
	}
	created := time.Now()
	f.CustomerIDs = append(f.CustomerIDs, id)

	say("reading it back with GetCustomer " + id)
	raw, err := c.GetRaw(ctx, id)
	if err != nil {
		return f, fmt.Errorf("reading back %s: %w", id, err)
	}
	f.GetShape = GetShape(raw)
	var m map[string]json.RawMessage
	json.Unmarshal(raw, &m)
	if nested, ok := m["customer"]; ok && f.GetShape == "nested" {
		m = nil
		json.Unmarshal(nested, &m)
	}
	for k := range m {
		switch k {
		case "api_call_id", "api_call_unix", "code", "result":
		default:
			f.GetFields = append(f.GetFields, k)
		}
	}
	slices.Sort(f.GetFields)

	say(fmt.Sprintf("searching for it every %v until found (at most %v)", poll, maxLag))
	for {
		got, err := c.FindCustomer(ctx, w)
		if err == nil && got.ID == id {
			f.SearchLag, f.SearchFound = Duration{time.Since(created)}, true
			break
		}
		if time.Since(created) > maxLag {
			f.SearchLag = Duration{time.Since(created)}
			break
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return f, ctx.Err()
		case <-t.C:
		}
	}

	say("creating the same customer again, to learn what a repeated email does")
	again, existing, err := c.CreateCustomer(ctx, &req)
	var e *Error
	switch {
	case err == nil && (again == id || existing):
		f.Duplicates = "existing"
	case err == nil:
		f.Duplicates = "create"
		f.CustomerIDs = append(f.CustomerIDs, again)
	case errors.As(err, &e) && e.Class == Final:
		f.Duplicates, f.ExistsCode = "refuse", e.Code
	default:
		return f, fmt.Errorf("the second create of %s: %w", email, err)
	}
	return f, nil
}

// RecommendedSettle is the settle window for an account with these
// findings: at least def (which covers late creates after gateway
// timeouts, which a probe cannot see), and three times the measured
// search lag, so that the searches in the window can find a customer
// before the slower list sweep is needed.
func (f Findings) RecommendedSettle(def time.Duration) time.Duration {
	s := max(def, (3 * f.SearchLag.Duration).Round(time.Second))
	if !f.SearchFound {
		s = max(s, 2*f.SearchLag.Duration.Round(time.Second))
	}
	return s
}
