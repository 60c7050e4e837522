package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/deskrelay/deskrelay/internal/textx"
)

// TriggerBody is the JSON body deskrelay expects from a trigger's "Notify
// active webhook" action (and from a legacy target): ids only, so that no
// placeholder needs JSON escaping; the comment itself is read through the API.
// The README documents it; values arrive as strings, the status capitalised
// ("Pending").
const TriggerBody = `{"ticket_id":"{{ticket.id}}","external_id":"{{ticket.external_id}}","status":"{{ticket.status}}","updated_at":"{{ticket.updated_at_with_timestamp}}","comment_id":"{{ticket.latest_comment.id}}","comment_public":"{{ticket.latest_comment.is_public}}","comment_author_id":"{{ticket.latest_comment.author.id}}"}`

// Event-subscription types deskrelay forwards.
const (
	EnvelopeCommentAdded  = "zen:event-type:ticket.comment_added"
	EnvelopeStatusChanged = "zen:event-type:ticket.status_changed"
	envelopePrefix        = "zen:event-type:"
)

// Format is the kind of webhook body.
type Format string

// Webhook body formats.
const (
	FormatEnvelope Format = "envelope" // event-subscription webhook
	FormatTrigger  Format = "trigger"  // TriggerBody
)

// ErrMalformed is wrapped by every ParsePayload error: the body cannot be
// read (answer 400, or count and drop a recovered payload).
var ErrMalformed = errors.New("malformed webhook body")

// Payload is what a webhook body says.
type Payload struct {
	Format Format
	// Type is the envelope's type ("zen:event-type:…"), or "trigger".
	Type string
	// Ignored is true for event types deskrelay does not forward (answer 2xx).
	Ignored bool
	// TicketID, ExternalID, Status (lower case) and UpdatedAt describe the
	// ticket as the body gives them (zero when absent).
	TicketID   int64
	ExternalID string
	Status     string
	UpdatedAt  time.Time
	// Events are the events the body fully describes (an envelope's comment
	// or status change, a trigger's status); ConversationID is left empty
	// for the Publisher to fill.
	Events []Event
	// Comment is a trigger body's latest comment, which must be read through
	// the API (ListComments, GetUser for the role) to become an Event.
	Comment *CommentRef
}

// CommentRef names a comment to read through the API.
type CommentRef struct {
	ID       int64
	Public   *bool // nil when the body did not say
	AuthorID int64 // 0 when the body did not say
}

// ParsePayload reads a webhook body: Zendesk's event-subscription envelope
// or deskrelay's TriggerBody. src is stamped on the events. Errors wrap
// ErrMalformed and say what is wrong, without echoing the body.
func ParsePayload(body []byte, src Source) (*Payload, error) {
	var probe map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&probe); err != nil {
		return nil, malformed("not a JSON object: %s", jsonErr(err))
	}
	if dec.More() {
		return nil, malformed("trailing data after the JSON object")
	}
	if t, ok := probe["type"]; ok {
		var typ string
		if err := json.Unmarshal(t, &typ); err == nil && strings.HasPrefix(typ, "zen:") {
			return parseEnvelope(body, typ, src)
		}
	}
	if _, ok := probe["ticket_id"]; ok {
		return parseTrigger(body, src)
	}
	return nil, malformed(`neither an event-subscription envelope ("type": "zen:event-type:…") nor the trigger body ("ticket_id": …)`)
}

type envelope struct {
	AccountID flexInt `json:"account_id"`
	ID        string  `json:"id"`
	Subject   string  `json:"subject"`
	Time      string  `json:"time"`
	Type      string  `json:"type"`
	Detail    struct {
		ID         flexInt    `json:"id"`
		ExternalID flexString `json:"external_id"`
		Status     flexString `json:"status"`
		UpdatedAt  string     `json:"updated_at"`
	} `json:"detail"`
	Event struct {
		Comment *struct {
			ID        flexInt    `json:"id"`
			Body      flexString `json:"body"`
			HTMLBody  flexString `json:"html_body"`
			IsPublic  flexBool   `json:"is_public"`
			CreatedAt string     `json:"created_at"`
			Author    struct {
				ID      flexInt    `json:"id"`
				IsStaff flexBool   `json:"is_staff"`
				Name    flexString `json:"name"`
			} `json:"author"`
		} `json:"comment"`
		Current  flexString `json:"current"`
		Previous flexString `json:"previous"`
	} `json:"event"`
}

