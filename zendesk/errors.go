package zendesk

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/deskrelay/deskrelay/internal/textx"
)

// Kind says what a caller should do after an error.
type Kind int

const (
	// KindTemporary means: retry later with backoff (5xx, 423, 409, timeouts,
	// connection errors). Error.Ambiguous says whether a write may already
	// have been applied.
	KindTemporary Kind = iota + 1
	// KindRateLimited means: wait Error.RetryAfter, then retry; not a failure.
	KindRateLimited
	// KindUnauthorized means: stop; the account no longer authorizes us (401/403).
	KindUnauthorized
	// KindNotFound means: the resource does not exist (404), e.g. a deleted ticket.
	KindNotFound
	// KindUnprocessable means: 422; Zendesk's error body is kept. Error.Closed
	// reports the "closed prevents ticket update" case, Error.CommentLimit
	// a ticket at its maximum of comments.
	KindUnprocessable
	// KindInvalid means: give up; the request will never succeed (other 4xx,
	// or a request net/http refuses to send, with Status 0).
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
	Details []byte
	// Family is the rate-limit budget the request belongs to; RateLimit is
	// that budget as the response reported it (see Response).
	Family    Family
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

// maxErrorBody bounds how much of an error response body is read.
const maxErrorBody = 64 << 10

// maxMessage bounds Error.Message taken from a response body.
const maxMessage = 300

// MaxRetryAfter caps what ParseRetryAfter returns: a far-away date or an
// absurd number of seconds is a server mistake, not a reason to stall.
const MaxRetryAfter = time.Hour

// DefaultRetryAfter is Error.RetryAfter for a 429 that sent neither
// Retry-After nor a rate-limit reset: Zendesk's limits are per minute.
const DefaultRetryAfter = time.Minute

// errRequestTimeout is the cause of a request's own deadline (Config.Timeout).
var errRequestTimeout = errors.New("request timeout")

// exchangeResult is everything known about one finished (or failed) HTTP
// exchange; checkResponse classifies it.
type exchangeResult struct {
	op, method string
	rule       FamilyRule  // the request's rate-limit family
	status     int         // 0 when no response arrived
	header     http.Header // nil when no response arrived
	body       []byte      // the (limited) body
	err        error       // transport, body read or decode failure
	decodeErr  bool        // err is a failure to decode a 2xx body
	wrote      bool        // some of the request was written to the connection
	traced     bool        // the transport reported connection events at all
	parentErr  error       // the caller's context error, if any
	timedOut   bool        // the request's own Config.Timeout fired
	timeout    time.Duration
	secrets    []string // scrubbed from every message
	now        time.Time
}

// checkResponse is the one place that turns a response or a transport
// failure into a *Error, or nil for a 2xx that was read fully.
func checkResponse(x *exchangeResult) *Error {
	if x.err == nil && x.status >= 200 && x.status < 300 {
		return nil
	}
	write := x.method == http.MethodPost || x.method == http.MethodPut || x.method == http.MethodPatch
	rule := x.rule
	if rule.Family == "" {
		rule = accountRule
	}
	e := &Error{Op: x.op, Status: x.status, Family: rule.Family}
	var account RateLimit
	if x.header != nil {
		e.RequestID = requestID(x.header, x.secrets)
		e.RateLimit, account = ParseRateLimits(x.header, rule)
	}
	now := x.now
	if now.IsZero() {
		now = time.Now()
	}

	if x.err != nil {
		return transportError(x, e, write)
	}

	// Scrub before parsing: the message is cut to maxMessage, and a cut
	// credential would no longer be recognized.
	e.Name, e.Message, e.Details = parseErrorBody(x.header, []byte(scrub(string(x.body), x.secrets)))
	ra, haveRA := time.Duration(0), false
	if x.header != nil {
		ra, haveRA = ParseRetryAfter(x.header.Get("Retry-After"), now)
	}
	switch s := x.status; {
	case s == http.StatusTooManyRequests:
		e.Kind = KindRateLimited
		switch {
		case haveRA:
			e.RetryAfter = ra
		case e.RateLimit.Reset > 0:
			e.RetryAfter = min(e.RateLimit.Reset, MaxRetryAfter)
		case account.Reset > 0:
			e.RetryAfter = min(account.Reset, MaxRetryAfter)
		default:
			e.RetryAfter = DefaultRetryAfter
		}
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		e.Kind = KindUnauthorized
	case s == http.StatusNotFound:
		e.Kind = KindNotFound
	case s == http.StatusUnprocessableEntity:
		e.Kind = KindUnprocessable
	case s == http.StatusConflict || s == http.StatusLocked || s == http.StatusRequestTimeout:
		// Not applied: Zendesk refused it (safe_update conflict, maintenance).
		e.Kind = KindTemporary
		if haveRA {
			e.RetryAfter = ra
		}
	case s >= 500:
		e.Kind = KindTemporary
		if haveRA {
			e.RetryAfter = ra
		}
		// A 503 with Retry-After is Zendesk itself shedding load before
		// doing anything; 500 and gateway errors may hide an applied write.
		e.Ambiguous = write && (s != http.StatusServiceUnavailable || !haveRA) && s != http.StatusNotImplemented
	case s >= 300 && s < 400:
		e.Kind = KindInvalid
		e.Message = "unexpected redirect (check the Zendesk base URL or subdomain)"
	default: // 400 (IdempotentRequestError included) and other 4xx
		e.Kind = KindInvalid
	}
	if e.Message == "" {
		e.Message = http.StatusText(x.status)
	}
	e.Message = scrub(e.Message, x.secrets)
	e.Name = scrub(e.Name, x.secrets)
	if e.Details != nil {
		e.Details = []byte(scrub(string(e.Details), x.secrets))
	}
	return e
}

// transportError fills e for a transport failure, or a 2xx whose body could
// not be read: the change may have been applied unless nothing was sent.
func transportError(x *exchangeResult, e *Error, write bool) *Error {
	e.Kind = KindTemporary
	e.Err = unwrapURLError(x.err)
	if x.status == 0 && unsendable(e.Err) {
		// The request was refused before any connection (a header value
		// net/http will not send): it never will be sent, and Zendesk was
		// not asked.
		e.Kind = KindInvalid
		e.Message = scrub("request cannot be sent: "+e.Err.Error(), x.secrets)
		return e
	}
	switch {
	case x.parentErr != nil:
		e.Message = "canceled: " + x.parentErr.Error()
		e.Err = x.parentErr
	case x.timedOut:
		e.Message = fmt.Sprintf("timeout after %s", x.timeout)
		if !errors.Is(e.Err, context.DeadlineExceeded) {
			e.Err = fmt.Errorf("%w: %w", context.DeadlineExceeded, e.Err)
		}
	default:
		e.Message = e.Err.Error()
	}
	if x.status != 0 {
		e.Message = fmt.Sprintf("%s after status %d", e.Message, x.status)
	}
	nothingSent := x.status == 0 && (isDialError(e.Err) || (x.traced && !x.wrote))
	e.Ambiguous = write && !nothingSent
	e.Message = scrub(e.Message, x.secrets)
	return e
}

// Closed reports whether the error is Zendesk's 422 for an update of a
// closed ticket ("Status: closed prevents ticket update").
func (e *Error) Closed() bool {
	if e == nil || e.Kind != KindUnprocessable {
		return false
	}
	var d struct {
		Status []struct {
			Description string `json:"description"`
		} `json:"status"`
	}
	if json.Unmarshal(e.Details, &d) == nil {
		for _, s := range d.Status {
			if strings.Contains(strings.ToLower(s.Description), "closed") {
				return true
			}
		}
	}
	return strings.Contains(strings.ToLower(e.Message), "closed prevents ticket update") ||
		strings.Contains(strings.ToLower(string(e.Details)), "closed prevents ticket update")
}

// CommentLimit reports whether the error is Zendesk's 422 for a comment
// added to a ticket that already holds the maximum number of comments
// (5,000): like a closed ticket, such a ticket takes no more comments and
// the conversation continues on a follow-up. Zendesk documents the 422 but
// not its text (docs/zendesk.md), so any 422 whose message or details speak
// of comments and a limit or maximum counts.
func (e *Error) CommentLimit() bool {
	if e == nil || e.Kind != KindUnprocessable || e.Closed() {
		return false
	}
	text := strings.ToLower(e.Message + " " + string(e.Details))
	return strings.Contains(text, "comment") &&
		(strings.Contains(text, "limit") || strings.Contains(text, "maximum") || strings.Contains(text, "5000") || strings.Contains(text, "5,000"))
}

// parseErrorBody reads Zendesk's error body leniently: {"error": "Name",
// "description": "…", "details": {…}}, {"error": {"title", "message"}},
// {"errors": [{"code", "title", "detail"}]}, or anything else (HTML, plain
// text, nothing), which gives a short plain-text message.
func parseErrorBody(h http.Header, body []byte) (name, msg string, details []byte) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return "", "", nil
	}
	if trimmed[0] == '{' {
		var b struct {
			Error       json.RawMessage `json:"error"`
			Description string          `json:"description"`
			Message     string          `json:"message"`
			Details     json.RawMessage `json:"details"`
			Errors      []struct {
				Code   string `json:"code"`
				Title  string `json:"title"`
				Detail string `json:"detail"`
			} `json:"errors"`
		}
		if json.Unmarshal(trimmed, &b) == nil {
			var s string
			var obj struct {
				Title   string `json:"title"`
				Message string `json:"message"`
			}
			switch {
			case json.Unmarshal(b.Error, &s) == nil:
				name = s
			case json.Unmarshal(b.Error, &obj) == nil:
				name, msg = obj.Title, obj.Message
			}
			if msg == "" {
				msg = b.Description
			}
			if msg == "" {
				msg = b.Message
			}
			if len(b.Errors) > 0 {
				if name == "" {
					name = b.Errors[0].Code
				}
				if msg == "" {
					msg = strings.TrimSpace(b.Errors[0].Title + ": " + b.Errors[0].Detail)
					msg = strings.Trim(msg, ": ")
				}
			}
			if len(b.Details) > 0 && string(b.Details) != "null" {
				details = []byte(b.Details)
				if d := detailsText(b.Details); d != "" {
					msg = strings.TrimSpace(msg + " (" + d + ")")
				}
			}
			if name != "" && msg != "" && name != msg {
				msg = name + ": " + msg
			} else if msg == "" {
				msg = name
			}
			return name, textx.Truncate(oneLine(msg), maxMessage), details
		}
	}
	text := string(trimmed)
	if isHTML(h, text) {
		if t := htmlTitle(text); t != "" {
			text = t
		} else {
			text = tagRE.ReplaceAllString(text, " ")
		}
	}
	return "", textx.Truncate(oneLine(text), maxMessage), nil
}

