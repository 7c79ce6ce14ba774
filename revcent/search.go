package revcent

// This file holds everything the importer assumes about RevCent's customer
// search, list and get endpoints, which RevCent documents only in part (see
// shared/api/README.md): their paths, their answer shapes, that search is
// full-text, and how a customer is recognised as a row's. Reconciliation
// depends on nothing else.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SearchLimit is the most results SearchCustomers returns: a full page
// proves nothing about the customers it left out.
const SearchLimit = 10

// ListPageSize is the largest page GetCustomers serves.
const ListPageSize = 25

// SearchCustomers runs RevCent's full-text customer search for term and
// returns at most SearchLimit customers. Matches are loose: callers
// confirm them (see Candidate.Matches).
func (c *Client) SearchCustomers(ctx context.Context, term string) ([]Customer, error) {
	var resp SearchResponse
	const what = "GET /customers/search"
	status, err := c.get(ctx, what, c.base+"/customers/search?search_term="+url.QueryEscape(term), &resp)
	if err != nil {
		return nil, err
	}
	if resp.Code != 1 {
		return nil, answerError(what, status, resp.Code, resp.ErrorCode, resp.Message)
	}
	return resp.Results, nil
}

// GetCustomer returns one customer by id. RevCent documents the answer as
// flat (the customer's fields beside code); a nested "customer" object is
// read too.
func (c *Client) GetCustomer(ctx context.Context, id string) (*Customer, error) {
	var raw map[string]json.RawMessage
	const what = "GET /customers/{id}"
	status, err := c.get(ctx, what, c.base+"/customers/"+url.PathEscape(id), &raw)
	if err != nil {
		return nil, err
	}
	var code int
	var errCode, msg string
	json.Unmarshal(raw["code"], &code)
	json.Unmarshal(raw["error_code"], &errCode)
	json.Unmarshal(raw["message"], &msg)
	if code != 1 {
		return nil, answerError(what, status, code, errCode, msg)
	}
	fields := raw
	if nested, ok := raw["customer"]; ok {
		var m map[string]json.RawMessage
		if json.Unmarshal(nested, &m) == nil {
			fields = m
		}
	}
	cust := customerFrom(fields)
	if cust.ID == "" {
		cust.ID = id // the flat answer need not repeat the id it was asked for
	}
	return &cust, nil
}

// GetShape says how a GetCustomer answer is laid out, for probe.
func GetShape(body []byte) string {
	var raw map[string]json.RawMessage
	if json.Unmarshal(body, &raw) != nil {
		return "unreadable"
	}
	if v, ok := raw["customer"]; ok && len(v) > 0 && v[0] == '{' {
		return "nested"
	}
	return "flat"
}

// GetRaw returns the body of GET /customers/{id} as it came, for probe.
func (c *Client) GetRaw(ctx context.Context, id string) ([]byte, error) {
	var raw json.RawMessage
	_, err := c.get(ctx, "GET /customers/{id}", c.base+"/customers/"+url.PathEscape(id), &raw)
	return raw, err
}

// ListCustomers returns page (from 1) of the customers created from start
// to end (whole seconds, both included), ListPageSize at a time, filtered
// by campaign when campaign is a campaign id (20 characters; a name cannot
// filter). A page shorter than ListPageSize is the last.
func (c *Client) ListCustomers(ctx context.Context, start, end time.Time, page int, campaign string) ([]Customer, error) {
	q := url.Values{}
	q.Set("date_start", strconv.FormatInt(start.Unix(), 10))
	q.Set("date_end", strconv.FormatInt(end.Unix(), 10))
	q.Set("limit", strconv.Itoa(ListPageSize))
	q.Set("page", strconv.Itoa(page))
	if IsID(campaign) {
		q.Set("campaign_filter", campaign)
	}
	var resp ListResponse
	const what = "GET /customers"
	status, err := c.get(ctx, what, c.base+"/customers?"+q.Encode(), &resp)
	if err != nil {
		return nil, err
	}
	if resp.Code != 1 {
		return nil, answerError(what, status, resp.Code, resp.ErrorCode, resp.Message)
	}
	return resp.Results, nil
}

// UnmarshalJSON reads a GetCustomers page whose list is under results,
// customers or data.
func (r *ListResponse) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	json.Unmarshal(m["api_call_id"], &r.APICallID)
	json.Unmarshal(m["api_call_unix"], &r.APICallUnix)
	json.Unmarshal(m["code"], &r.Code)
	json.Unmarshal(m["error_code"], &r.ErrorCode)
	json.Unmarshal(m["message"], &r.Message)
	for _, k := range [...]string{"results", "customers", "data"} {
		if v, ok := m[k]; ok {
			if err := json.Unmarshal(v, &r.Results); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			return nil
		}
	}
	return nil
}

