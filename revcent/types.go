// Package revcent speaks RevCent's v2 customer API: the CreateCustomer
// request and response types, an HTTP client that classifies every failure
// by whether the customer may have been created, and the customer search
// used to reconcile requests whose outcome is unknown.
package revcent

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

// Customer is one customer as the search and get endpoints describe it.
type Customer struct {
	ItemType           string `json:"item_type,omitempty"`
	ID                 string `json:"id"`
	Email              string `json:"email"`
	FirstName          string `json:"first_name,omitempty"`
	LastName           string `json:"last_name,omitempty"`
	InternalCustomerID string `json:"internal_customer_id,omitempty"`
	CreatedDateUnix    int64  `json:"created_date_unix,omitempty"`
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

// GetResponse is the answer of GET /v2/customers/{id}.
type GetResponse struct {
	APICallID   string    `json:"api_call_id,omitempty"`
	APICallUnix int64     `json:"api_call_unix,omitempty"`
	Code        int       `json:"code"`
	Customer    *Customer `json:"customer,omitempty"`
	ErrorCode   string    `json:"error_code,omitempty"`
	Message     string    `json:"message,omitempty"`
}
