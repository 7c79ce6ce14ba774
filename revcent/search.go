package revcent

// This file holds everything the importer assumes about RevCent's customer
// search and get endpoints, which RevCent does not document in full (see
// shared/api/README.md): their paths, their answer shapes, and that search
// is full-text. Reconciliation depends on nothing else.

import (
	"context"
	"net/url"
	"strings"
)

// SearchCustomers runs RevCent's full-text customer search for term and
// returns at most 10 customers. Matches are loose: callers confirm them.
func (c *Client) SearchCustomers(ctx context.Context, term string) ([]Customer, error) {
	var resp SearchResponse
	status, err := c.get(ctx, c.base+"/customers/search?search_term="+url.QueryEscape(term), &resp)
	if err != nil {
		return nil, err
	}
	if resp.Code != 1 {
		return nil, &Error{Class: Final, HTTPStatus: status, Code: resp.ErrorCode, Message: resp.Message}
	}
	return resp.Results, nil
}

// GetCustomer returns one customer by id.
func (c *Client) GetCustomer(ctx context.Context, id string) (*Customer, error) {
	var resp GetResponse
	status, err := c.get(ctx, c.base+"/customers/"+url.PathEscape(id), &resp)
	if err != nil {
		return nil, err
	}
	if resp.Code != 1 || resp.Customer == nil {
		return nil, &Error{Class: Final, HTTPStatus: status, Code: resp.ErrorCode, Message: resp.Message}
	}
	return resp.Customer, nil
}

// FindCustomer looks for a customer that a request with this email (and,
// when not empty, this internal customer id) created. It accepts only an
// exact, case-insensitive email match; when internalID is set the match is
// confirmed with GetCustomer. Among several matches the newest wins, since
// the request being reconciled is the most recent one. It returns "" when
// no customer matches.
func (c *Client) FindCustomer(ctx context.Context, email, internalID string) (string, error) {
	found, err := c.SearchCustomers(ctx, email)
	if err != nil {
		return "", err
	}
	var best *Customer
	for i := range found {
		r := &found[i]
		if !strings.EqualFold(strings.TrimSpace(r.Email), email) {
			continue
		}
		if internalID != "" {
			full, err := c.GetCustomer(ctx, r.ID)
			if err != nil {
				return "", err
			}
			if full.InternalCustomerID != internalID {
				continue
			}
		}
		if best == nil || r.CreatedDateUnix > best.CreatedDateUnix {
			best = r
		}
	}
	if best == nil {
		return "", nil
	}
	return best.ID, nil
}
