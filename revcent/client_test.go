package revcent_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revcent-import/revcent-import/revcent"
)

func request() *revcent.CreateCustomerRequest {
	return &revcent.CreateCustomerRequest{
		Campaign: "Spring Promo",
		Customer: revcent.Contact{FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.com", Country: "GBR"},
	}
}

func newClient(t *testing.T, url string, timeout time.Duration) *revcent.Client {
	t.Helper()
	c, err := revcent.NewClient(revcent.Config{BaseURL: url, APIKey: "k", Timeout: timeout, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestCreateCustomerClasses(t *testing.T) {
	const id = "abcdefghij0123456789"
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		timeout    time.Duration
		wantID     string
		wantClass  revcent.Class
		wantStatus int
		wantCode   string
		retryAfter time.Duration
	}{
		{name: "200 created", handler: answer(200, `{"api_call_id":"x","code":1,"customer_id":"`+id+`","result":"ok"}`), wantID: id},
		{name: "200 code 0 is final", handler: answer(200, `{"code":0,"error_code":"bad_email","message":"no"}`),
			wantClass: revcent.Final, wantStatus: 200, wantCode: "bad_email"},
		{name: "200 unreadable is in doubt", handler: answer(200, `{"code":1,"custo`), wantClass: revcent.InDoubt, wantStatus: 200, wantCode: "bad_answer"},
		{name: "200 without customer_id is in doubt", handler: answer(200, `{"code":1}`), wantClass: revcent.InDoubt, wantStatus: 200},
		{name: "400 is final", handler: answer(400, `{"code":0,"error_code":"invalid_request","message":"email"}`),
			wantClass: revcent.Final, wantStatus: 400, wantCode: "invalid_request"},
		{name: "404 is final", handler: answer(404, `{"code":0,"error_code":"campaign_not_found"}`), wantClass: revcent.Final, wantStatus: 404, wantCode: "campaign_not_found"},
		{name: "422 is final", handler: answer(422, `not json`), wantClass: revcent.Final, wantStatus: 422},
		{name: "401 is fatal", handler: answer(401, `{"code":0,"error_code":"unauthorized"}`), wantClass: revcent.Fatal, wantStatus: 401, wantCode: "unauthorized"},
		{name: "403 is fatal", handler: answer(403, ``), wantClass: revcent.Fatal, wantStatus: 403},
		{name: "302 is fatal", handler: func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) },
			wantClass: revcent.Fatal, wantStatus: 302},
		{name: "429 with Retry-After seconds is retryable", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(429)
		}, wantClass: revcent.Retryable, wantStatus: 429, retryAfter: 3 * time.Second},
		{name: "429 without Retry-After", handler: answer(429, ``), wantClass: revcent.Retryable, wantStatus: 429},
		{name: "500 is in doubt", handler: answer(500, `oops`), wantClass: revcent.InDoubt, wantStatus: 500},
		{name: "503 is in doubt", handler: answer(503, ``), wantClass: revcent.InDoubt, wantStatus: 503},
		{name: "slow answer times out in doubt", handler: func(w http.ResponseWriter, r *http.Request) {
			io.ReadAll(r.Body) // so the server notices the client leaving
			<-r.Context().Done()
		}, timeout: 100 * time.Millisecond, wantClass: revcent.InDoubt, wantCode: "timeout"},
		{name: "dropped after reading is in doubt", handler: func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}, wantClass: revcent.InDoubt, wantCode: "network"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				if r.Header.Get("x-api-key") != "k" || r.Method != http.MethodPost || r.URL.Path != "/v2/customers" {
					t.Errorf("got %s %s key %q", r.Method, r.URL.Path, r.Header.Get("x-api-key"))
				}
				tt.handler(w, r)
			}))
			defer srv.Close()
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			got, _, err := newClient(t, srv.URL+"/v2", timeout).CreateCustomer(context.Background(), request())
			if hits.Load() != 1 {
				t.Errorf("server saw %d requests, want exactly 1 (the client must never resend on its own)", hits.Load())
			}
			if tt.wantClass == 0 {
				if err != nil || got != tt.wantID {
					t.Fatalf("got %q, %v; want %q", got, err, tt.wantID)
				}
				return
			}
			var e *revcent.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %q, %v; want an *revcent.Error", got, err)
			}
			if e.Class != tt.wantClass || e.HTTPStatus != tt.wantStatus || (tt.wantCode != "" && e.Code != tt.wantCode) {
				t.Errorf("got class %v status %d code %q (%v); want %v %d %q", e.Class, e.HTTPStatus, e.Code, e, tt.wantClass, tt.wantStatus, tt.wantCode)
			}
			if e.RetryAfter != tt.retryAfter || e.HasRetryAfter != (tt.retryAfter != 0) {
				t.Errorf("RetryAfter = %v (%v), want %v", e.RetryAfter, e.HasRetryAfter, tt.retryAfter)
			}
			if revcent.ClassOf(err) != tt.wantClass {
				t.Errorf("ClassOf = %v", revcent.ClassOf(err))
			}
		})
	}
}

func answer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}
}

func TestConnectionRefusedIsRetryable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	_, _, err = newClient(t, "http://"+addr+"/v2", time.Second).CreateCustomer(context.Background(), request())
	if c := revcent.ClassOf(err); c != revcent.Retryable {
		t.Fatalf("class %v (%v), want retryable", c, err)
	}
}

func TestCanceledBeforeSendIsRetryable(t *testing.T) {
	srv := httptest.NewServer(answer(200, `{"code":1,"customer_id":"x"}`))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := newClient(t, srv.URL, time.Second).CreateCustomer(ctx, request())
	if c := revcent.ClassOf(err); c != revcent.Retryable || !errors.Is(err, context.Canceled) {
		t.Fatalf("class %v (%v), want retryable wrapping context.Canceled", c, err)
	}
}

func TestRetryAfterHTTPDate(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat))
		w.WriteHeader(429)
	}))
	defer srv.Close()
	_, _, err := newClient(t, srv.URL, time.Second).CreateCustomer(context.Background(), request())
	var e *revcent.Error
	if !errors.As(err, &e) || e.RetryAfter < 80*time.Second || e.RetryAfter > 91*time.Second {
		t.Fatalf("got %v (%#v), want Retry-After about 90s", err, e)
	}
}

func TestNewClientRejectsBadBaseURL(t *testing.T) {
	for _, u := range []string{"api.revcent.com", "ftp://x/v2", "http://"} {
		if _, err := revcent.NewClient(revcent.Config{BaseURL: u}); err == nil || !strings.Contains(err.Error(), "base URL") {
			t.Errorf("%q: err = %v, want a base URL error", u, err)
		}
	}
}
