package revcent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultBaseURL is RevCent's v2 API root.
const DefaultBaseURL = "https://api.revcent.com/v2"

// maxBody bounds how much of an answer is read; RevCent's answers are small.
const maxBody = 1 << 20

// Config configures a Client.
type Config struct {
	BaseURL string        // API root, e.g. https://api.revcent.com/v2
	APIKey  string        // sent as x-api-key; never logged
	Timeout time.Duration // per request, from dial to the last byte of the answer
	// MaxConns is the number of requests the caller keeps in flight (the
	// worker count). The transport keeps that many idle connections so that
	// none is closed and reopened between requests.
	MaxConns int
	// Transport, when set, replaces the tuned default (tests only).
	Transport http.RoundTripper
	UserAgent string
	// OnQuota, when set, is told every answer's rate-limit headers (see
	// Quota), for the limiter to set its rate from them.
	OnQuota func(Quota)
}

// Client calls RevCent. It is safe for concurrent use by many goroutines;
// all of them share one connection pool.
type Client struct {
	base      string
	timeout   time.Duration
	rt        http.RoundTripper
	transport *http.Transport // nil when Config.Transport was given

	onQuota       func(Quota)
	hdrKey, hdrUA []string      // header values, built once
	createReq     *http.Request // CreateCustomer's request, without body or context

	// offset is RevCent's clock minus ours, in seconds, from the
	// api_call_unix of the last answer; offsetKnown says one came.
	offset      atomic.Int64
	offsetKnown atomic.Bool
}

// observe records RevCent's clock from an answer's api_call_unix.
func (c *Client) observe(unix int64) {
	if unix <= 0 {
		return
	}
	c.offset.Store(unix - time.Now().Unix())
	c.offsetKnown.Store(true)
}

// ServerOffset returns RevCent's clock minus this machine's, to the
// second, as the last answer showed it; ok is false before any answer.
func (c *Client) ServerOffset() (d time.Duration, ok bool) {
	return time.Duration(c.offset.Load()) * time.Second, c.offsetKnown.Load()
}

var hdrJSON = []string{"application/json"}

// NewClient returns a Client for cfg. It fails when the base URL is not an
// absolute http(s) URL.
func NewClient(cfg Config) (*Client, error) {
	base := strings.TrimRight(cfg.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("base URL %q: want an absolute http(s) URL such as %s", cfg.BaseURL, DefaultBaseURL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 8
	}
	c := &Client{base: base, timeout: cfg.Timeout, onQuota: cfg.OnQuota}
	rt := cfg.Transport
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// The default keeps 2 idle connections per host: with N workers the
		// rest are closed after each answer and redialled, which costs
		// 10-35% throughput and thousands of sockets in TIME_WAIT.
		t.MaxIdleConns = cfg.MaxConns * 2
		t.MaxIdleConnsPerHost = cfg.MaxConns
		t.MaxConnsPerHost = cfg.MaxConns
		// No ResponseHeaderTimeout: each request's context already ends
		// at Timeout, and the transport's timer would be a second one.
		c.transport = t
		rt = t
	}
	ua := cfg.UserAgent
	if ua == "" {
		ua = "revcent-import"
	}
	c.hdrKey, c.hdrUA = []string{cfg.APIKey}, []string{ua}
	if c.createReq, err = http.NewRequest(http.MethodPost, c.base+"/customers", nil); err != nil {
		return nil, fmt.Errorf("base URL %q: %w", cfg.BaseURL, err)
	}
	// Requests go to the transport itself, not through an http.Client:
	// that follows no redirect (one on a POST would be followed as a GET or
	// resent; neither is right, so the 3xx answer is reported), keeps no
	// cookies, and does not copy every request's headers for redirects.
	c.rt = rt
	return c, nil
}

