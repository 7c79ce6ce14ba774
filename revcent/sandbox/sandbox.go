// Package sandbox is an in-process RevCent-compatible server: it validates
// CreateCustomer bodies strictly against RevCent's published schema,
// answers with the documented success and error shapes, checks x-api-key,
// knows a set of campaigns, serves the customer search and get endpoints
// the importer assumes, and counts what it created. It backs the demo,
// `import --sandbox`, `revcent-import sandbox`, the tests and benchmarks.
package sandbox

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/revcent-import/revcent-import/revcent"
)

// DefaultAPIKey is the key the sandbox accepts when Options.APIKey is empty.
const DefaultAPIKey = "sandbox-key"

// DefaultCampaigns are known when Options.Campaigns is empty.
var DefaultCampaigns = []string{"Spring Promo", "Nightly Load", "Migration"}

// DuplicateMode is what the sandbox does with an email it already holds.
// RevCent's v2 behaviour is undocumented, so both are served.
type DuplicateMode uint8

const (
	// CreateAgain creates a second customer with the same email.
	CreateAgain DuplicateMode = iota
	// ReturnExisting answers success with the existing customer's id.
	ReturnExisting
)

// Options configures a Server.
type Options struct {
	APIKey    string   // accepted x-api-key; DefaultAPIKey when empty
	Campaigns []string // campaign names or ids, matched case-insensitively; DefaultCampaigns when empty
	Duplicate DuplicateMode
	Now       func() time.Time // clock for api_call_unix and created dates; time.Now when nil
	Faults    Faults
	// Discard keeps no customers, only counts (benchmarks: memory stays
	// flat; search and get find nothing).
	Discard bool
	// RecordArrivals keeps the arrival time of every create request, for
	// measuring a client's rate (GET /_sandbox/customers returns them).
	RecordArrivals bool
}

// Faults are the troubles the sandbox injects into create requests, to
// test what the importer does with them. The zero value injects none.
type Faults struct {
	Latency time.Duration // added to every create answer
	Jitter  time.Duration // plus a uniform random share of this
	// RateLimit, when positive, is the create requests a second the
	// server accepts (token bucket, bursts of RateBurst); beyond it, 429
	// with Retry-After: RetryAfter (whole seconds; 0 sends no header).
	RateLimit  float64
	RateBurst  int
	RetryAfter int
	// Unavailable is the share (0-1) of create requests answered 503
	// before anything is created.
	Unavailable float64
	// LostAnswers is the share (0-1) of create requests that create the
	// customer, then lose the answer: the connection is closed unanswered.
	LostAnswers float64
	// Seed makes the random choices repeatable; 0 picks one.
	Seed uint64
}

// Customer is what the sandbox stored for one created customer. Card
// numbers are kept as their last four digits only.
type Customer struct {
	ID       string
	Created  time.Time
	Campaign string
	Request  revcent.CreateCustomerRequest
}

// Server is a RevCent-compatible HTTP handler. It is safe for concurrent use.
type Server struct {
	opts      Options
	campaigns map[string]bool

	mu        sync.RWMutex
	customers []*Customer
	byID      map[string]*Customer
	byEmail   map[string]*Customer // only with ReturnExisting

	requests atomic.Int64
	created  atomic.Int64
	rejected atomic.Int64
	mux      *http.ServeMux

	arrivalMu sync.Mutex
	arrivals  []int64

	faultMu   sync.Mutex
	rnd       *mrand.Rand
	bucket    *rate.Limiter
	throttled atomic.Int64
	dropped   atomic.Int64
	failed503 atomic.Int64
}

// New returns a Server configured by opts.
func New(opts Options) *Server {
	if opts.APIKey == "" {
		opts.APIKey = DefaultAPIKey
	}
	if len(opts.Campaigns) == 0 {
		opts.Campaigns = DefaultCampaigns
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, campaigns: map[string]bool{}, byID: map[string]*Customer{}}
	for _, c := range opts.Campaigns {
		s.campaigns[strings.ToLower(strings.TrimSpace(c))] = true
	}
	if opts.Duplicate == ReturnExisting {
		s.byEmail = map[string]*Customer{}
	}
	seed := opts.Faults.Seed
	if seed == 0 {
		seed = mrand.Uint64()
	}
	s.rnd = mrand.New(mrand.NewPCG(seed, seed>>1|1))
	if f := opts.Faults; f.RateLimit > 0 {
		s.bucket = rate.NewLimiter(rate.Limit(f.RateLimit), max(f.RateBurst, 1))
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /v2/customers", s.create)
	s.mux.HandleFunc("GET /v2/customers/search", s.search)
	s.mux.HandleFunc("GET /v2/customers/{id}", s.get)
	s.mux.HandleFunc("GET /_sandbox/customers", s.dump)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if r.Header.Get("x-api-key") != s.opts.APIKey {
		s.fail(w, http.StatusUnauthorized, "unauthorized", "The API key is missing or invalid.")
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Requests returns how many requests the server answered.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Created returns how many customers the server created.
func (s *Server) Created() int64 { return s.created.Load() }

// Rejected returns how many create requests were answered with an error.
func (s *Server) Rejected() int64 { return s.rejected.Load() }

// Customers returns a snapshot of the created customers, oldest first.
func (s *Server) Customers() []Customer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Customer, len(s.customers))
	for i, c := range s.customers {
		out[i] = *c
	}
	return out
}

// Running is a Server listening on a loopback port.
type Running struct {
	*Server
	URL string // base URL, ending in /v2
	srv *http.Server
	l   net.Listener
}

// Start serves a new Server on addr (host:port; "127.0.0.1:0" picks a free
// loopback port) until Close.
func Start(addr string, opts Options) (*Running, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	s := New(opts)
	r := &Running{Server: s, URL: "http://" + l.Addr().String() + "/v2", l: l,
		srv: &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}}
	go r.srv.Serve(l)
	return r, nil
}

