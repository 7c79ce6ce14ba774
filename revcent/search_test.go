package revcent_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/revcent-import/revcent-import/revcent"
	"github.com/revcent-import/revcent-import/revcent/sandbox"
)

func TestJudge(t *testing.T) {
	since := time.Unix(1_800_000_000, 0)
	w := revcent.Want{Email: "ada@example.com", FirstName: "ada", LastName: "lovelace", InternalID: "C-1", Since: since}
	newer, older := since.Unix()+5, since.Unix()-5
	tests := []struct {
		name string
		c    revcent.Customer
		want revcent.Verdict
	}{
		{"same email, created after the row was sent", revcent.Customer{Email: "ADA@example.com ", HasEmail: true, CreatedDateUnix: newer}, revcent.Same},
		{"same email, created before: already there", revcent.Customer{Email: "ada@example.com", HasEmail: true, CreatedDateUnix: older}, revcent.Older},
		{"same email, no creation date: never adopted", revcent.Customer{Email: "ada@example.com", HasEmail: true}, revcent.Older},
		{"near match", revcent.Customer{Email: "joada@example.com", HasEmail: true, CreatedDateUnix: newer}, revcent.Other},
		{"no email in the answer: the names decide", revcent.Customer{FirstName: "Ada", LastName: "Lovelace", CreatedDateUnix: newer}, revcent.Same},
		{"no email, other names", revcent.Customer{FirstName: "Ada", LastName: "Byron", CreatedDateUnix: newer}, revcent.Other},
		{"no email and no names", revcent.Customer{CreatedDateUnix: newer}, revcent.Other},
		{"other internal id", revcent.Customer{Email: "ada@example.com", HasEmail: true, InternalCustomerID: "C-2", HasInternalID: true, CreatedDateUnix: newer}, revcent.Other},
		{"same internal id", revcent.Customer{Email: "ada@example.com", HasEmail: true, InternalCustomerID: "C-1", HasInternalID: true, CreatedDateUnix: newer}, revcent.Same},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := w.Judge(tt.c); got != tt.want {
				t.Errorf("Judge = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestGetCustomerShapes reads GetCustomer's documented flat answer and a
// nested one, from the sandbox in both modes and from hand-written bodies
// that lack the fields the docs do not show.
func TestGetCustomerShapes(t *testing.T) {
	for _, nested := range []bool{false, true} {
		t.Run(fmt.Sprintf("sandbox nested=%v", nested), func(t *testing.T) {
			srv, err := sandbox.Start("", sandbox.Options{APIKey: "k", NestedGet: nested})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			c := newClient(t, srv.URL, 5*time.Second)
			r := request()
			r.InternalCustomerID = "C-7"
			id, _, err := c.CreateCustomer(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.GetCustomer(context.Background(), id)
			if err != nil || got.ID != id || !got.HasEmail || got.Email != "ada@example.com" || got.InternalCustomerID != "C-7" || got.CreatedDateUnix == 0 {
				t.Fatalf("GetCustomer = %+v, %v", got, err)
			}
			raw, err := c.GetRaw(context.Background(), id)
			if want := map[bool]string{false: "flat", true: "nested"}[nested]; err != nil || revcent.GetShape(raw) != want {
				t.Errorf("shape of %s: %s, want %s", raw, revcent.GetShape(raw), want)
			}
		})
	}
	for _, tt := range []struct {
		name, body string
		check      func(*revcent.Customer, error) string
	}{
		{"flat, only what the docs show", `{"api_call_id":"x","api_call_unix":1,"code":1,"address_line_1":"1 Main St"}`, func(c *revcent.Customer, err error) string {
			if err != nil || c.ID != "abcdefghij0123456789" || c.HasEmail || c.HasInternalID {
				return fmt.Sprintf("%+v, %v", c, err)
			}
			return ""
		}},
		{"flat with other names", `{"code":1,"customer_id":"abcdefghij0123456789","customer_email":"a@b.co","internal_id":"X"}`, func(c *revcent.Customer, err error) string {
			if err != nil || c.Email != "a@b.co" || c.InternalCustomerID != "X" {
				return fmt.Sprintf("%+v, %v", c, err)
			}
			return ""
		}},
		{"unreadable", `<html>Service down</html>`, func(c *revcent.Customer, err error) string {
			if err == nil || !strings.Contains(err.Error(), "GET /customers/{id}") || !strings.Contains(err.Error(), "HTTP 200") || !strings.Contains(err.Error(), "<html>Service down") {
				return fmt.Sprintf("error %v: want the endpoint, the status and the body's start", err)
			}
			return ""
		}},
		{"code 0", `{"code":0,"error_code":"customer_not_found","message":"nope"}`, func(c *revcent.Customer, err error) string {
			if err == nil || !strings.Contains(err.Error(), "customer_not_found") || !strings.Contains(err.Error(), "GET /customers/{id}") {
				return fmt.Sprintf("error %v", err)
			}
			return ""
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(answer(200, tt.body))
			defer srv.Close()
			got, err := newClient(t, srv.URL, time.Second).GetCustomer(context.Background(), "abcdefghij0123456789")
			if msg := tt.check(got, err); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func TestSearchUnreadableNamesEndpoint(t *testing.T) {
	srv := httptest.NewServer(answer(200, `{"code":1,"results":"not a list"}`))
	defer srv.Close()
	_, err := newClient(t, srv.URL, time.Second).SearchCustomers(context.Background(), "a@b.co")
	if err == nil || !strings.Contains(err.Error(), "GET /customers/search") || !strings.Contains(err.Error(), `"{\"code\":1`) {
		t.Errorf("error %v", err)
	}
}

// TestFindCustomer: only an exact email created after the row was sent is
// the row's; a full page of near matches is reported as full.
func TestFindCustomer(t *testing.T) {
	srv, err := sandbox.Start("", sandbox.Options{APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	old := request()
	old.Customer.Email = "ann@acme.com"
	srv.Preload([]revcent.CreateCustomerRequest{*old}, time.Now().Add(-time.Hour))
	c := newClient(t, srv.URL, 5*time.Second)
	ctx := context.Background()
	since := time.Now().Add(-2 * time.Second)
	mk := func(email string) string {
		r := request()
		r.Customer.Email = email
		id, _, err := c.CreateCustomer(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	f, err := c.FindCustomer(ctx, revcent.Want{Email: "ann@acme.com", FirstName: "ada", LastName: "lovelace", Since: since})
	if err != nil || f.ID != "" || f.OlderID == "" {
		t.Errorf("only an older customer: %+v, %v", f, err)
	}
	for i := range 12 {
		mk(fmt.Sprintf("jo%dann@acme.com", i))
	}
	f, err = c.FindCustomer(ctx, revcent.Want{Email: "ann@acme.com", Since: since})
	if err != nil || f.ID != "" || !f.Full {
		t.Errorf("a page of near matches: %+v, %v; want no id and Full", f, err)
	}
	grace := mk("grace@example.com")
	f, err = c.FindCustomer(ctx, revcent.Want{Email: "GRACE@example.com", Since: since})
	if err != nil || f.ID != grace {
		t.Errorf("exact match: %+v, %v; want %s", f, err, grace)
	}
}

func TestListCustomersPages(t *testing.T) {
	srv, err := sandbox.Start("", sandbox.Options{APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := newClient(t, srv.URL, 5*time.Second)
	ctx := context.Background()
	start := time.Now().Add(-time.Second)
	want := map[string]bool{}
	for i := range 60 {
		r := request()
		r.Customer.Email = fmt.Sprintf("p%d@example.com", i)
		id, _, err := c.CreateCustomer(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		want[id] = true
	}
	seen := 0
	for page := 1; ; page++ {
		list, err := c.ListCustomers(ctx, start, time.Now().Add(time.Second), page, "Spring Promo")
		if err != nil {
			t.Fatal(err)
		}
		for _, cu := range list {
			if !want[cu.ID] || !cu.HasEmail {
				t.Errorf("listed %+v", cu)
			}
			seen++
		}
		if len(list) < revcent.ListPageSize {
			break
		}
	}
	if seen != 60 {
		t.Errorf("listed %d customers, want 60", seen)
	}
	if list, err := c.ListCustomers(ctx, start.Add(-time.Hour), start.Add(-30*time.Minute), 1, ""); err != nil || len(list) != 0 {
		t.Errorf("an earlier window: %d, %v", len(list), err)
	}
}

func TestExistingAnswers(t *testing.T) {
	for _, mode := range []sandbox.DuplicateMode{sandbox.CreateAgain, sandbox.ReturnExisting, sandbox.Refuse} {
		t.Run(mode.String(), func(t *testing.T) {
			srv, err := sandbox.Start("", sandbox.Options{APIKey: "k", Duplicate: mode})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			c := newClient(t, srv.URL, 5*time.Second)
			first, existing, err := c.CreateCustomer(context.Background(), request())
			if err != nil || existing {
				t.Fatalf("first create: %v existing=%v", err, existing)
			}
			second, existing, err := c.CreateCustomer(context.Background(), request())
			var e *revcent.Error
			switch mode {
			case sandbox.CreateAgain:
				if err != nil || existing || second == first {
					t.Errorf("second: %q existing=%v %v", second, existing, err)
				}
			case sandbox.ReturnExisting:
				if err != nil || !existing || second != first {
					t.Errorf("second: %q existing=%v %v; want %q, existing", second, existing, err, first)
				}
			case sandbox.Refuse:
				if !errors.As(err, &e) || !revcent.IsExistingRefusal(e, "") || !revcent.IsExistingRefusal(e, sandbox.ExistsCode) || revcent.IsExistingRefusal(e, "other_code") {
					t.Errorf("second: %v; want a refusal recognised as existing", err)
				}
			}
		})
	}
	if revcent.IsExistingRefusal(&revcent.Error{Class: revcent.Final, Code: "invalid_request", Message: "email is not valid"}, "") {
		t.Error("an ordinary refusal read as existing")
	}
}
