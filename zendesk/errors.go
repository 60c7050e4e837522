package zendesk

import (
	"errors"
	"fmt"
	"time"
)

// Kind says what a caller should do after an error.
type Kind int

const (
	// KindTemporary: retry later with backoff (5xx, 423, 409, timeouts,
	// connection errors). Error.Ambiguous says whether a write may already
	// have been applied.
	KindTemporary Kind = iota + 1
	// KindRateLimited: wait Error.RetryAfter, then retry; not a failure.
	KindRateLimited
	// KindUnauthorized: stop; the account no longer authorizes us (401/403).
	KindUnauthorized
	// KindNotFound: the resource does not exist (404), e.g. a deleted ticket.
	KindNotFound
	// KindUnprocessable: 422; Zendesk's error body is kept. Error.Closed
	// reports the "closed prevents ticket update" case.
	KindUnprocessable
	// KindInvalid: give up; the request will never succeed (other 4xx).
	KindInvalid
)

func (k Kind) String() string {
	switch k {
	case KindTemporary:
		return "temporary"
	case KindRateLimited:
		return "rate_limited"
	case KindUnauthorized:
		return "unauthorized"
	case KindNotFound:
		return "not_found"
	case KindUnprocessable:
		return "unprocessable"
	case KindInvalid:
		return "invalid"
	default:
		return fmt.Sprintf("kind(%d)", int(k))
	}
}

// Error is every error the client returns for a failed request. It never
// contains credentials.
type Error struct {
	Op         string        // e.g. "create ticket"
	Status     int           // HTTP status; 0 for transport failures
	Kind       Kind          // what to do next
	RetryAfter time.Duration // from Retry-After, when sent
	RequestID  string        // X-Request-Id / X-Zendesk-Request-Id
	Message    string        // Zendesk's error and description, or the transport error
	// Ambiguous is true when the request was a write that may have been
	// applied although no success was seen (timeout or connection cut after
	// the body was sent, a gateway 5xx).
	Ambiguous bool
	// Name is Zendesk's "error" field (e.g. "RecordInvalid").
	Name string
	// Details is Zendesk's "details" object, raw.
	Details   []byte
	RateLimit RateLimit
	Err       error // the underlying transport error, if any
}

func (e *Error) Error() string {
	var s string
	if e.Status != 0 {
		s = fmt.Sprintf("zendesk %s: %d %s", e.Op, e.Status, e.Kind)
	} else {
		s = fmt.Sprintf("zendesk %s: %s", e.Op, e.Kind)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	if e.RequestID != "" {
		s += " [request " + e.RequestID + "]"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of err when it is (or wraps) a *Error, else 0.
func KindOf(err error) Kind {
	var ze *Error
	if errors.As(err, &ze) {
		return ze.Kind
	}
	return 0
}

// AsError returns the *Error in err's chain, or nil.
func AsError(err error) *Error {
	var ze *Error
	if errors.As(err, &ze) {
		return ze
	}
	return nil
}
