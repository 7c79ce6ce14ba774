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
	"strings"
	"sync"
	"sync/atomic"
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
}

// Client calls RevCent. It is safe for concurrent use by many goroutines;
// all of them share one connection pool.
type Client struct {
	base      string
	timeout   time.Duration
	rt        http.RoundTripper
	transport *http.Transport // nil when Config.Transport was given

	hdrKey, hdrUA []string      // header values, built once
	createReq     *http.Request // CreateCustomer's request, without body or context
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
	c := &Client{base: base, timeout: cfg.Timeout}
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

// Close releases idle connections.
func (c *Client) Close() {
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// CreateCustomer sends req and returns the new customer's id. Every error
// is an *Error whose Class says whether the customer may exist.
func (c *Client) CreateCustomer(ctx context.Context, req *CreateCustomerRequest) (string, error) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if err := json.NewEncoder(buf).Encode(req); err != nil {
		return "", &Error{Class: Final, Code: "encode", Message: err.Error(), Err: err}
	}
	var resp Response
	status, err := c.do(ctx, c.createReq, buf.Bytes(), &resp)
	if err != nil {
		return "", err
	}
	switch {
	case resp.Code == 1 && resp.CustomerID != "":
		return resp.CustomerID, nil
	case resp.Code == 0 && (resp.ErrorCode != "" || resp.Message != ""):
		return "", &Error{Class: Final, HTTPStatus: status, Code: resp.ErrorCode, Message: resp.Message}
	default:
		// A 200 that neither succeeds nor explains itself: the customer
		// may have been created.
		return "", &Error{Class: InDoubt, HTTPStatus: status, Code: "bad_answer",
			Message: fmt.Sprintf("answer has code %d and no customer_id", resp.Code)}
	}
}

// get sends a GET to target and decodes a 200 answer into out.
func (c *Client) get(ctx context.Context, target string, out any) (int, error) {
	tmpl, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return 0, &Error{Class: Fatal, Code: "request", Message: err.Error(), Err: err}
	}
	return c.do(ctx, tmpl, nil, out)
}

// do sends tmpl (a request without context, headers or body: made once
// for CreateCustomer, so that no row pays for parsing its URL) with body,
// and decodes a 200 answer into out. It returns the HTTP status, or an
// *Error for any other outcome.
func (c *Client) do(ctx context.Context, tmpl *http.Request, body []byte, out any) (int, error) {
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
	lr := &io.LimitedReader{R: resp.Body, N: maxBody} // the answer, then the drain
	defer func() {
		// Drain so the connection goes back to the pool.
		io.Copy(io.Discard, lr)
		resp.Body.Close()
	}()

	if resp.StatusCode != http.StatusOK {
		e := &Error{Class: classifyStatus(resp.StatusCode), HTTPStatus: resp.StatusCode}
		if method != http.MethodPost && e.Class == InDoubt {
			e.Class = Retryable // a GET changes nothing: a 5xx on it is safe to repeat
		}
		e.RetryAfter, e.HasRetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		var r Response
		if json.NewDecoder(lr).Decode(&r) == nil {
			e.Code, e.Message = r.ErrorCode, r.Message
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
		return resp.StatusCode, &Error{Class: cls, HTTPStatus: resp.StatusCode, Code: "bad_answer",
			Message: "unreadable answer: " + err.Error(), Err: err}
	}
	return resp.StatusCode, nil
}

// transportError classifies a failure in which no HTTP answer arrived.
func transportError(err error, wrote bool, method string) *Error {
	e := &Error{Err: err, Code: "network", Message: err.Error()}
	var ue *url.Error
	if errors.As(err, &ue) {
		e.Message = ue.Err.Error()
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
