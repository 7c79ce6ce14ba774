// Package sandbox is an in-process RevCent-compatible server: it validates
// CreateCustomer bodies strictly against RevCent's published schema,
// answers with the documented success and error shapes, checks x-api-key,
// knows a set of campaigns, serves the customer search and get endpoints
// the importer assumes, and counts what it created. It backs the demo,
// `import --sandbox`, `revcent-import sandbox`, the tests and benchmarks.
package sandbox

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/revcent-import/revcent-import/revcent"
)

// MaxFieldLength is the most characters the sandbox takes in a customer or
// bill_to field. RevCent's schema sets none; the importer refuses longer
// values by default (mapping.DefaultMaxFieldLength), so that validate and
// import agree.
const MaxFieldLength = 255

// DefaultAPIKey is the key the sandbox accepts when Options.APIKey is empty.
const DefaultAPIKey = "sandbox-key"

// DefaultCampaigns are known when Options.Campaigns is empty.
var DefaultCampaigns = []string{"Spring Promo", "Nightly Load", "Migration"}

// DuplicateMode is what the sandbox does with an email it already holds.
// RevCent's v2 behaviour is undocumented, so every plausible one is served.
type DuplicateMode uint8

const (
	// CreateAgain creates a second customer with the same email.
	CreateAgain DuplicateMode = iota
	// ReturnExisting answers success (code 1) with the existing customer's
	// id, as RevCent's v1 did ("retrieved if already exists").
	ReturnExisting
	// Refuse answers code 0 with error_code ExistsCode, HTTP 409.
	Refuse
)

// ExistsCode is the error_code of a refused repeated email (Refuse).
const ExistsCode = "customer_exists"

// ParseDuplicateMode reads create, existing or refuse.
func ParseDuplicateMode(s string) (DuplicateMode, error) {
	switch s {
	case "create", "":
		return CreateAgain, nil
	case "existing":
		return ReturnExisting, nil
	case "refuse":
		return Refuse, nil
	}
	return 0, fmt.Errorf("%q: want create, existing or refuse", s)
}

func (m DuplicateMode) String() string {
	return [...]string{"create", "existing", "refuse"}[m]
}

// Options configures a Server.
type Options struct {
	APIKey    string   // accepted x-api-key; DefaultAPIKey when empty
	Campaigns []string // campaign names or ids, matched case-insensitively; DefaultCampaigns when empty
	Duplicate DuplicateMode
	// NestedGet answers GetCustomer with the customer under a "customer"
	// key; the default is the flat answer RevCent documents.
	NestedGet bool
	// SearchLag is how long a new customer stays out of the search's
	// results (a full-text index refreshes later); GetCustomers and
	// GetCustomer see it at once.
	SearchLag time.Duration
	// SearchAnyWord makes the search match a customer when any word of
	// the term (split at @ and spaces, as a full-text analyser splits an
	// email) is in one of its fields: a search for one address at a
	// domain then finds every customer at that domain.
	SearchAnyWord bool
	// Sparse answers show only what RevCent documents: search and list
	// results carry the id, names and creation date but no email, and
	// GetCustomer no email and no internal id.
	Sparse bool
	Now    func() time.Time // clock for api_call_unix and created dates; time.Now when nil
	Faults Faults
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
	// RateLimitHeaders sends, with every create answer while RateLimit
	// holds, the IETF draft's RateLimit-Policy (RateLimit;w=1),
	// RateLimit-Limit, RateLimit-Remaining (the bucket's whole tokens)
	// and RateLimit-Reset (1): what a gateway in front of an API says.
	RateLimitHeaders bool
	// Unavailable is the share (0-1) of create requests answered 503
	// before anything is created.
	Unavailable float64
	// LostAnswers is the share (0-1) of create requests that create the
	// customer, then lose the answer: the connection is closed unanswered.
	LostAnswers float64
	// LateCreate makes every create finish this long after its request
	// arrived, whether or not the client is still waiting; the answer
	// comes then, if the client is.
	LateCreate time.Duration
	// Gateway504 is the share (0-1) of create requests answered 504 at
	// once, as a proxy that gave up would, while the origin goes on and
	// creates the customer (after LateCreate).
	Gateway504 float64
	// ErrorAfterCreate is the share (0-1) of create requests that create
	// the customer and then answer 200 with code 0 and an error code.
	ErrorAfterCreate float64
	// EchoCard refuses every create that carries a card with a 400 whose
	// message quotes the card number and code back, as many payment APIs
	// do: the client must not record them.
	EchoCard bool
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
	text     string // the searchable fields, lower case, NUL-separated
}

