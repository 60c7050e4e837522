package relay

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/deskrelay/deskrelay/internal/validate"
	"github.com/deskrelay/deskrelay/zendesk"
)

// Message is one end-user message of the platform, as POST /v1/messages
// takes it (README, "POST /v1/messages").
type Message struct {
	// ID is unique per message: the idempotency key. Required.
	ID string `json:"id"`
	// ConversationID names the conversation (one Zendesk ticket). Required.
	ConversationID string `json:"conversation_id"`
	// Sequence is the message's position in the conversation (1, 2, 3 …,
	// at most MaxSequence); nil: the next position on arrival.
	Sequence *int64 `json:"sequence,omitempty"`
	// Author wrote the message; Email or ID is required.
	Author Author `json:"author"`
	// Body is the message text. Required, non-empty.
	Body string `json:"body"`
	// Subject becomes the ticket's subject when this message creates it.
	Subject string `json:"subject,omitempty"`
	// CreatedAt is when the platform stored the message.
	CreatedAt *time.Time `json:"created_at,omitempty"`
	// Tags are added to a new ticket (with "deskrelay").
	Tags []string `json:"tags,omitempty"`
	// CustomFields are set on a new ticket.
	CustomFields []zendesk.CustomField `json:"custom_fields,omitempty"`
	// Account names the Zendesk account (validate.AccountName); "" is
	// "default" on the wire, and the relay's own account for Enqueue.
	Account string `json:"account,omitempty"`
}

// Author is the end user who wrote a message.
type Author struct {
	ID    string `json:"id,omitempty"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// Message states, as GET /v1/messages/{id} reports them.
const (
	StateQueued    = "queued"
	StateRetrying  = "retrying"
	StateDelivered = "delivered"
	StateFailed    = "failed"
)

// Reasons of a failed message.
const (
	ReasonUnauthorized = "unauthorized"
	ReasonInvalid      = "invalid"
)

// Status is what deskrelay knows about one message.
type Status struct {
	ID             string `json:"id"`
	ConversationID string `json:"conversation_id"`
	Status         string `json:"status"` // queued, retrying, delivered, failed
	Reason         string `json:"reason,omitempty"`
	Attempts       int    `json:"attempts"`
	LastError      string `json:"last_error"`
	TicketID       int64  `json:"ticket_id"`
	CommentID      int64  `json:"comment_id,omitempty"`
}

// Errors of the Go API.
var (
	// ErrNotFound: no message with that id is known.
	ErrNotFound = errors.New("message not found")
	// ErrConflict: the id is known with different content.
	ErrConflict = errors.New("message id already used with different content")
	// ErrUnavailable: Redis could not take the message; nothing was kept.
	ErrUnavailable = errors.New("message store unavailable")
)

// ValidationError says which field of a Message is missing or invalid.
type ValidationError struct {
	Field   string
	Problem string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Problem }

// Limits of a message's fields.
const (
	// MaxIDLen is the longest id or conversation_id, in bytes.
	MaxIDLen = 255
	// MaxSequence is the largest sequence: 2^53−1, the largest integer that
	// every JSON reader (and Redis's sorted-set scores) holds exactly.
	MaxSequence = 1<<53 - 1

	maxAuthorIDLen = 256
	maxBodyLen     = 64 * 1024
	maxTags        = 50
)

// ValidID reports whether s may be a message or conversation id: 1 to
// MaxIDLen bytes of visible ASCII (0x21–0x7E) except '{' and '}'. Ids
// travel in HTTP headers (Zendesk's Idempotency-Key), asynq task ids and
// Redis keys (whose hash tag is the account's, in braces).
func ValidID(s string) bool {
	if s == "" || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '{' || c == '}' {
			return false
		}
	}
	return true
}

// Validate checks a message as intake does; the error is a *ValidationError.
func (m *Message) Validate() error {
	bad := func(f, p string) error { return &ValidationError{Field: f, Problem: p} }
	checkID := func(field, v string) error {
		switch {
		case v == "":
			return bad(field, "required")
		case len(v) > MaxIDLen:
			return bad(field, fmt.Sprintf("at most %d bytes", MaxIDLen))
		case !ValidID(v):
			return bad(field, "only visible ASCII characters (no spaces, control characters or braces)")
		}
		return nil
	}
	if err := checkID("id", m.ID); err != nil {
		return err
	}
	if err := checkID("conversation_id", m.ConversationID); err != nil {
		return err
	}
	if m.Sequence != nil && (*m.Sequence < 1 || *m.Sequence > MaxSequence) {
		return bad("sequence", fmt.Sprintf("must be a whole number from 1 to %d", int64(MaxSequence)))
	}
	if m.Author.Email == "" && m.Author.ID == "" {
		return bad("author", "email or id required")
	}
	if m.Author.Email != "" {
		if a, err := mail.ParseAddress(m.Author.Email); err != nil || a.Address != m.Author.Email {
			return bad("author.email", "not an email address")
		}
	}
	if m.Author.ID != "" && (len(m.Author.ID) > maxAuthorIDLen || !utf8.ValidString(m.Author.ID)) {
		return bad("author.id", "invalid")
	}
	if strings.TrimSpace(m.Body) == "" {
		return bad("body", "required, non-empty text")
	}
	if len(m.Body) > maxBodyLen || !utf8.ValidString(m.Body) {
		return bad("body", fmt.Sprintf("must be UTF-8 text of at most %d bytes", maxBodyLen))
	}
	if len(m.Tags) > maxTags {
		return bad("tags", fmt.Sprintf("at most %d tags", maxTags))
	}
	for i, t := range m.Tags {
		if strings.TrimSpace(t) == "" || strings.ContainsAny(t, " \t\r\n,") {
			return bad(fmt.Sprintf("tags[%d]", i), "must be a non-empty word")
		}
	}
	for i, f := range m.CustomFields {
		if f.ID <= 0 {
			return bad(fmt.Sprintf("custom_fields[%d].id", i), "must be a positive field id")
		}
	}
	if m.Account != "" {
		if msg := validate.AccountName(m.Account); msg != "" {
			return bad("account", msg)
		}
	}
	return nil
}

// contentHash identifies a message's content: the same id with another hash
// is a conflict.
func (m *Message) contentHash() (string, []byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return "", nil, fmt.Errorf("encode message %s: %w", m.ID, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), b, nil
}

// ticketSubject is the subject of a ticket the message creates: the message's subject, or
// the first line of the body, at most 80 characters.
func (m *Message) ticketSubject() string {
	s := strings.TrimSpace(m.Subject)
	if s == "" {
		s = strings.TrimSpace(m.Body)
		if i := strings.IndexAny(s, "\r\n"); i >= 0 {
			s = strings.TrimSpace(s[:i])
		}
	}
	if utf8.RuneCountInString(s) > 80 {
		r := []rune(s)
		s = string(r[:80])
	}
	return s
}
