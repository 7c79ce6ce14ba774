package sandbox

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/revcent-import/revcent-import/revcent"
)

func post(t *testing.T, s *Server, key, body string) (int, revcent.Response) {
	t.Helper()
	req := httptest.NewRequest("POST", "/v2/customers", strings.NewReader(body))
	req.Header.Set("x-api-key", key)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	var r revcent.Response
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		t.Fatalf("answer is not JSON: %q", w.Body.String())
	}
	if len(r.APICallID) != 20 || r.APICallUnix == 0 {
		t.Errorf("answer lacks a 20-character api_call_id and api_call_unix: %+v", r)
	}
	return w.Code, r
}

const valid = `{"campaign":"spring promo","customer":{"first_name":"Ada","last_name":"Lovelace","email":"ada@example.com","country":"GBR"},
"payment":{"credit_card":{"card_number":"4111111111111111","exp_month":7,"exp_year":27,"card_code":"123"}},
"metadata":[{"name":"source","value":"crm"}],"internal_customer_id":"C-1"}`

func TestCreateValid(t *testing.T) {
	s := New(Options{})
	status, r := post(t, s, DefaultAPIKey, valid)
	if status != 200 || r.Code != 1 || len(r.CustomerID) != 20 {
		t.Fatalf("got %d %+v, want 200 code 1 and a 20-character id", status, r)
	}
	cs := s.Customers()
	if s.Created() != 1 || len(cs) != 1 || cs[0].ID != r.CustomerID {
		t.Fatalf("created %d, customers %+v", s.Created(), cs)
	}
	if got := cs[0].Request.Payment.CreditCard; got.CardNumber != "1111" || got.CardCode != "" {
		t.Errorf("stored card %+v: want last four digits only and no code", got)
	}
}

func TestCreateRejects(t *testing.T) {
	tests := []struct {
		name, body, key string
		status          int
		code, msg       string
	}{
		{"bad key", valid, "wrong", 401, "unauthorized", "API key"},
		{"unknown campaign", strings.Replace(valid, "spring promo", "Winter", 1), "", 404, "campaign_not_found", "Winter"},
		{"unknown top-level property", `{"campaign":"Spring Promo","customer":{"first_name":"A","last_name":"B","email":"a@b.co"},"vip":true}`, "", 400, "invalid_request", `unknown field "vip"`},
		{"unknown nested property", `{"campaign":"Spring Promo","customer":{"first_name":"A","last_name":"B","email":"a@b.co","age":3}}`, "", 400, "invalid_request", `unknown field "age"`},
		{"missing customer", `{"campaign":"Spring Promo"}`, "", 400, "invalid_request", "customer is required"},
		{"missing last name", `{"campaign":"Spring Promo","customer":{"first_name":"A","email":"a@b.co"}}`, "", 400, "invalid_request", "customer.last_name is required"},
		{"empty campaign", `{"campaign":"","customer":{"first_name":"A","last_name":"B","email":"a@b.co"}}`, "", 400, "invalid_request", "campaign is required"},
		{"bad email", `{"campaign":"Spring Promo","customer":{"first_name":"A","last_name":"B","email":"a@b"}}`, "", 400, "invalid_request", "not an email"},
		{"alpha-2 country", `{"campaign":"Spring Promo","customer":{"first_name":"A","last_name":"B","email":"a@b.co","country":"GB"}}`, "", 400, "invalid_request", "alpha-3"},
		{"bill_to missing email", `{"campaign":"Spring Promo","customer":{"first_name":"A","last_name":"B","email":"a@b.co"},"bill_to":{"first_name":"A","last_name":"B"}}`, "", 400, "invalid_request", "bill_to.email is required"},
		{"string exp_month", `{"campaign":"Spring Promo","customer":{"first_name":"A","last_name":"B","email":"a@b.co"},"payment":{"credit_card":{"exp_month":"07"}}}`, "", 400, "invalid_request", "exp_month"},
		{"fractional exp_year", `{"campaign":"Spring Promo","customer":{"first_name":"A","last_name":"B","email":"a@b.co"},"payment":{"credit_card":{"exp_year":27.5}}}`, "", 400, "invalid_request", "exp_year"},
		{"month 13", `{"campaign":"Spring Promo","customer":{"first_name":"A","last_name":"B","email":"a@b.co"},"payment":{"credit_card":{"exp_month":13}}}`, "", 400, "invalid_request", "not a month"},
		{"card number with spaces", `{"campaign":"Spring Promo","customer":{"first_name":"A","last_name":"B","email":"a@b.co"},"payment":{"credit_card":{"card_number":"4111 1111"}}}`, "", 400, "invalid_request", "digits only"},
		{"metadata name too long", `{"campaign":"Spring Promo","customer":{"first_name":"A","last_name":"B","email":"a@b.co"},"metadata":[{"name":"` + strings.Repeat("n", 101) + `","value":"v"}]}`, "", 400, "invalid_request", "1-100"},
		{"metadata value empty", `{"campaign":"Spring Promo","customer":{"first_name":"A","last_name":"B","email":"a@b.co"},"metadata":[{"name":"n","value":""}]}`, "", 400, "invalid_request", "1-255"},
		{"metadata value 256", `{"campaign":"Spring Promo","customer":{"first_name":"A","last_name":"B","email":"a@b.co"},"metadata":[{"name":"n","value":"` + strings.Repeat("é", 256) + `"}]}`, "", 400, "invalid_request", "1-255"},
		{"trailing data", `{"campaign":"Spring Promo","customer":{"first_name":"A","last_name":"B","email":"a@b.co"}} {}`, "", 400, "invalid_request", "after the JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{})
			key := tt.key
			if key == "" {
				key = DefaultAPIKey
			}
			status, r := post(t, s, key, tt.body)
			if status != tt.status || r.Code != 0 || r.ErrorCode != tt.code || !strings.Contains(r.Message, tt.msg) {
				t.Errorf("got %d %+v; want %d %s containing %q", status, r, tt.status, tt.code, tt.msg)
			}
			if s.Created() != 0 {
				t.Errorf("created %d customers from a rejected request", s.Created())
			}
		})
	}
}