// BaseURL returns the API root requests go to, without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// Close releases idle connections.
func (c *Client) Close() {
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// CreateCustomer sends req and returns the customer's id. existing is
// true when the answer says the customer was already there (RevCent's v1
// "retrieved if already exists"). Every error is an *Error whose Class
// says whether the customer may exist.
func (c *Client) CreateCustomer(ctx context.Context, req *CreateCustomerRequest) (id string, existing bool, err error) {
	id, existing, err = c.createCustomer(ctx, req)
	if e, ok := err.(*Error); ok {
		// What the server says may quote the card back: it is recorded
		// and logged, so the row's card is scrubbed from it here.
		e.Message, e.Code = ScrubRequest(e.Message, req), ScrubRequest(e.Code, req)
	}
	return id, existing, err
}

func (c *Client) createCustomer(ctx context.Context, req *CreateCustomerRequest) (id string, existing bool, err error) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if err := json.NewEncoder(buf).Encode(req); err != nil {
		return "", false, &Error{Class: Final, Code: "encode", Message: err.Error(), Err: err}
	}
	var resp Response
	status, err := c.do(ctx, "POST /customers", c.createReq, buf.Bytes(), &resp)
	if err != nil {
		return "", false, err
	}
	c.observe(resp.APICallUnix)
	switch {
	case resp.Code == 1 && resp.CustomerID != "":
		return resp.CustomerID, saysExisting(resp.Result) || saysExisting(resp.Message), nil
	case resp.Code == 0 && (resp.ErrorCode != "" || resp.Message != ""):
		return "", false, &Error{Class: Final, HTTPStatus: status, Code: resp.ErrorCode, Message: resp.Message}
	default:
		// A 200 that neither succeeds nor explains itself: the customer
		// may have been created.
		return "", false, &Error{Class: InDoubt, HTTPStatus: status, Code: "bad_answer",
			Message: fmt.Sprintf("POST /customers: HTTP %d answer has code %d and no customer_id", status, resp.Code)}
	}
}

// get sends a GET to target and decodes a 200 answer into out. what
// names the endpoint in errors.
func (c *Client) get(ctx context.Context, what, target string, out any) (int, error) {
	tmpl, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return 0, &Error{Class: Fatal, Code: "request", Message: what + ": " + err.Error(), Err: err}
	}
	status, err := c.do(ctx, what, tmpl, nil, out)
	if err == nil {
		var clock struct {
			Unix int64 `json:"api_call_unix"`
		}
		if b, ok := out.(*json.RawMessage); ok {
			json.Unmarshal(*b, &clock)
		} else if m, ok := out.(*map[string]json.RawMessage); ok {
			json.Unmarshal((*m)["api_call_unix"], &clock.Unix)
		} else if r, ok := out.(interface{ callUnix() int64 }); ok {
			clock.Unix = r.callUnix()
		}
		c.observe(clock.Unix)
	}
	return status, err
}

func (r *SearchResponse) callUnix() int64 { return r.APICallUnix }
func (r *ListResponse) callUnix() int64   { return r.APICallUnix }

