package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/deskrelay/deskrelay/internal/httpx"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/validate"
)

// MaxBodyBytes is the largest body POST /v1/messages accepts.
const MaxBodyBytes = 1 << 20

// Enqueue accepts a message of the relay's account (Message.Account "" or
// the account's name): once it returns created=true the message is
// durable (deskrelay's record plus an asynq task on the outbound queue). The
// same id with the same content again returns its current Status and
// created=false, for as long as the record is kept (Config.Retention after
// delivery; failed messages until replayed); of several calls with one new
// id at once, exactly one returns created=true. Errors: *ValidationError,
// ErrConflict (same id, other content), ErrUnavailable (Redis could not take
// it; nothing was kept).
func (r *Relay) Enqueue(ctx context.Context, m Message) (Status, bool, error) {
	if err := m.Validate(); err != nil {
		r.m.intake.WithLabelValues("invalid").Inc()
		return Status{}, false, err
	}
	// Normalize what may be written two ways, so that a retry by the
	// platform hashes the same.
	if m.CreatedAt != nil {
		t := m.CreatedAt.UTC()
		m.CreatedAt = &t
	}
	switch {
	case m.Account == "":
		m.Account = r.space.Account()
	case m.Account != r.space.Account():
		r.m.intake.WithLabelValues("invalid").Inc()
		return Status{}, false, &ValidationError{Field: "account", Problem: fmt.Sprintf("%q is not this relay's account (%s)", m.Account, r.space.Account())}
	}
	if m.Account == keys.DefaultAccount {
		m.Account = "" // as the previous release hashed it
	}
	hash, msgJSON, err := m.contentHash()
	if err != nil {
		return Status{}, false, err
	}
	token := strconv.FormatUint(rand.Uint64(), 36)
	wait := time.NewTicker(25 * time.Millisecond)
	defer wait.Stop()
	for {
		outcome, backlogged, err := r.st.accept(ctx, &m, hash, msgJSON, token, r.cfg.Retention, r.runnableLimit(ctx))
		if err != nil {
			return r.unavailable(&m, "record message", err)
		}
		switch outcome {
		case acceptConflict:
			r.m.intake.WithLabelValues("conflict").Inc()
			return Status{}, false, ErrConflict
		case acceptExists:
			return r.duplicate(ctx, &m)
		case acceptNew:
			return r.complete(ctx, &m, token, backlogged)
		}
		// Another request holds a fresh claim on this id: wait for it.
		select {
		case <-ctx.Done():
			return r.unavailable(&m, "wait for a concurrent intake of the same id", ctx.Err())
		case <-wait.C:
		}
	}
}

// complete finishes an intake this request claimed: the asynq task, then
// the message's place in its conversation.
//
// While the account's gate is closed or it has parked messages (parked:
// as the claim found it), the task is enqueued parked (park.go) and the
// message joins the parked set once it is queued: its release comes in the
// account's turn, never in front of another account's messages.
func (r *Relay) complete(ctx context.Context, m *Message, token string, parked bool) (Status, bool, error) {
	if err := r.enqueueTask(ctx, m.ID, 0, parked); err != nil {
		// Take the record back so that nothing is half-written; the
		// platform keeps the message and retries.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if derr := r.st.drop(dctx, m.ID, token); derr != nil {
			r.log.Warn().Err(derr).Str("message_id", m.ID).Msg("intake: cannot remove the unfinished record; a retry completes it")
		}
		return r.unavailable(m, "enqueue task", err)
	}
	if parked {
		// Whatever the outcome below: a parked task must be released.
		defer r.parkNew(context.WithoutCancel(ctx), m.ID, 0)
	}
	outcome, err := r.st.queue(ctx, m.ID, m.ConversationID, m.Sequence, token)
	switch {
	case err != nil:
		// The task exists, so the message is durable; but it was not
		// acknowledged: the retry (or the task itself) completes it.
		return r.unavailable(m, "queue message", err)
	case outcome == "lost":
		// Our claim outlived its lease and another request took it over:
		// that one answers 202.
		return r.duplicate(ctx, m)
	case outcome != "queued":
		return r.unavailable(m, "queue message", fmt.Errorf("message record %s", outcome))
	}
	r.m.intake.WithLabelValues("accepted").Inc()
	return Status{ID: m.ID, ConversationID: m.ConversationID, Status: StateQueued}, true, nil
}

// duplicate answers a repeated id with the same content: its status.
func (r *Relay) duplicate(ctx context.Context, m *Message) (Status, bool, error) {
	st, err := r.Status(ctx, m.ID)
	if err != nil {
		return r.unavailable(m, "read message", err)
	}
	r.m.intake.WithLabelValues("duplicate").Inc()
	return st, false, nil
}

func (r *Relay) unavailable(m *Message, what string, err error) (Status, bool, error) {
	r.m.intake.WithLabelValues("unavailable").Inc()
	r.log.Error().Err(err).Str("message_id", m.ID).Str("conversation_id", m.ConversationID).Msg("intake: " + what)
	return Status{}, false, fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
}