// detailsText flattens {"field": [{"description": "…"}]} into "…; …".
func detailsText(raw json.RawMessage) string {
	var d map[string][]struct {
		Description string `json:"description"`
	}
	if json.Unmarshal(raw, &d) != nil {
		return ""
	}
	var parts []string
	for _, list := range d {
		for _, x := range list {
			if x.Description != "" {
				parts = append(parts, x.Description)
			}
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

var (
	tagRE   = regexp.MustCompile(`<[^>]*>`)
	titleRE = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)
)

func isHTML(h http.Header, s string) bool {
	if h != nil && strings.Contains(strings.ToLower(h.Get("Content-Type")), "html") {
		return true
	}
	return strings.HasPrefix(s, "<")
}

func htmlTitle(s string) string {
	if m := titleRE.FindStringSubmatch(s); m != nil {
		return strings.TrimSpace(tagRE.ReplaceAllString(m[1], " "))
	}
	return ""
}

// oneLine collapses whitespace and drops control characters.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// scrub removes every known credential from s.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
			s = strings.ReplaceAll(s, base64.StdEncoding.EncodeToString([]byte(sec)), "[redacted]")
		}
	}
	return s
}

// unsendable reports net/http's refusal of a request it cannot send (an
// invalid header field name or value, an invalid method): these errors are
// not typed, their text is net/http's promise.
func unsendable(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "net/http: invalid ")
}