// IsID reports whether s has the form of a RevCent id: 20 letters and
// digits.
func IsID(s string) bool {
	if len(s) != 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// answerError describes a readable answer that is not a success.
func answerError(what string, status, code int, errCode, msg string) *Error {
	if msg == "" {
		msg = fmt.Sprintf("answer has code %d and no result", code)
	}
	return &Error{Class: Final, HTTPStatus: status, Code: errCode, Message: what + ": " + msg}
}

// Want is what a row's request said about the customer it would create:
// what a candidate found by search or list is compared with.
type Want struct {
	Email, FirstName, LastName, InternalID string
	// Since is the earliest moment, on RevCent's clock, at which one of
	// the row's requests could have created the customer (its first
	// pending line, less the clock allowance). A customer created before
	// it was not created by this row: it was already there.
	Since time.Time
}

// Verdict says what a candidate customer is to a row.
type Verdict uint8

const (
	// Other: not this row's customer.
	Other Verdict = iota
	// Same: the row's request created it.
	Same
	// Older: the same person, created before the row was first sent: it
	// was already in RevCent.
	Older
)

// Judge compares a candidate with the row. It decides from the fields the
// answer carried: an email, when present, must equal the row's (case
// aside); without one, the first and last names must (the search was for
// the row's email, so a full-text hit with the same names is the row's
// person); an internal id, when both have one, must equal. The creation
// time then tells Same from Older; a candidate with no creation time is
// never Same.
func (w Want) Judge(c Customer) Verdict {
	switch {
	case c.HasEmail:
		if !strings.EqualFold(strings.TrimSpace(c.Email), w.Email) {
			return Other
		}
	case c.FirstName == "" || c.LastName == "":
		return Other
	default:
		if !strings.EqualFold(strings.TrimSpace(c.FirstName), w.FirstName) || !strings.EqualFold(strings.TrimSpace(c.LastName), w.LastName) {
			return Other
		}
	}
	if c.HasInternalID && w.InternalID != "" && c.InternalCustomerID != w.InternalID {
		return Other
	}
	if c.CreatedDateUnix == 0 {
		return Older // no proof it is new: never adopted as this row's creation
	}
	if time.Unix(c.CreatedDateUnix, 0).Before(w.Since.Truncate(time.Second)) {
		return Older
	}
	return Same
}

// Found is what a search for a row's customer found.
type Found struct {
	ID string // the row's customer (Same), newest first; "" if none
	// OlderID is a customer with the row's email created before the row
	// was sent, when no Same was found.
	OlderID string
	// Full says the search returned a full page: customers it left out may
	// include the row's, so no Same proves nothing.
	Full bool
}

// FindCustomer searches for the customer a row's request may have created.
// Candidates without an email in the search answer are read with
// GetCustomer, whose answer may carry it. Only Found.ID is proof; its
// absence is not (the search may lag, and holds at most 10 results).
func (c *Client) FindCustomer(ctx context.Context, w Want) (Found, error) {
	list, err := c.SearchCustomers(ctx, w.Email)
	if err != nil {
		return Found{}, err
	}
	f := Found{Full: len(list) >= SearchLimit}
	var best, older *Customer
	for i := range list {
		cand := list[i]
		if !cand.HasEmail && cand.ID != "" {
			if full, err := c.GetCustomer(ctx, cand.ID); err == nil {
				if full.HasEmail {
					cand.Email, cand.HasEmail = full.Email, true
				}
				if full.HasInternalID {
					cand.InternalCustomerID, cand.HasInternalID = full.InternalCustomerID, true
				}
			}
		}
		switch w.Judge(cand) {
		case Same:
			if best == nil || cand.CreatedDateUnix > best.CreatedDateUnix {
				best = &cand
			}
		case Older:
			if older == nil || cand.CreatedDateUnix < older.CreatedDateUnix {
				older = &cand
			}
		}
	}
	if best != nil {
		f.ID = best.ID
	} else if older != nil {
		f.OlderID = older.ID
	}
	return f, nil
}

// IsExistingRefusal reports whether a refused create means "this email is
// already a customer". RevCent documents no error codes: known is the code
// probe saw for the account (exact match); without one, the words RevCent
// and similar APIs use are looked for.
func IsExistingRefusal(e *Error, known string) bool {
	if e == nil || e.Class != Final {
		return false
	}
	if known != "" {
		return strings.EqualFold(e.Code, known)
	}
	return saysExisting(e.Code) || saysExisting(e.Message)
}

// saysExisting reports whether an answer's words say the customer was
// already there.
func saysExisting(s string) bool {
	s = strings.ToLower(s)
	for _, w := range [...]string{"already exist", "exists", "duplicate", "retrieved", "already a customer", "existing"} {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}