func parseEnvelope(body []byte, typ string, src Source) (*Payload, error) {
	p := &Payload{Format: FormatEnvelope, Type: typ}
	if typ != EnvelopeCommentAdded && typ != EnvelopeStatusChanged {
		p.Ignored = true
		return p, nil
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, malformed("envelope: %s", jsonErr(err))
	}
	p.TicketID = int64(env.Detail.ID)
	if p.TicketID == 0 {
		if s, ok := strings.CutPrefix(env.Subject, "zen:ticket:"); ok {
			id, err := strconv.ParseInt(s, 10, 64)
			if err == nil {
				p.TicketID = id
			}
		}
	}
	if p.TicketID <= 0 {
		return nil, malformed("envelope: detail.id (the ticket id) missing")
	}
	p.ExternalID = string(env.Detail.ExternalID)
	p.Status = NormalizeStatus(string(env.Detail.Status))
	if env.Detail.UpdatedAt != "" {
		t, err := ParseTime(env.Detail.UpdatedAt)
		if err != nil {
			return nil, malformed("envelope: detail.updated_at: %v", err)
		}
		p.UpdatedAt = t
	}
	var at time.Time
	var err error
	if env.Time != "" {
		t, err := ParseTime(env.Time)
		if err != nil {
			return nil, malformed("envelope: time: %v", err)
		}
		at = t
	}
	var ev Event
	if typ == EnvelopeCommentAdded {
		ev, err = envelopeComment(&env, p, at, src)
	} else {
		ev, err = envelopeStatus(&env, p, at, src)
	}
	if err != nil {
		return nil, err
	}
	p.Events = append(p.Events, ev)
	return p, nil
}

// envelopeComment is the ticket.comment_added event of an envelope.
func envelopeComment(env *envelope, p *Payload, at time.Time, src Source) (Event, error) {
	c := env.Event.Comment
	if c == nil || c.ID <= 0 {
		return Event{}, malformed("envelope: event.comment.id missing")
	}
	created := at
	if c.CreatedAt != "" {
		t, err := ParseTime(c.CreatedAt)
		if err != nil {
			return Event{}, malformed("envelope: event.comment.created_at: %v", err)
		}
		created = t
	}
	if created.IsZero() {
		created = p.UpdatedAt
	}
	if created.IsZero() {
		return Event{}, malformed("envelope: time missing")
	}
	role := RoleEndUser
	if c.Author.IsStaff {
		role = RoleAgent
	}
	return NewCommentEvent(p.TicketID, p.Status, Comment{
		ID:        int64(c.ID),
		Body:      string(c.Body),
		HTMLBody:  string(c.HTMLBody),
		Public:    bool(c.IsPublic),
		Author:    Author{ID: int64(c.Author.ID), Name: string(c.Author.Name), Role: role},
		CreatedAt: created,
	}, src), nil
}

// envelopeStatus is the ticket.status_changed event of an envelope; it
// also sets the payload's status to the new one.
func envelopeStatus(env *envelope, p *Payload, at time.Time, src Source) (Event, error) {
	cur := NormalizeStatus(string(env.Event.Current))
	if cur == "" {
		return Event{}, malformed("envelope: event.current (the new status) missing")
	}
	when := p.UpdatedAt
	if when.IsZero() {
		when = at
	}
	if when.IsZero() {
		return Event{}, malformed("envelope: detail.updated_at missing")
	}
	p.Status = cur
	return NewStatusEvent(p.TicketID, cur, when, src), nil
}

type triggerBody struct {
	TicketID        flexString `json:"ticket_id"`
	ExternalID      flexString `json:"external_id"`
	Status          flexString `json:"status"`
	UpdatedAt       flexString `json:"updated_at"`
	CommentID       flexString `json:"comment_id"`
	CommentPublic   flexString `json:"comment_public"`
	CommentAuthorID flexString `json:"comment_author_id"`
}