func TestDuplicateModes(t *testing.T) {
	for _, mode := range []DuplicateMode{CreateAgain, ReturnExisting} {
		s := New(Options{Duplicate: mode})
		_, a := post(t, s, DefaultAPIKey, valid)
		_, b := post(t, s, DefaultAPIKey, strings.Replace(valid, "ada@example.com", "ADA@example.com", 1))
		same := a.CustomerID == b.CustomerID
		if want := mode == ReturnExisting; same != want || s.Created() != map[bool]int64{true: 1, false: 2}[want] {
			t.Errorf("mode %d: same id %v, created %d", mode, same, s.Created())
		}
	}
}

func TestSearchAndGet(t *testing.T) {
	s := New(Options{})
	_, first := post(t, s, DefaultAPIKey, valid)
	_, second := post(t, s, DefaultAPIKey, valid)
	get := func(path string) (int, string) {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("x-api-key", DefaultAPIKey)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		return w.Code, w.Body.String()
	}
	code, body := get("/v2/customers/search?search_term=ADA@EXAMPLE.COM")
	var sr revcent.SearchResponse
	if err := json.Unmarshal([]byte(body), &sr); err != nil || code != 200 || sr.Code != 1 || len(sr.Results) != 2 {
		t.Fatalf("search: %d %s", code, body)
	}
	if sr.Results[0].ID != second.CustomerID || sr.Results[1].ID != first.CustomerID || sr.Results[0].ItemType != "customer" {
		t.Errorf("search results %+v: want newest first", sr.Results)
	}
	if _, body := get("/v2/customers/search?search_term=C-1"); !strings.Contains(body, first.CustomerID) {
		t.Errorf("search by internal id: %s", body)
	}
	code, body = get("/v2/customers/" + first.CustomerID)
	// Flat, as RevCent documents GetCustomer: the fields beside code.
	var flat map[string]any
	if err := json.Unmarshal([]byte(body), &flat); err != nil || code != 200 || flat["code"] != 1.0 || flat["internal_customer_id"] != "C-1" || flat["customer"] != nil {
		t.Fatalf("get: %d %s", code, body)
	}
	if code, _ := get("/v2/customers/nope"); code != http.StatusNotFound {
		t.Errorf("get unknown id: %d, want 404", code)
	}
}

