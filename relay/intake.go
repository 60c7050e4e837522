package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/deskrelay/deskrelay/internal/httpx"
)

// MaxBodyBytes is the largest body POST /v1/messages accepts.
const MaxBodyBytes = 1 << 20

// Enqueue accepts a message: once it returns created=true the message is
// durable (deskrelay's record plus an asynq task on the outbound queue). The
// same id with the same content again returns its current Status and
// created=false, for as long as the record is kept (Config.Retention after
// delivery; failed messages until replayed). Errors: *ValidationError,
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
	if m.Account == "default" {
		m.Account = ""
	}
	hash, msgJSON, err := m.contentHash()
	if err != nil {
		return Status{}, false, err
	}
	unavailable := func(what string, err error) (Status, bool, error) {
		r.m.intake.WithLabelValues("unavailable").Inc()
		r.log.Error().Err(err).Str("message_id", m.ID).Str("conversation_id", m.ConversationID).Msg("intake: " + what)
		return Status{}, false, fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
	}
	outcome, _, err := r.st.accept(ctx, &m, hash, msgJSON, r.cfg.Now(), r.cfg.Retention)
	if err != nil {
		return unavailable("record message", err)
	}
	switch outcome {
	case "conflict":
		r.m.intake.WithLabelValues("conflict").Inc()
		return Status{}, false, ErrConflict
	case "exists":
		st, err := r.Status(ctx, m.ID)
		if err != nil {
			return unavailable("read message", err)
		}
		r.m.intake.WithLabelValues("duplicate").Inc()
		return st, false, nil
	}
	if err := r.enqueueTask(ctx, m.ID, 0); err != nil {
		// Take the record back so that nothing is half-written; the
		// platform keeps the message and retries.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if derr := r.st.drop(dctx, m.ID, hash); derr != nil {
			r.log.Warn().Err(derr).Str("message_id", m.ID).Msg("intake: cannot remove the unfinished record; a retry completes it")
		}
		return unavailable("enqueue task", err)
	}
	if err := r.st.queue(ctx, m.ID, m.ConversationID, m.Sequence); err != nil {
		// The task exists, so the message is durable; but it was not
		// acknowledged: the retry (or the task itself) completes it.
		return unavailable("queue message", err)
	}
	r.m.intake.WithLabelValues("accepted").Inc()
	return Status{ID: m.ID, ConversationID: m.ConversationID, Status: StateQueued}, true, nil
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
		var n int64
		if err := json.Unmarshal(w.Sequence, &n); err != nil {
			return m, &ValidationError{Field: "sequence", Problem: "must be a whole number"}
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

// PostMessage is POST /v1/messages. Mount it behind the ingest token check.
func (r *Relay) PostMessage() http.Handler {
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
			if perr.status == http.StatusUnprocessableEntity {
				r.m.intake.WithLabelValues("invalid").Inc()
			}
			httpx.WriteError(w, perr.status, perr.code, perr.message)
			return
		}
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
	})
}

// GetMessage is GET /v1/messages/{id}. Mount it behind the ingest token check.
func (r *Relay) GetMessage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
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
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return Message{}, &decodeError{http.StatusUnprocessableEntity, "invalid_field", te.Field + ": wrong type"}
		}
		return Message{}, &decodeError{http.StatusBadRequest, "malformed_json", "body is not a JSON object: " + err.Error()}
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