// Close stops the listener and every open connection.
func (r *Running) Close() error { return r.srv.Close() }

// FaultCounts says how often each fault fired.
type FaultCounts struct {
	Throttled   int64 `json:"throttled"`   // 429 answers
	Unavailable int64 `json:"unavailable"` // 503 answers
	Lost        int64 `json:"lost"`        // created, answer dropped
}

// Faults returns how often each fault fired.
func (s *Server) FaultCounts() FaultCounts {
	return FaultCounts{Throttled: s.throttled.Load(), Unavailable: s.failed503.Load(), Lost: s.dropped.Load()}
}

// chance reports whether a fault of probability p fires now.
func (s *Server) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.rnd.Float64() < p
}

// delay sleeps the configured latency and jitter, or until the client
// leaves.
func (s *Server) delay(r *http.Request) {
	f := s.opts.Faults
	d := f.Latency
	if f.Jitter > 0 {
		s.faultMu.Lock()
		d += time.Duration(s.rnd.Int64N(int64(f.Jitter)))
		s.faultMu.Unlock()
	}
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	if s.opts.RecordArrivals {
		now := time.Now().UnixNano()
		s.arrivalMu.Lock()
		s.arrivals = append(s.arrivals, now)
		s.arrivalMu.Unlock()
	}
	f := s.opts.Faults
	s.delay(r)
	if s.bucket != nil && !s.bucket.Allow() {
		s.throttled.Add(1)
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
		}
		s.fail(w, http.StatusTooManyRequests, "rate_limited", "Too many requests.")
		return
	}
	if s.chance(f.Unavailable) {
		s.failed503.Add(1)
		s.fail(w, http.StatusServiceUnavailable, "unavailable", "Service temporarily unavailable.")
		return
	}
	lose := s.chance(f.LostAnswers)
	if lose {
		// Answer into a recorder, then drop the connection: the customer
		// exists, the client never hears of it.
		rec := httptest.NewRecorder()
		s.createNow(rec, r)
		if rec.Code == http.StatusOK {
			s.dropped.Add(1)
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		return
	}
	s.createNow(w, r)
}

