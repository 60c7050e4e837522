package zendesk

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// UnmarshalJSON reads a child event leniently: ids as numbers or strings,
// "public" as a bool or "true"/"false", "event_type" or "type". A status
// change may name the field under its own key ("status": "pending") or as
// "field_name": "status" with "value"; both end up in Status, lower case.
// Raw keeps every field as sent (numbers as json.Number).
func (c *ChildEvent) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	*c = ChildEvent{Raw: raw}
	c.ID = anyInt(raw["id"])
	c.EventType = anyString(raw["event_type"])
	c.EventType = cmp.Or(c.EventType, anyString(raw["type"]))
	c.Body = anyString(raw["body"])
	c.HTMLBody = anyString(raw["html_body"])
	if p, ok := anyBool(raw["public"]); ok {
		c.Public = &p
	}
	c.AuthorID = anyInt(raw["author_id"])
	if v, ok := raw["via"]; ok && v != nil {
		vb, _ := json.Marshal(v)
		var via Via
		if json.Unmarshal(vb, &via) == nil {
			c.Via = &via
		}
	}
	if s := anyString(raw["status"]); s != "" {
		c.Status = strings.ToLower(s)
	} else if strings.EqualFold(anyString(raw["field_name"]), "status") {
		c.Status = strings.ToLower(anyString(raw["value"]))
	}
	c.PreviousValue = raw["previous_value"]
	if m, ok := raw["metadata"]; ok && m != nil {
		mb, _ := json.Marshal(m)
		var md Metadata
		if json.Unmarshal(mb, &md) == nil {
			c.Metadata = &md
		}
	}
	return nil
}

func anyString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return ""
}

func anyInt(v any) int64 {
	switch x := v.(type) {
	case json.Number:
		n, _ := strconv.ParseInt(x.String(), 10, 64)
		return n
	case string:
		n, _ := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return n
	case float64:
		return int64(x)
	}
	return 0
}

func anyBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		b, err := strconv.ParseBool(x)
		return b, err == nil
	}
	return false, false
}

// UnmarshalJSON reads an attempt's request leniently: headers as a list of
// {"key","value"} or as an object, the payload as a string or as JSON
// (kept as its raw text).
func (r *AttemptRequest) UnmarshalJSON(b []byte) error {
	var raw struct {
		Headers json.RawMessage `json:"headers"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*r = AttemptRequest{}
	if len(raw.Headers) > 0 && string(raw.Headers) != "null" {
		if err := json.Unmarshal(raw.Headers, &r.Headers); err != nil {
			var obj map[string]any
			if json.Unmarshal(raw.Headers, &obj) == nil {
				for k, v := range obj {
					r.Headers = append(r.Headers, Header{Key: k, Value: fmt.Sprint(v)})
				}
			}
		}
	}
	if len(raw.Payload) > 0 && string(raw.Payload) != "null" {
		var s string
		if json.Unmarshal(raw.Payload, &s) == nil {
			r.Payload = s
		} else {
			r.Payload = string(raw.Payload)
		}
	}
	return nil
}

// EachTicketEventsPage reads the incremental ticket events export from start
// to its end, calling fn with each page in order. It moves on with
// start_time = end_time (or next_page's start_time) until end_of_stream.
// Events repeated at a page boundary (the time-based export repeats those at
// end_time) are dropped from later pages, so fn sees each event id once.
// fn sees every page, even one left empty by that; its EndTime is the
// checkpoint to keep. An error from fn stops the walk and is returned.
func (c *Client) EachTicketEventsPage(ctx context.Context, start time.Time, fn func(*TicketEventsPage) error) error {
	seen := map[int64]int64{} // event id -> timestamp, for events that may repeat
	cur := start.Unix()
	for {
		page, err := c.TicketEvents(ctx, time.Unix(cur, 0))
		if err != nil {
			return err
		}
		kept := page.Events[:0]
		for _, ev := range page.Events {
			if _, dup := seen[ev.ID]; dup {
				continue
			}
			kept = append(kept, ev)
		}
		page.Events = kept
		next := page.EndTime
		if next == 0 && page.NextPage != "" {
			next = startTimeOf(page.NextPage)
		}
		for _, ev := range page.Events {
			seen[ev.ID] = ev.Timestamp
		}
		for id, ts := range seen {
			if ts < next {
				delete(seen, id) // cannot come again: before the next start
			}
		}
		if err := fn(page); err != nil {
			return err
		}
		if page.EndOfStream {
			return nil
		}
		if next <= cur {
			return &Error{Op: "ticket events", Kind: KindTemporary,
				Message: fmt.Sprintf("export does not advance past start_time %d", cur)}
		}
		cur = next
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// startTimeOf returns the start_time query parameter of a next_page URL.
func startTimeOf(next string) int64 {
	_, q, ok := strings.Cut(next, "?")
	if !ok {
		return 0
	}
	for kv := range strings.SplitSeq(q, "&") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == "start_time" {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// UnmarshalJSON reads a via object, or the plain string the incremental
// ticket events export sends instead ("via": "Web form"), which becomes
// Channel.
func (v *Via) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*v = Via{Channel: s}
		return nil
	}
	var obj struct {
		Channel json.RawMessage `json:"channel"`
		Source  json.RawMessage `json:"source,omitempty"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return err
	}
	*v = Via{Source: obj.Source}
	var ch any
	_ = json.Unmarshal(obj.Channel, &ch)
	switch x := ch.(type) {
	case string:
		v.Channel = x
	case float64: // some endpoints give the numeric channel id
		v.Channel = strconv.FormatFloat(x, 'f', -1, 64)
	}
	return nil
}
