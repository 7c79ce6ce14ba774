package revcent

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Class says what a failed call means for the customer it tried to create,
// and so what the caller may do next. It is the single source of the failure
// table in DESIGN.md.
type Class uint8

const (
	// Retryable: RevCent never processed the request (dial error, connection
	// refused, nothing written, 429). Resending cannot create a duplicate.
	Retryable Class = iota + 1
	// Final: RevCent rejected the request (400/404/409/422, or code 0 on a
	// 200). Resending the same body will fail the same way.
	Final
	// Fatal: the key is refused or not allowed (401/403), or the base URL
	// is wrong. Every further request would fail: stop the run.
	Fatal
	// InDoubt: the request was written but no trustworthy answer came back
	// (timeout, reset or EOF after sending, 5xx, an unreadable 200). The
	// customer may or may not exist: reconcile before resending.
	InDoubt
)

func (c Class) String() string {
	switch c {
	case Retryable:
		return "retryable"
	case Final:
		return "final"
	case Fatal:
		return "fatal"
	case InDoubt:
		return "in-doubt"
	}
	return "unknown"
}

// Error is a failed API call. Every error returned by Client is an *Error.
type Error struct {
	Class      Class
	HTTPStatus int           // 0 when no answer arrived
	Code       string        // RevCent's error_code, or a local code such as "timeout"
	Message    string        // RevCent's message, or a description of the transport failure
	RetryAfter time.Duration // from a Retry-After header
	// HasRetryAfter tells a Retry-After of 0 ("now") from none at all.
	HasRetryAfter bool
	Err           error // the transport error, if any
	// Unreachable says no connection could be made (refused, no such
	// host): nothing was sent, and the base URL or the network is wrong.
	Unreachable bool
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.HTTPStatus)
	}
	if e.Code != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Message)
	}
	if b.Len() == 0 && e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// ClassOf returns the class of err: the Class of an *Error in its chain, or
// InDoubt for anything else, because an unknown failure after a request
// may have been sent must never be resent blindly.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return InDoubt
}

// classifyStatus maps an HTTP status of a non-success answer to a class.
func classifyStatus(status int) Class {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return Fatal
	case status == http.StatusTooManyRequests:
		return Retryable
	case status == http.StatusRequestTimeout:
		// The server gave up reading; whether it acted is not documented.
		return InDoubt
	case status >= 500:
		return InDoubt
	case status >= 400:
		return Final
	case status >= 300:
		// A redirect on a POST means the base URL is wrong for every row.
		return Fatal
	}
	return InDoubt
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date.
// ok is false when the header is absent or unreadable.
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(s, 0)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
