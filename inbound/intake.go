package inbound

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/deskrelay/deskrelay/internal/httpx"
	"github.com/deskrelay/deskrelay/zendesk"
)

// HeaderWebhookID is the header Zendesk names the calling webhook with.
const HeaderWebhookID = "X-Zendesk-Webhook-Id"

// bodyBudget bounds the memory held by request bodies being read: a body
// takes its buffer's size from it as the bytes arrive, and gives it back
// when its request is answered.
type bodyBudget struct {
	mu   sync.Mutex
	used int64
	max  int64
}

// take takes n bytes from the budget for a body that will then hold
// total bytes. Bodies over smallBody may use three quarters of the budget
// only, so that a flood of big slow bodies leaves room for Zendesk's
// usual few-KiB ones.
func (b *bodyBudget) take(n, total int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	limit := b.max
	if total > smallBody {
		limit = b.max / 4 * 3
	}
	if b.used+n > limit {
		return false
	}
	b.used += n
	return true
}

func (b *bodyBudget) give(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

var errBudget = errors.New("too many request bodies in flight")

// A body's buffer starts at firstChunk (or its Content-Length) and doubles
// as bytes arrive; bodies beyond smallBody use a smaller part of the budget.
const (
	firstChunk = 16 << 10
	smallBody  = 64 << 10
)

// preflight refuses (401), before any of the body is read, a webhook that
// does not carry Zendesk's signature headers or whose timestamp is outside
// the window. Anyone can send those: they are counted apart
// and never count as signature failures. signed reports whether a failed
// verification of this request would count as one: it names the account's
// webhook webhookID (when the webhook id is known).
func (r *Receiver) preflight(w http.ResponseWriter, req *http.Request, webhookID string) (signed, ok bool) {
	ts, sig := req.Header.Get(zendesk.HeaderSignatureTimestamp), req.Header.Get(zendesk.HeaderSignature)
	reason, msg := "timestamp", ""
	switch at, err := time.Parse(time.RFC3339, ts); {
	case ts == "" || sig == "":
		reason, msg = "unsigned", "webhook signature headers missing"
	case err != nil:
		msg = "webhook signature timestamp is not ISO 8601"
	case r.cfg.Now().Sub(at) > r.cfg.MaxSkew || at.Sub(r.cfg.Now()) > r.cfg.MaxSkew:
		msg = "webhook signature timestamp more than " + r.cfg.MaxSkew.String() + " from now"
	}
	if msg != "" {
		r.m.rejected.WithLabelValues(reason).Inc()
		w.Header().Set("Connection", "close") // the body stays unread
		httpx.WriteError(w, http.StatusUnauthorized, "bad_signature", msg)
		return false, false
	}
	id := req.Header.Get(HeaderWebhookID)
	return webhookID == "" || id == "" || id == webhookID, true
}

// readBody reads a POST body within the read deadline, up to MaxBodyBytes
// and within the body budget, answering the request itself when it cannot
// (405, 413, 408, 400, 503). done gives the budget back: call it once the
// request is answered.
func (r *Receiver) readBody(w http.ResponseWriter, req *http.Request) (body []byte, done func(), ok bool) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpx.WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return nil, nil, false
	}
	if req.ContentLength > r.cfg.MaxBodyBytes {
		return nil, nil, r.tooLarge(w)
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(r.cfg.BodyReadTimeout)) // not supported by every ResponseWriter (tests)
	body, held, err := r.readBudgeted(req.Body, req.ContentLength)
	done = func() { r.budget.give(held) }
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		_ = rc.SetReadDeadline(time.Time{})
		return body, done, true
	case errors.As(err, &mbe):
		r.tooLarge(w)
	case errors.Is(err, errBudget):
		r.m.rejected.WithLabelValues("busy").Inc()
		w.Header().Set("Connection", "close")
		w.Header().Set("Retry-After", "10")
		httpx.WriteError(w, http.StatusServiceUnavailable, "busy", "too many webhook bodies in flight: retry later")
	case errors.Is(err, os.ErrDeadlineExceeded):
		r.m.rejected.WithLabelValues("slow_body").Inc()
		w.Header().Set("Connection", "close")
		httpx.WriteError(w, http.StatusRequestTimeout, "slow_body", fmt.Sprintf("body not received within %s", r.cfg.BodyReadTimeout))
	default:
		r.m.rejected.WithLabelValues("malformed").Inc()
		httpx.WriteError(w, http.StatusBadRequest, "unreadable", "could not read the request body")
	}
	done()
	return nil, nil, false
}

func (r *Receiver) tooLarge(w http.ResponseWriter) bool {
	r.m.rejected.WithLabelValues("too_large").Inc()
	w.Header().Set("Connection", "close")
	httpx.WriteError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body over %d bytes", r.cfg.MaxBodyBytes))
	return false
}

// readBudgeted reads rd (length bytes, -1 when unknown) up to
// MaxBodyBytes, growing its buffer as bytes arrive and taking each growth
// from the budget first; held is what it took (give it back).
func (r *Receiver) readBudgeted(rd io.Reader, length int64) (buf []byte, held int64, err error) {
	limit := r.cfg.MaxBodyBytes
	if length >= 0 {
		limit = min(limit, length) // the body reader stops there anyway
	}
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > r.cfg.MaxBodyBytes {
				return nil, held, &http.MaxBytesError{Limit: r.cfg.MaxBodyBytes}
			}
			size := min(max(2*int64(cap(buf)), firstChunk), limit+1)
			if !r.budget.take(size-int64(cap(buf)), size) {
				return nil, held, errBudget
			}
			held += size - int64(cap(buf))
			grown := make([]byte, len(buf), size)
			copy(grown, buf)
			buf = grown
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			if int64(len(buf)) > r.cfg.MaxBodyBytes {
				return nil, held, &http.MaxBytesError{Limit: r.cfg.MaxBodyBytes}
			}
			return buf, held, nil
		}
		if err != nil {
			return nil, held, err
		}
	}
}
