// Package revcent speaks RevCent's v2 customer API: the CreateCustomer
// request and response types, an HTTP client that classifies every failure
// by whether the customer may have been created, and the customer search
// used to reconcile requests whose outcome is unknown.
package revcent

import (
	"encoding/json"
	"strconv"
)

// CreateCustomerRequest is the body of POST /v2/customers, field for field
// as RevCent's CreateCustomer schema defines it. Optional fields are omitted
// when empty: the schema forbids unknown properties and RevCent treats a
// present empty string differently from an absent field.
type CreateCustomerRequest struct {
	Campaign           string     `json:"campaign"`
	Customer           Contact    `json:"customer"`
	BillTo             *Contact   `json:"bill_to,omitempty"`
	Payment            *Payment   `json:"payment,omitempty"`
	InternalCustomerID string     `json:"internal_customer_id,omitempty"`
	Metadata           []Metadata `json:"metadata,omitempty"`
}

// Contact is the shape shared by the customer and bill_to objects.
// FirstName, LastName and Email are required by the schema.
type Contact struct {
	FirstName    string `json:"first_name"`
	LastName     string `json:"last_name"`
	Email        string `json:"email"`
	AddressLine1 string `json:"address_line_1,omitempty"`
	AddressLine2 string `json:"address_line_2,omitempty"`
	City         string `json:"city,omitempty"`
	State        string `json:"state,omitempty"`
	Zip          string `json:"zip,omitempty"`
	Country      string `json:"country,omitempty"` // ISO 3166-1 alpha-3
	Company      string `json:"company,omitempty"`
	Phone        string `json:"phone,omitempty"`
}

// Payment carries an optional credit card to attach to the new customer.
type Payment struct {
	CreditCard *CreditCard `json:"credit_card,omitempty"`
}

// CreditCard is a card to attach. CardNumber and CardCode are secrets: they
// are sent to RevCent and nowhere else.
type CreditCard struct {
	CardNumber string `json:"card_number,omitempty"`
	ExpMonth   int    `json:"exp_month,omitempty"` // 1-12
	ExpYear    int    `json:"exp_year,omitempty"`  // two digits, YY
	CardCode   string `json:"card_code,omitempty"`
}

// Metadata is one name/value pair (name 1-100, value 1-255 characters).
type Metadata struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Response is the union of RevCent's documented success and error answers.
// Success is Code == 1 with a CustomerID; errors carry Code == 0,
// ErrorCode and Message.
type Response struct {
	APICallID   string `json:"api_call_id,omitempty"`
	APICallUnix int64  `json:"api_call_unix,omitempty"`
	Code        int    `json:"code"`
	CustomerID  string `json:"customer_id,omitempty"`
	Result      string `json:"result,omitempty"`
	ErrorCode   string `json:"error_code,omitempty"`
	Message     string `json:"message,omitempty"`
}

// Customer is one customer as the search, list and get endpoints describe
// it. Only ID and CreatedDateUnix (search and list) are documented; the
// email, names and internal id are read when present, under the names
// RevCent uses elsewhere, and HasEmail and HasInternalID say whether the
// answer carried them, so that reconciliation decides from what is there.
type Customer struct {
	ItemType           string `json:"item_type,omitempty"`
	ID                 string `json:"id"`
	Email              string `json:"email,omitempty"`
	FirstName          string `json:"first_name,omitempty"`
	LastName           string `json:"last_name,omitempty"`
	InternalCustomerID string `json:"internal_customer_id,omitempty"`
	CreatedDateUnix    int64  `json:"created_date_unix,omitempty"`

	HasEmail      bool `json:"-"`
	HasInternalID bool `json:"-"`
}

// UnmarshalJSON reads a customer object, accepting the alternate names an
// undocumented answer may use (customer_id for id, internal_id for
// internal_customer_id, created_unix for created_date_unix).
func (c *Customer) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*c = customerFrom(m)
	return nil
}

// customerFrom reads a customer from an object's fields.
func customerFrom(m map[string]json.RawMessage) Customer {
	str := func(names ...string) (string, bool) {
		for _, n := range names {
			if v, ok := m[n]; ok {
				var s string
				if json.Unmarshal(v, &s) == nil {
					return s, true
				}
				var f json.Number
				if json.Unmarshal(v, &f) == nil {
					return f.String(), true
				}
			}
		}
		return "", false
	}
	var c Customer
	c.ItemType, _ = str("item_type")
	c.ID, _ = str("id", "customer_id", "_id")
	c.Email, c.HasEmail = str("email", "customer_email")
	c.FirstName, _ = str("first_name")
	c.LastName, _ = str("last_name")
	c.InternalCustomerID, c.HasInternalID = str("internal_customer_id", "internal_id")
	if v, ok := str("created_date_unix", "created_unix"); ok {
		c.CreatedDateUnix, _ = strconv.ParseInt(v, 10, 64)
	}
	return c
}

// SearchResponse is the answer of the customer search.
type SearchResponse struct {
	APICallID   string     `json:"api_call_id,omitempty"`
	APICallUnix int64      `json:"api_call_unix,omitempty"`
	Code        int        `json:"code"`
	Results     []Customer `json:"results"`
	ErrorCode   string     `json:"error_code,omitempty"`
	Message     string     `json:"message,omitempty"`
}

// ListResponse is the answer of GetCustomers (GET /v2/customers), a page
// of the customers created in a date window: the search's shape, except
// that the list's key is not documented (results, customers and data are
// all read; see UnmarshalJSON).
type ListResponse SearchResponse