// Status returns what deskrelay knows about a message; ErrNotFound when the
// id is unknown (or its acceptance never completed).
func (r *Relay) Status(ctx context.Context, id string) (Status, error) {
	rec, err := r.st.load(ctx, id)
	if errors.Is(err, errNoRecord) {
		return Status{}, ErrNotFound
	}
	if err != nil {
		return Status{}, err
	}
	if rec.State == "accepting" {
		return Status{}, ErrNotFound
	}
	return rec.status(), nil
}

// wireMessage is the JSON of POST /v1/messages, read leniently so that a
// wrong field answers 422 naming it rather than 400.
type wireMessage struct {
	ID             string          `json:"id"`
	ConversationID string          `json:"conversation_id"`
	Sequence       json.RawMessage `json:"sequence"`
	Author         json.RawMessage `json:"author"`
	Body           string          `json:"body"`
	Subject        string          `json:"subject"`
	CreatedAt      string          `json:"created_at"`
	Tags           []string        `json:"tags"`
	CustomFields   json.RawMessage `json:"custom_fields"`
	Account        string          `json:"account"`
}

func (w *wireMessage) message() (Message, error) {
	m := Message{ID: w.ID, ConversationID: w.ConversationID, Body: w.Body, Subject: w.Subject, Tags: w.Tags, Account: w.Account}
	if len(w.Sequence) > 0 && string(w.Sequence) != "null" {
		n, err := parseSequence(w.Sequence)
		if err != nil {
			return m, err
		}
		m.Sequence = &n
	}
	if len(w.Author) > 0 && string(w.Author) != "null" {
		if err := json.Unmarshal(w.Author, &m.Author); err != nil {
			return m, &ValidationError{Field: "author", Problem: "must be an object with id, name, email strings"}
		}
	}
	if w.CreatedAt != "" {
		t, err := time.Parse(time.RFC3339Nano, w.CreatedAt)
		if err != nil {
			return m, &ValidationError{Field: "created_at", Problem: "must be an RFC 3339 time"}
		}
		m.CreatedAt = &t
	}
	if len(w.CustomFields) > 0 && string(w.CustomFields) != "null" {
		if err := json.Unmarshal(w.CustomFields, &m.CustomFields); err != nil {
			return m, &ValidationError{Field: "custom_fields", Problem: "must be a list of {id, value}"}
		}
	}
	return m, nil
}

// parseSequence reads sequence exactly: a JSON integer literal (no
// fraction, no exponent) from 1 to MaxSequence. A float64 would turn 10^17
// into something else and 2^63−1 into a float.
func parseSequence(raw json.RawMessage) (int64, error) {
	bad := &ValidationError{Field: "sequence", Problem: fmt.Sprintf("must be a whole number from 1 to %d", int64(MaxSequence))}
	if raw[0] < '0' || raw[0] > '9' { // a string (json.Number takes "3"), bool, object …
		return 0, bad
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var num json.Number
	if err := dec.Decode(&num); err != nil {
		return 0, bad
	}
	s := num.String()
	if s == "" || strings.ContainsAny(s, ".eE-+") || len(s) > 16 {
		return 0, bad
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || n > MaxSequence {
		return 0, bad
	}
	return n, nil
}

// Single is the pick of a deployment of one account: r for r's account,
// nil for any other.
func Single(r *Relay) func(account string) *Relay {
	return func(account string) *Relay {
		if account == r.space.Account() {
			return r
		}
		return nil
	}
}

// PostMessage is POST /v1/messages: it reads the message, picks its
// account's Relay (the body's "account"; none is "default") and enqueues
// it there. An account pick does not know is answered 422
// (unknown_account), nothing stored. Mount it behind the ingest token
// check.
func PostMessage(pick func(account string) *Relay) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !isJSON(req.Header.Get("Content-Type")) {
			httpx.WriteError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxBodyBytes))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				httpx.WriteError(w, http.StatusRequestEntityTooLarge, "too_large", "body over 1 MiB")
				return
			}
			httpx.WriteError(w, http.StatusBadRequest, "bad_request", "cannot read body")
			return
		}
		m, perr := decodeMessage(body)
		if perr != nil {
			if r := pick(keys.DefaultAccount); r != nil && perr.status == http.StatusUnprocessableEntity {
				r.m.intake.WithLabelValues("invalid").Inc()
			}
			httpx.WriteError(w, perr.status, perr.code, perr.message)
			return
		}
		r := pickAccount(w, pick, m.Account)
		if r == nil {
			return
		}
		r.postMessage(w, req, m)
	})
}