func TestDump(t *testing.T) {
	s := New(Options{})
	_, r := post(t, s, DefaultAPIKey, valid)
	req := httptest.NewRequest("GET", "/_sandbox/customers", nil)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("dump without a key: %d", w.Code)
	}
	req.Header.Set("x-api-key", DefaultAPIKey)
	w = httptest.NewRecorder()
	s.ServeHTTP(w, req)
	var d Dump
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil || d.Created != 1 || len(d.Customers) != 1 ||
		d.Customers[0].ID != r.CustomerID || d.Customers[0].Request.InternalCustomerID != "C-1" {
		t.Fatalf("dump: %s", w.Body)
	}
	if strings.Contains(w.Body.String(), "4111111111111111") || strings.Contains(w.Body.String(), `"card_code":"123"`) {
		t.Errorf("dump reveals the card: %s", w.Body)
	}
}

func TestFaults(t *testing.T) {
	t.Run("rate limit answers 429 with Retry-After", func(t *testing.T) {
		s := New(Options{Faults: Faults{RateLimit: 1, RateBurst: 2, RetryAfter: 3}})
		codes := []int{}
		for range 4 {
			req := httptest.NewRequest("POST", "/v2/customers", strings.NewReader(valid))
			req.Header.Set("x-api-key", DefaultAPIKey)
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			codes = append(codes, w.Code)
			if w.Code == 429 && w.Header().Get("Retry-After") != "3" {
				t.Errorf("429 without Retry-After: 3: %v", w.Header())
			}
		}
		if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 || codes[3] != 429 || s.Created() != 2 || s.FaultCounts().Throttled != 2 {
			t.Errorf("codes %v, created %d, counts %+v", codes, s.Created(), s.FaultCounts())
		}
	})
	t.Run("unavailable creates nothing", func(t *testing.T) {
		s := New(Options{Faults: Faults{Unavailable: 1}})
		if status, r := post(t, s, DefaultAPIKey, valid); status != 503 || r.Code != 0 || s.Created() != 0 {
			t.Errorf("%d %+v created %d", status, r, s.Created())
		}
	})
	t.Run("lost answers create, then drop the connection", func(t *testing.T) {
		rs, err := Start("", Options{Faults: Faults{LostAnswers: 1, Seed: 1}})
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		req, _ := http.NewRequest("POST", rs.URL+"/customers", strings.NewReader(valid))
		req.Header.Set("x-api-key", DefaultAPIKey)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got an answer (%d), want a dropped connection", resp.StatusCode)
		}
		if rs.Created() != 1 || rs.FaultCounts().Lost != 1 {
			t.Errorf("created %d, counts %+v", rs.Created(), rs.FaultCounts())
		}
	})
	t.Run("shares are close to the asked ones", func(t *testing.T) {
		s := New(Options{Faults: Faults{Unavailable: 0.05, Seed: 42}})
		for range 2000 {
			req := httptest.NewRequest("POST", "/v2/customers", strings.NewReader(valid))
			req.Header.Set("x-api-key", DefaultAPIKey)
			s.ServeHTTP(httptest.NewRecorder(), req)
		}
		if n := s.FaultCounts().Unavailable; n < 60 || n > 140 {
			t.Errorf("%d of 2000 answered 503, want about 100", n)
		}
	})
}

func TestDiscardAndArrivals(t *testing.T) {
	s := New(Options{Discard: true, RecordArrivals: true})
	for range 3 {
		if status, r := post(t, s, DefaultAPIKey, valid); status != 200 || len(r.CustomerID) != 20 {
			t.Fatalf("%d %+v", status, r)
		}
	}
	if s.Created() != 3 || len(s.Customers()) != 0 || len(s.arrivals) != 3 || s.arrivals[2] < s.arrivals[0] {
		t.Errorf("created %d, kept %d, arrivals %v", s.Created(), len(s.Customers()), s.arrivals)
	}
}