// Server is a RevCent-compatible HTTP handler. It is safe for concurrent use.
type Server struct {
	opts      Options
	campaigns map[string]bool

	mu        sync.RWMutex
	customers []*Customer
	byID      map[string]*Customer
	byEmail   map[string]*Customer // only with ReturnExisting
	// byWord indexes customers by each whole word (letters and digits) of
	// their searchable text, in store order, so that a search need not
	// read every customer (see candidates).
	byWord map[string][]*Customer

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
	gateway   atomic.Int64
	errAfter  atomic.Int64
	late      atomic.Int64 // creates that finished after the client left
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
	s := &Server{opts: opts, campaigns: map[string]bool{}, byID: map[string]*Customer{}, byWord: map[string][]*Customer{}}
	for _, c := range opts.Campaigns {
		s.campaigns[strings.ToLower(strings.TrimSpace(c))] = true
	}
	if opts.Duplicate != CreateAgain {
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
	s.mux.HandleFunc("GET /v2/customers", s.list)
	s.mux.HandleFunc("GET /v2/customers/search", s.search)
	s.mux.HandleFunc("GET /v2/customers/{id}", s.get)
	s.mux.HandleFunc("GET /_sandbox/customers", s.dump)
	s.mux.HandleFunc("POST /_sandbox/customers", s.preload)
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
	Throttled        int64 `json:"throttled"`          // 429 answers
	Unavailable      int64 `json:"unavailable"`        // 503 answers
	Lost             int64 `json:"lost"`               // created, answer dropped
	Gateway504       int64 `json:"gateway_504"`        // 504 at once, created later
	ErrorAfterCreate int64 `json:"error_after_create"` // created, answered code 0
	LateUnanswered   int64 `json:"late_unanswered"`    // created after the client left
}

// FaultCounts returns how often each fault fired.
func (s *Server) FaultCounts() FaultCounts {
	return FaultCounts{Throttled: s.throttled.Load(), Unavailable: s.failed503.Load(), Lost: s.dropped.Load(),
		Gateway504: s.gateway.Load(), ErrorAfterCreate: s.errAfter.Load(), LateUnanswered: s.late.Load()}
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
	arrived := time.Now()
	f := s.opts.Faults
	s.delay(r)
	allowed := s.bucket == nil || s.bucket.Allow()
	if s.bucket != nil && f.RateLimitHeaders {
		h := w.Header()
		limit := strconv.Itoa(int(math.Round(f.RateLimit)))
		h.Set("RateLimit-Policy", limit+";w=1")
		h.Set("RateLimit-Limit", limit)
		h.Set("RateLimit-Remaining", strconv.Itoa(max(int(s.bucket.Tokens()), 0)))
		h.Set("RateLimit-Reset", "1")
	}
	if !allowed {
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
	req, ok := s.parse(w, r)
	if !ok {
		return
	}
	switch {
	case s.chance(f.Gateway504):
		// A proxy gives up at once; the origin goes on.
		s.gateway.Add(1)
		s.later(arrived.Add(f.LateCreate), req)
		s.fail(w, http.StatusGatewayTimeout, "gateway_timeout", "Gateway Timeout")
		return
	case f.LateCreate > 0:
		// The create finishes at its own pace; the client may be gone.
		done := s.later(arrived.Add(f.LateCreate), req)
		select {
		case c := <-done:
			s.answer(w, r, c)
		case <-r.Context().Done():
			s.late.Add(1)
		}
		return
	}
	s.answer(w, r, s.store(req))
}

// stored is the outcome of storing a request.
type stored struct {
	c       *Customer
	existed bool // the email was already there (ReturnExisting, Refuse)
}

// later stores req at t, whatever becomes of the request, and passes the
// outcome on the returned channel.
func (s *Server) later(t time.Time, req revcent.CreateCustomerRequest) <-chan stored {
	done := make(chan stored, 1)
	time.AfterFunc(time.Until(t), func() { done <- s.store(req) })
	return done
}

// answer replies to a create that reached the store, applying the faults
// that strike after the customer exists.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, st stored) {
	f := s.opts.Faults
	switch {
	case st.existed && s.opts.Duplicate == Refuse:
		s.fail(w, http.StatusConflict, ExistsCode, "A customer with this email already exists.")
		return
	case !st.existed && s.chance(f.ErrorAfterCreate):
		s.errAfter.Add(1)
		s.fail(w, http.StatusOK, "internal_error", "The request could not be completed.")
		return
	case s.chance(f.LostAnswers):
		// The customer exists; the client never hears of it.
		s.dropped.Add(1)
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	result := "Customer created"
	if st.existed {
		result = "Customer retrieved: already exists"
	}
	s.reply(w, http.StatusOK, revcent.Response{Code: 1, CustomerID: st.c.ID, Result: result})
}

// parse reads and validates a create body, answering the error itself.
func (s *Server) parse(w http.ResponseWriter, r *http.Request) (revcent.CreateCustomerRequest, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		s.fail(w, http.StatusBadRequest, "invalid_request", "unreadable body: "+err.Error())
		return revcent.CreateCustomerRequest{}, false
	}
	var in request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		s.fail(w, http.StatusBadRequest, "invalid_request", "body does not match CreateCustomer: "+err.Error())
		return revcent.CreateCustomerRequest{}, false
	}
	if dec.More() {
		s.fail(w, http.StatusBadRequest, "invalid_request", "body has data after the JSON object")
		return revcent.CreateCustomerRequest{}, false
	}
	req, err := in.validate()
	if err != nil {
		s.fail(w, http.StatusBadRequest, "invalid_request", err.Error())
		return req, false
	}
	if cc := req.Payment; s.opts.Faults.EchoCard && cc != nil && cc.CreditCard != nil && cc.CreditCard.CardNumber != "" {
		s.fail(w, http.StatusBadRequest, "card_declined", fmt.Sprintf("Card %s (CVV %s, exp %02d/%d) was declined: card_number=%s",
			cc.CreditCard.CardNumber, cc.CreditCard.CardCode, cc.CreditCard.ExpMonth, cc.CreditCard.ExpYear, cc.CreditCard.CardNumber))
		return req, false
	}
	if !s.campaigns[strings.ToLower(req.Campaign)] {
		s.fail(w, http.StatusNotFound, "campaign_not_found", fmt.Sprintf("Campaign %q not found.", req.Campaign))
		return req, false
	}
	return req, true
}