// do sends tmpl (a request without context, headers or body: made once
// for CreateCustomer, so that no row pays for parsing its URL) with body,
// and decodes a 200 answer into out. It returns the HTTP status, or an
// *Error for any other outcome. what names the endpoint in errors.
func (c *Client) do(ctx context.Context, what string, tmpl *http.Request, body []byte, out any) (int, error) {
	method := tmpl.Method
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	// wrote records whether the whole request reached the connection: a
	// failure before that point cannot have been processed by RevCent, a
	// failure after it may have been.
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				wrote.Store(true)
			}
		},
	})
	req := tmpl.WithContext(ctx)
	req.Header = make(http.Header, 4)
	if body != nil {
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	// The values are shared by every request: the transport only reads
	// them. Keys are already canonical.
	h := req.Header
	h["X-Api-Key"], h["Accept"], h["User-Agent"] = c.hdrKey, hdrJSON, c.hdrUA
	if body != nil {
		h["Content-Type"] = hdrJSON
	}

	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return 0, transportError(err, wrote.Load(), method)
	}
	if c.onQuota != nil {
		if q, ok := ParseQuota(resp.Header, time.Now()); ok {
			c.onQuota(q)
		}
	}
	lr := &io.LimitedReader{R: resp.Body, N: maxBody} // the answer, then the drain
	defer func() {
		// Drain so the connection goes back to the pool.
		io.Copy(io.Discard, lr)
		resp.Body.Close()
	}()

	if resp.StatusCode != http.StatusOK {
		// A 200 carries RevCent's clock in api_call_unix; any answer does
		// in its Date header, a bare 503 too.
		if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
			c.observe(d.Unix())
		}
		e := &Error{Class: classifyStatus(resp.StatusCode), HTTPStatus: resp.StatusCode}
		if method != http.MethodPost && e.Class == InDoubt {
			e.Class = Retryable // a GET changes nothing: a 5xx on it is safe to repeat
		}
		e.RetryAfter, e.HasRetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		var r Response
		if json.NewDecoder(lr).Decode(&r) == nil {
			e.Code, e.Message = r.ErrorCode, r.Message
			c.observe(r.APICallUnix)
		}
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
		if e.Class == Fatal && resp.StatusCode >= 300 && resp.StatusCode < 400 {
			e.Message = fmt.Sprintf("redirected to %q: check the base URL", resp.Header.Get("Location"))
		}
		return resp.StatusCode, e
	}
	ans := bufPool.Get().(*bytes.Buffer)
	ans.Reset()
	defer bufPool.Put(ans)
	_, err = ans.ReadFrom(lr)
	if err == nil {
		err = json.Unmarshal(ans.Bytes(), out)
	}
	if err != nil {
		cls := InDoubt
		if method != http.MethodPost {
			cls = Retryable
		}
		// Name the endpoint and show how the answer starts: "HTTP 200"
		// alone would not tell an operator what came back.
		return resp.StatusCode, &Error{Class: cls, HTTPStatus: resp.StatusCode, Code: "bad_answer",
			Message: fmt.Sprintf("%s: the HTTP %d answer is not the JSON expected; it starts %s", what, resp.StatusCode, snippet(ans.Bytes())), Err: err}
	}
	return resp.StatusCode, nil
}

// snippet quotes the first bytes of an answer for a message.
func snippet(b []byte) string {
	if len(b) == 0 {
		return "empty"
	}
	const n = 80
	cut := b
	if len(cut) > n {
		cut = cut[:n]
	}
	s := strconv.Quote(strings.ToValidUTF8(string(cut), "?"))
	if len(b) > n {
		s += "..."
	}
	return s
}

// transportError classifies a failure in which no HTTP answer arrived.
func transportError(err error, wrote bool, method string) *Error {
	e := &Error{Err: err, Code: "network", Message: err.Error()}
	var ue *url.Error
	if errors.As(err, &ue) {
		e.Message = ue.Err.Error()
	}
	// Said for a person, not as Go's "dial tcp 127.0.0.1:1: connect: ...".
	var oe *net.OpError
	var dns *net.DNSError
	var errno syscall.Errno
	switch {
	case errors.As(err, &dns):
		e.Message, e.Unreachable = fmt.Sprintf("no such host %q (DNS)", dns.Name), true
	case errors.As(err, &oe) && oe.Op == "dial" && oe.Addr != nil && errors.As(err, &errno):
		e.Message, e.Unreachable = fmt.Sprintf("could not connect to %s: %s", oe.Addr, errno.Error()), true
	}
	timeout := errors.Is(err, context.DeadlineExceeded)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		timeout = true
	}
	if timeout {
		e.Code = "timeout"
	}
	switch {
	case errors.Is(err, context.Canceled):
		// The caller gave up. If the request was written it may still
		// be processed.
		e.Code = "canceled"
		e.Class = Retryable
		if wrote && method == http.MethodPost {
			e.Class = InDoubt
		}
	case !wrote || method != http.MethodPost:
		// Nothing complete reached RevCent (dial error, refused, reset
		// while writing), or the call changes nothing.
		e.Class = Retryable
	default:
		e.Class = InDoubt
	}
	return e
}