// unwrapURLError drops *url.Error's wrapper, whose text holds the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// isDialError reports failures before anything was sent: DNS, refused
// connections, dial timeouts.
func isDialError(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// requestID is the response's request id, scrubbed (an upstream may echo
// the Authorization header in it) before it is cut to 100 bytes.
func requestID(h http.Header, secrets []string) string {
	v := h.Get("X-Request-Id")
	if v == "" {
		v = h.Get("X-Zendesk-Request-Id")
	}
	return textx.Truncate(oneLine(scrub(v, secrets)), 100)
}

// ParseRetryAfter reads a Retry-After value: delay seconds or an HTTP-date
// (relative to now). It reports false for a missing or unreadable value; a
// negative delay or past date gives 0, anything over MaxRetryAfter is capped.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isNumber(v) {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) {
			return 0, false
		}
		switch {
		case f <= 0:
			return 0, true
		case f >= MaxRetryAfter.Seconds():
			return MaxRetryAfter, true
		}
		return time.Duration(math.Ceil(f * float64(time.Second))), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	switch {
	case d <= 0:
		return 0, true
	case d > MaxRetryAfter:
		return MaxRetryAfter, true
	}
	return d, true
}

// isNumber accepts an optionally signed decimal number without exponent.
func isNumber(s string) bool {
	if s[0] == '-' || s[0] == '+' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	dot := false
	digits := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

// marshalBody encodes a request body as compact JSON without HTML escaping.
func marshalBody(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func decodeJSON(b []byte, v any) error {
	return json.Unmarshal(b, v)
}