func parseTrigger(body []byte, src Source) (*Payload, error) {
	var tb triggerBody
	if err := json.Unmarshal(body, &tb); err != nil {
		return nil, malformed("trigger body: %s", jsonErr(err))
	}
	p := &Payload{Format: FormatTrigger, Type: "trigger"}
	id, err := strconv.ParseInt(strings.TrimSpace(string(tb.TicketID)), 10, 64)
	if err != nil || id <= 0 {
		return nil, malformed("trigger body: ticket_id %q is not a ticket id", clip(string(tb.TicketID)))
	}
	p.TicketID = id
	p.ExternalID = string(tb.ExternalID)
	p.Status = NormalizeStatus(string(tb.Status))
	if s := strings.TrimSpace(string(tb.UpdatedAt)); s != "" {
		t, err := ParseTime(s)
		if err != nil {
			return nil, malformed("trigger body: updated_at: %v", err)
		}
		p.UpdatedAt = t
	}
	if s := strings.TrimSpace(string(tb.CommentID)); s != "" {
		cid, err := strconv.ParseInt(s, 10, 64)
		if err != nil || cid <= 0 {
			return nil, malformed("trigger body: comment_id %q is not a comment id", clip(s))
		}
		ref := &CommentRef{ID: cid}
		if s := strings.TrimSpace(string(tb.CommentPublic)); s != "" {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return nil, malformed("trigger body: comment_public %q is not true or false", clip(s))
			}
			ref.Public = &b
		}
		if s := strings.TrimSpace(string(tb.CommentAuthorID)); s != "" {
			aid, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, malformed("trigger body: comment_author_id %q is not a user id", clip(s))
			}
			ref.AuthorID = aid
		}
		p.Comment = ref
	}
	if p.Status != "" && !p.UpdatedAt.IsZero() {
		p.Events = append(p.Events, NewStatusEvent(p.TicketID, p.Status, p.UpdatedAt, src))
	}
	return p, nil
}

// timeLayouts are the forms Zendesk timestamps come in: ISO 8601 (API,
// envelopes, updated_at_with_timestamp) and the older placeholder forms.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05 MST",
	"2006-01-02 15:04:05",
	"January 2, 2006 15:04",
	"January 2, 2006 at 15:04",
}

// ParseTime reads a Zendesk timestamp (ISO 8601 and the other forms
// placeholders render, or unix seconds) as UTC.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			if t = t.UTC(); t.Year() < 1970 || t.Year() > 9999 {
				return time.Time{}, fmt.Errorf("%q is out of range", clip(s))
			}
			return t, nil
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 && n < 253402300800 { // before year 10000: JSON-encodable
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a timestamp", clip(s))
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// jsonErr describes a JSON error without quoting the input.
func jsonErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %s: unexpected %s", te.Field, te.Value)
	}
	if errors.Is(err, io.EOF) {
		return "empty body"
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "truncated JSON"
	}
	return clip(err.Error())
}

func clip(s string) string { return textx.Truncate(s, 40) }

// flexInt reads an id sent as a number or a string ("1001", 1001, "").
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" || s == `""` {
		*f = 0
		return nil
	}
	if uq, err := strconv.Unquote(s); err == nil {
		s = strings.TrimSpace(uq)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not an id", clip(s))
	}
	*f = flexInt(n)
	return nil
}

// flexBool reads a boolean sent as true/false or "true"/"false".
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" || s == `""` {
		*f = false
		return nil
	}
	if uq, err := strconv.Unquote(s); err == nil {
		s = uq
	}
	v, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not a boolean", clip(s))
	}
	*f = flexBool(v)
	return nil
}

// flexString reads a string, or a number/boolean as its text.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		*f = ""
		return nil
	}
	if len(s) > 0 && s[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*f = flexString(v)
		return nil
	}
	if len(s) > 0 && (s[0] == '{' || s[0] == '[') {
		return fmt.Errorf("object or array where a value was expected")
	}
	*f = flexString(s)
	return nil
}