func (s *Server) createNow(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		s.fail(w, http.StatusBadRequest, "invalid_request", "unreadable body: "+err.Error())
		return
	}
	var in request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		s.fail(w, http.StatusBadRequest, "invalid_request", "body does not match CreateCustomer: "+err.Error())
		return
	}
	if dec.More() {
		s.fail(w, http.StatusBadRequest, "invalid_request", "body has data after the JSON object")
		return
	}
	req, err := in.validate()
	if err != nil {
		s.fail(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if !s.campaigns[strings.ToLower(req.Campaign)] {
		s.fail(w, http.StatusNotFound, "campaign_not_found", fmt.Sprintf("Campaign %q not found.", req.Campaign))
		return
	}
	c := s.store(req)
	s.reply(w, http.StatusOK, revcent.Response{Code: 1, CustomerID: c.ID, Result: "Customer created"})
}

// store records req as a new customer, or returns the customer that already
// holds its email when the server is in ReturnExisting mode.
func (s *Server) store(req revcent.CreateCustomerRequest) *Customer {
	if cc := req.Payment; cc != nil && cc.CreditCard != nil && len(cc.CreditCard.CardNumber) > 4 {
		card := *cc.CreditCard
		card.CardNumber = card.CardNumber[len(card.CardNumber)-4:]
		card.CardCode = ""
		req.Payment = &revcent.Payment{CreditCard: &card}
	}
	if s.opts.Discard {
		s.created.Add(1)
		return &Customer{ID: newID()}
	}
	email := strings.ToLower(req.Customer.Email)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byEmail != nil {
		if c, ok := s.byEmail[email]; ok {
			return c
		}
	}
	c := &Customer{ID: newID(), Created: s.opts.Now(), Campaign: req.Campaign, Request: req}
	s.customers = append(s.customers, c)
	s.byID[c.ID] = c
	if s.byEmail != nil {
		s.byEmail[email] = c
	}
	s.created.Add(1)
	return c
}

// search answers the assumed SearchCustomers shape: customers any of whose
// searchable fields equals the term case-insensitively, newest first, at
// most 10.
func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	term := strings.TrimSpace(r.URL.Query().Get("search_term"))
	if term == "" {
		s.fail(w, http.StatusBadRequest, "invalid_request", "search_term is required")
		return
	}
	resp := revcent.SearchResponse{Code: 1, Results: []revcent.Customer{}}
	s.mu.RLock()
	for i := len(s.customers) - 1; i >= 0 && len(resp.Results) < 10; i-- {
		if c := s.customers[i]; c.matches(term) {
			resp.Results = append(resp.Results, c.summary())
		}
	}
	s.mu.RUnlock()
	resp.APICallID, resp.APICallUnix = newID(), s.opts.Now().Unix()
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	c, ok := s.byID[r.PathValue("id")]
	s.mu.RUnlock()
	if !ok {
		s.fail(w, http.StatusNotFound, "customer_not_found", "Customer not found.")
		return
	}
	sum := c.summary()
	sum.InternalCustomerID = c.Request.InternalCustomerID
	writeJSON(w, http.StatusOK, revcent.GetResponse{APICallID: newID(), APICallUnix: s.opts.Now().Unix(), Code: 1, Customer: &sum})
}

// Dump is the answer of GET /_sandbox/customers, which is not part of
// RevCent's API: every stored customer, oldest first, so that a test or an
// operator can check what a sandbox in another process received.
type Dump struct {
	Requests  int64       `json:"requests"` // every request answered, this one excluded
	Created   int64       `json:"created"`
	Rejected  int64       `json:"rejected"` // error answers, faults included
	Faults    FaultCounts `json:"faults"`
	Customers []Customer  `json:"customers"`
	Arrivals  []int64     `json:"arrivals,omitempty"` // unix nanoseconds of each create request, with RecordArrivals
}

func (s *Server) dump(w http.ResponseWriter, r *http.Request) {
	s.arrivalMu.Lock()
	arrivals := append([]int64(nil), s.arrivals...)
	s.arrivalMu.Unlock()
	writeJSON(w, http.StatusOK, Dump{Requests: s.Requests() - 1, Created: s.Created(), Rejected: s.Rejected(),
		Faults: s.FaultCounts(), Customers: s.Customers(), Arrivals: arrivals})
}

func (c *Customer) summary() revcent.Customer {
	return revcent.Customer{ItemType: "customer", ID: c.ID, Email: c.Request.Customer.Email,
		FirstName: c.Request.Customer.FirstName, LastName: c.Request.Customer.LastName,
		CreatedDateUnix: c.Created.Unix()}
}

// matches reports whether term equals one of the fields RevCent's search
// covers: id, names, address line 1, email, internal id, phone, metadata.
func (c *Customer) matches(term string) bool {
	k := &c.Request.Customer
	for _, f := range [...]string{c.ID, k.Email, k.FirstName, k.LastName, k.AddressLine1, k.Phone, c.Request.InternalCustomerID} {
		if f != "" && strings.EqualFold(f, term) {
			return true
		}
	}
	for _, m := range c.Request.Metadata {
		if strings.EqualFold(m.Value, term) {
			return true
		}
	}
	return false
}

func (s *Server) fail(w http.ResponseWriter, status int, code, msg string) {
	s.rejected.Add(1)
	s.reply(w, status, revcent.Response{Code: 0, ErrorCode: code, Message: msg, Result: "Error"})
}