// store records req as a new customer, or returns the customer that already
// holds its email when the server is in ReturnExisting or Refuse mode.
func (s *Server) store(req revcent.CreateCustomerRequest) stored {
	return s.storeAt(req, time.Time{})
}

// storeAt is store with a creation time (zero: now).
func (s *Server) storeAt(req revcent.CreateCustomerRequest, at time.Time) stored {
	if cc := req.Payment; cc != nil && cc.CreditCard != nil && len(cc.CreditCard.CardNumber) > 4 {
		card := *cc.CreditCard
		card.CardNumber = card.CardNumber[len(card.CardNumber)-4:]
		card.CardCode = ""
		req.Payment = &revcent.Payment{CreditCard: &card}
	}
	if s.opts.Discard {
		s.created.Add(1)
		return stored{c: &Customer{ID: newID()}}
	}
	email := strings.ToLower(req.Customer.Email)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byEmail != nil {
		if c, ok := s.byEmail[email]; ok {
			return stored{c: c, existed: true}
		}
	}
	if at.IsZero() {
		at = s.opts.Now()
	}
	c := &Customer{ID: newID(), Created: at, Campaign: req.Campaign, Request: req}
	c.matches("") // fills c.text while the lock is held: searches only read it
	// Kept in creation order, so that GetCustomers can find a window by
	// binary search; a preloaded customer goes where its date says.
	i := len(s.customers)
	for i > 0 && s.customers[i-1].Created.After(at) {
		i--
	}
	s.customers = append(s.customers, nil)
	copy(s.customers[i+1:], s.customers[i:])
	s.customers[i] = c
	s.byID[c.ID] = c
	for _, w := range words(c.text) {
		s.byWord[w] = append(s.byWord[w], c)
	}
	if s.byEmail != nil {
		s.byEmail[email] = c
	}
	s.created.Add(1)
	return stored{c: c}
}