// pickAccount picks the relay of account ("" is "default"); when there is
// none, it answers 422 naming the field account and returns nil.
func pickAccount(w http.ResponseWriter, pick func(string) *Relay, account string) *Relay {
	if account == "" {
		account = keys.DefaultAccount
	}
	if msg := validate.AccountName(account); msg != "" {
		httpx.WriteError(w, http.StatusUnprocessableEntity, "invalid_field", "account: "+msg)
		return nil
	}
	r := pick(account)
	if r == nil {
		httpx.WriteError(w, http.StatusUnprocessableEntity, "unknown_account", fmt.Sprintf("account: unknown account %q", account))
	}
	return r
}

// postMessage enqueues a decoded message and answers.
func (r *Relay) postMessage(w http.ResponseWriter, req *http.Request, m Message) {
	st, created, err := r.Enqueue(req.Context(), m)
	var ve *ValidationError
	switch {
	case errors.As(err, &ve):
		httpx.WriteError(w, http.StatusUnprocessableEntity, "invalid_field", ve.Error())
	case errors.Is(err, ErrConflict):
		httpx.WriteError(w, http.StatusConflict, "conflict", "message id "+m.ID+" was already used with different content")
	case errors.Is(err, ErrUnavailable):
		httpx.WriteError(w, http.StatusServiceUnavailable, "unavailable", "cannot store the message now; retry later")
	case err != nil:
		r.log.Error().Err(err).Str("message_id", m.ID).Msg("intake failed")
		httpx.WriteError(w, http.StatusInternalServerError, "internal", "internal error")
	case created:
		httpx.WriteJSON(w, http.StatusAccepted, map[string]string{"id": st.ID, "status": st.Status})
	default:
		httpx.WriteJSON(w, http.StatusOK, st)
	}
}

// GetMessage is GET /v1/messages/{id}?account=<name> (none: "default"):
// the message's status in its account's Relay; an account pick does not
// know is answered 422 (unknown_account). Mount it behind the ingest token
// check.
func GetMessage(pick func(account string) *Relay) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r := pickAccount(w, pick, req.URL.Query().Get("account"))
		if r == nil {
			return
		}
		id := req.PathValue("id")
		st, err := r.Status(req.Context(), id)
		switch {
		case errors.Is(err, ErrNotFound):
			httpx.WriteError(w, http.StatusNotFound, "not_found", "no message with id "+id)
		case err != nil:
			r.log.Error().Err(err).Str("message_id", id).Msg("status lookup failed")
			httpx.WriteError(w, http.StatusServiceUnavailable, "unavailable", "cannot read the message now; retry later")
		default:
			httpx.WriteJSON(w, http.StatusOK, st)
		}
	})
}

// decodeError is why a body is not a message: an HTTP status, code and text.
type decodeError struct {
	status        int
	code, message string
}

// decodeMessage reads a POST /v1/messages body: 400 when it is not one JSON
// object, 422 naming the field when a field is missing or invalid.
func decodeMessage(body []byte) (Message, *decodeError) {
	var wm wireMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&wm); err != nil {
		return Message{}, jsonError(err)
	}
	if !onlyWhitespaceLeft(dec) {
		return Message{}, &decodeError{http.StatusBadRequest, "malformed_json", "trailing data after the JSON object"}
	}
	m, err := wm.message()
	if err == nil {
		err = m.Validate()
	}
	if err != nil {
		return Message{}, &decodeError{http.StatusUnprocessableEntity, "invalid_field", err.Error()}
	}
	return m, nil
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

func onlyWhitespaceLeft(dec *json.Decoder) bool {
	_, err := dec.Token()
	return err == io.EOF
}

// fieldWants says, in plain words, what each field of a message must be.
var fieldWants = map[string]string{
	"id": "a string", "conversation_id": "a string", "body": "a string",
	"subject": "a string", "created_at": "an RFC 3339 time string",
	"tags": "a list of strings", "account": "a string",
}

// jsonError turns encoding/json's error into an answer in plain words: it
// never shows Go's type names (relay.wireMessage, int64 …).
func jsonError(err error) *decodeError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return &decodeError{http.StatusBadRequest, "malformed_json", "body must be a JSON object, not " + jsonKind(te.Value)}
		}
		field, _, _ := strings.Cut(te.Field, ".")
		want := fieldWants[field]
		if want == "" {
			want = "of another type"
		}
		return &decodeError{http.StatusUnprocessableEntity, "invalid_field", field + ": must be " + want + ", not " + jsonKind(te.Value)}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &decodeError{http.StatusBadRequest, "malformed_json", fmt.Sprintf("body is not valid JSON (at byte %d)", se.Offset)}
	}
	return &decodeError{http.StatusBadRequest, "malformed_json", "body is not a complete JSON object"}
}

// jsonKind names a JSON value kind as encoding/json reports it.
func jsonKind(v string) string {
	switch {
	case v == "array" || v == "object":
		return "an " + v
	case v == "string" || v == "bool":
		return "a " + v
	case strings.HasPrefix(v, "number"):
		return "a number"
	}
	return "that value"
}