func (s *Server) reply(w http.ResponseWriter, status int, r revcent.Response) {
	r.APICallID, r.APICallUnix = newID(), s.opts.Now().Unix()
	writeJSON(w, status, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// newID returns a 20-character alphanumeric id, as RevCent's are.
func newID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b [20]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

// request mirrors CreateCustomerRequest with pointers, so that a missing
// field can be told from an empty one.
type request struct {
	Campaign           *string    `json:"campaign"`
	Customer           *contact   `json:"customer"`
	BillTo             *contact   `json:"bill_to"`
	Payment            *payment   `json:"payment"`
	InternalCustomerID *string    `json:"internal_customer_id"`
	Metadata           []metadata `json:"metadata"`
}

type contact struct {
	FirstName    *string `json:"first_name"`
	LastName     *string `json:"last_name"`
	Email        *string `json:"email"`
	AddressLine1 *string `json:"address_line_1"`
	AddressLine2 *string `json:"address_line_2"`
	City         *string `json:"city"`
	State        *string `json:"state"`
	Zip          *string `json:"zip"`
	Country      *string `json:"country"`
	Company      *string `json:"company"`
	Phone        *string `json:"phone"`
}

type payment struct {
	CreditCard *card `json:"credit_card"`
}

type card struct {
	CardNumber *string `json:"card_number"`
	ExpMonth   *int    `json:"exp_month"`
	ExpYear    *int    `json:"exp_year"`
	CardCode   *string `json:"card_code"`
}

type metadata struct {
	Name  *string `json:"name"`
	Value *string `json:"value"`
}

// validate checks the rules of CreateCustomer.json that a typed decode
// does not: required fields, email format, alpha-3 countries, metadata
// lengths, digit-only card fields.
func (in *request) validate() (revcent.CreateCustomerRequest, error) {
	var out revcent.CreateCustomerRequest
	var errs []error
	if in.Campaign == nil || strings.TrimSpace(*in.Campaign) == "" {
		errs = append(errs, errors.New("campaign is required"))
	} else {
		out.Campaign = strings.TrimSpace(*in.Campaign)
	}
	if in.Customer == nil {
		errs = append(errs, errors.New("customer is required"))
	} else {
		c, err := in.Customer.validate("customer")
		out.Customer = c
		errs = append(errs, err)
	}
	if in.BillTo != nil {
		c, err := in.BillTo.validate("bill_to")
		out.BillTo = &c
		errs = append(errs, err)
	}
	if in.Payment != nil {
		out.Payment = &revcent.Payment{}
		if cc := in.Payment.CreditCard; cc != nil {
			card := revcent.CreditCard{CardNumber: str(cc.CardNumber), CardCode: str(cc.CardCode)}
			if cc.CardNumber != nil && !digits(card.CardNumber) {
				errs = append(errs, errors.New("payment.credit_card.card_number must be digits only"))
			}
			if cc.CardCode != nil && !digits(card.CardCode) {
				errs = append(errs, errors.New("payment.credit_card.card_code must be digits only"))
			}
			if cc.ExpMonth != nil {
				if card.ExpMonth = *cc.ExpMonth; card.ExpMonth < 1 || card.ExpMonth > 12 {
					errs = append(errs, fmt.Errorf("payment.credit_card.exp_month %d is not a month", card.ExpMonth))
				}
			}
			if cc.ExpYear != nil {
				if card.ExpYear = *cc.ExpYear; card.ExpYear < 0 || card.ExpYear > 99 {
					errs = append(errs, fmt.Errorf("payment.credit_card.exp_year %d is not a two-digit year", card.ExpYear))
				}
			}
			out.Payment.CreditCard = &card
		}
	}
	out.InternalCustomerID = str(in.InternalCustomerID)
	for i, m := range in.Metadata {
		if m.Name == nil || m.Value == nil {
			errs = append(errs, fmt.Errorf("metadata[%d]: name and value are required", i))
			continue
		}
		if n := utf8.RuneCountInString(*m.Name); n < 1 || n > 100 {
			errs = append(errs, fmt.Errorf("metadata[%d].name must be 1-100 characters, got %d", i, n))
		}
		if n := utf8.RuneCountInString(*m.Value); n < 1 || n > 255 {
			errs = append(errs, fmt.Errorf("metadata[%d].value must be 1-255 characters, got %d", i, n))
		}
		out.Metadata = append(out.Metadata, revcent.Metadata{Name: *m.Name, Value: *m.Value})
	}
	return out, errors.Join(errs...)
}

func (c *contact) validate(obj string) (revcent.Contact, error) {
	out := revcent.Contact{
		FirstName: str(c.FirstName), LastName: str(c.LastName), Email: str(c.Email),
		AddressLine1: str(c.AddressLine1), AddressLine2: str(c.AddressLine2), City: str(c.City),
		State: str(c.State), Zip: str(c.Zip), Country: str(c.Country), Company: str(c.Company), Phone: str(c.Phone),
	}
	var errs []error
	for _, f := range []struct {
		name string
		v    *string
	}{{"first_name", c.FirstName}, {"last_name", c.LastName}, {"email", c.Email}} {
		if f.v == nil || strings.TrimSpace(*f.v) == "" {
			errs = append(errs, fmt.Errorf("%s.%s is required", obj, f.name))
		}
	}
	if c.Email != nil && *c.Email != "" && !revcent.ValidEmail(*c.Email) {
		errs = append(errs, fmt.Errorf("%s.email %q is not an email address", obj, *c.Email))
	}
	if c.Country != nil && !alpha3(*c.Country) {
		errs = append(errs, fmt.Errorf("%s.country %q is not an ISO 3166-1 alpha-3 code", obj, *c.Country))
	}
	return out, errors.Join(errs...)
}

func alpha3(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