// Preload adds customers as if created at the given times, before a test
// run: people already in RevCent. They do not count as created.
func (s *Server) Preload(reqs []revcent.CreateCustomerRequest, at time.Time) {
	for _, r := range reqs {
		s.storeAt(r, at)
		s.created.Add(-1)
	}
}

// preload serves POST /_sandbox/customers (not RevCent's API): a JSON
// object {"created_unix": N, "customers": [CreateCustomer bodies]}.
func (s *Server) preload(w http.ResponseWriter, r *http.Request) {
	var in struct {
		CreatedUnix int64                           `json:"created_unix"`
		Customers   []revcent.CreateCustomerRequest `json:"customers"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<20)).Decode(&in); err != nil {
		s.fail(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	at := time.Unix(in.CreatedUnix, 0)
	if in.CreatedUnix == 0 {
		at = s.opts.Now().Add(-24 * time.Hour)
	}
	s.Preload(in.Customers, at)
	s.reply(w, http.StatusOK, revcent.Response{Code: 1, Result: fmt.Sprintf("%d customers preloaded", len(in.Customers))})
}

// search answers the assumed SearchCustomers shape: customers one of
// whose searchable fields contains the term, case aside (full-text
// matching is loose: "ann@acme.com" finds "joann@acme.com"), newest
// first, at most 10, and only those created SearchLag ago or earlier.
func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	term := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("search_term")))
	if term == "" {
		s.fail(w, http.StatusBadRequest, "invalid_request", "search_term is required")
		return
	}
	visible := s.opts.Now().Add(-s.opts.SearchLag)
	terms := []string{term}
	if s.opts.SearchAnyWord {
		terms = strings.FieldsFunc(term, func(r rune) bool { return r == '@' || r == ' ' })
	}
	resp := revcent.SearchResponse{Code: 1, Results: []revcent.Customer{}}
	s.mu.RLock()
	var found []*Customer
	for _, w := range terms {
		for _, c := range s.candidates(w) {
			if !c.Created.After(visible) && c.matches(w) && !slices.Contains(found, c) {
				found = append(found, c)
			}
		}
	}
	s.mu.RUnlock()
	// Newest first, at most 10.
	slices.SortStableFunc(found, func(a, b *Customer) int { return b.Created.Compare(a.Created) })
	for _, c := range found[:min(len(found), revcent.SearchLimit)] {
		resp.Results = append(resp.Results, s.summary(c))
	}
	resp.APICallID, resp.APICallUnix = newID(), s.opts.Now().Unix()
	writeJSON(w, http.StatusOK, resp)
}

// list answers GetCustomers: the customers created from date_start to
// date_end (unix seconds, at most 90 days apart), oldest first, limit
// (1-25) a page, optionally only those of the campaigns named by
// campaign_filter.
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	num := func(name string) (int64, bool) {
		n, err := strconv.ParseInt(q.Get(name), 10, 64)
		return n, err == nil
	}
	start, ok1 := num("date_start")
	end, ok2 := num("date_end")
	limit, ok3 := num("limit")
	page, ok4 := num("page")
	switch {
	case !ok1 || !ok2 || !ok3 || !ok4:
		s.fail(w, http.StatusBadRequest, "invalid_request", "date_start, date_end, limit and page are required")
		return
	case end < start || end-start > 90*24*3600:
		s.fail(w, http.StatusBadRequest, "invalid_request", "date_end must follow date_start by at most 90 days")
		return
	case limit < 1 || limit > 25 || page < 1:
		s.fail(w, http.StatusBadRequest, "invalid_request", "limit must be 1-25 and page 1 or more")
		return
	}
	filter := map[string]bool{}
	for _, c := range q["campaign_filter"] {
		filter[strings.ToLower(c)] = true
	}
	resp := revcent.ListResponse{Code: 1, Results: []revcent.Customer{}}
	skip := (page - 1) * limit
	s.mu.RLock()
	i, _ := slices.BinarySearchFunc(s.customers, start, func(c *Customer, t int64) int { return cmp.Compare(c.Created.Unix(), t) })
	for ; i < len(s.customers) && s.customers[i].Created.Unix() <= end && int64(len(resp.Results)) < limit; i++ {
		c := s.customers[i]
		if len(filter) > 0 && !filter[strings.ToLower(c.Campaign)] {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		resp.Results = append(resp.Results, s.summary(c))
	}
	s.mu.RUnlock()
	resp.APICallID, resp.APICallUnix = newID(), s.opts.Now().Unix()
	writeJSON(w, http.StatusOK, resp)
}

// get answers GetCustomer: flat, as RevCent documents it (the customer's
// fields beside code), or nested under "customer" with NestedGet.
func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	c, ok := s.byID[r.PathValue("id")]
	s.mu.RUnlock()
	if !ok {
		s.fail(w, http.StatusNotFound, "customer_not_found", "Customer not found.")
		return
	}
	k := c.Request.Customer
	fields := map[string]any{"id": c.ID, "first_name": k.FirstName, "last_name": k.LastName, "email": k.Email,
		"address_line_1": k.AddressLine1, "city": k.City, "state": k.State, "zip": k.Zip, "country": k.Country,
		"phone": k.Phone, "company": k.Company, "internal_customer_id": c.Request.InternalCustomerID,
		"created_date_unix": c.Created.Unix()}
	if s.opts.Sparse {
		delete(fields, "email")
		delete(fields, "internal_customer_id")
	}
	head := map[string]any{"api_call_id": newID(), "api_call_unix": s.opts.Now().Unix(), "code": 1}
	if s.opts.NestedGet {
		head["customer"] = fields
	} else {
		maps.Copy(head, fields)
	}
	writeJSON(w, http.StatusOK, head)
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

// summary is c as search and list results show it.
func (s *Server) summary(c *Customer) revcent.Customer {
	out := revcent.Customer{ItemType: "customer", ID: c.ID, Email: c.Request.Customer.Email,
		FirstName: c.Request.Customer.FirstName, LastName: c.Request.Customer.LastName,
		CreatedDateUnix: c.Created.Unix()}
	if s.opts.Sparse {
		out.Email = "" // omitted from the JSON
	}
	return out
}

// candidates returns the customers that may contain term (lower case):
// a word of term that has words on both sides must stand whole in any
// text containing term, so the customers indexed under the rarest such
// word; every customer when term has none. The caller holds s.mu.
func (s *Server) candidates(term string) []*Customer {
	ws := words(term)
	var best []*Customer
	found := false
	for i := 1; i < len(ws)-1; i++ {
		if l := s.byWord[ws[i]]; !found || len(l) < len(best) {
			best, found = l, true
		}
	}
	if !found {
		return s.customers
	}
	return best
}

// words splits lower-case text into runs of letters and digits.
func words(text string) []string {
	return strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// matches reports whether one of the fields RevCent's search covers (id,
// names, address line 1, email, internal id, phone, metadata values)
// contains term, which is lower case.
func (c *Customer) matches(term string) bool {
	if c.text == "" {
		k := &c.Request.Customer
		f := []string{c.ID, k.Email, k.FirstName, k.LastName, k.AddressLine1, k.Phone, c.Request.InternalCustomerID}
		for _, m := range c.Request.Metadata {
			f = append(f, m.Value)
		}
		c.text = strings.ToLower(strings.Join(f, "\x00"))
	}
	return strings.Contains(c.text, term)
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
	for _, f := range []*string{c.FirstName, c.LastName, c.Email, c.AddressLine1, c.AddressLine2, c.City, c.State, c.Zip, c.Company, c.Phone} {
		if f != nil && utf8.RuneCountInString(*f) > MaxFieldLength {
			errs = append(errs, fmt.Errorf("%s: a field of %d characters; at most %d are accepted", obj, utf8.RuneCountInString(*f), MaxFieldLength))
			break
		}
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
