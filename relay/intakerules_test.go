package relay_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/deskrelay/deskrelay/internal/keys"
)

// The intake rules: ids are 1–255 bytes of visible ASCII without braces
// (they travel in HTTP headers and Redis keys); sequence is an integer from
// 1 to 2^53−1 kept exactly. Anything else is 422 naming the field, and
// error answers never show Go's type names.
func TestIntakeRules(t *testing.T) {
	e := newEnv(t, envOptions{noWorkers: true})
	srv := intakeServer(t, e.relay)
	url := srv.URL + "/v1/messages"
	raw := func(field, jsonValue string) string {
		var m map[string]json.RawMessage
		_ = json.Unmarshal([]byte(goodBody), &m)
		m[field] = json.RawMessage(jsonValue)
		b, _ := json.Marshal(m)
		return string(b)
	}
	str := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	tests := []struct {
		name      string
		body      string
		wantInMsg string
	}{
		{"IDWithSOHIs422", raw("id", str("m\u0001x")), "id:"},
		{"IDWithDELIs422", raw("id", str("m\u007fx")), "id:"},
		{"IDWithNonASCIIIs422", raw("id", str("mé")), "id:"},
		{"IDWithBraceIs422", raw("id", str("m{1}")), "id:"},
		{"ID256BytesIs422", raw("id", str(strings.Repeat("a", 256))), "id:"},
		{"IDNotStringIs422", raw("id", "42"), "id:"},
		{"ConversationWithControlIs422", raw("conversation_id", str("c\u0001")), "conversation_id:"},
		{"ConversationWithSpaceIs422", raw("conversation_id", str("c 1")), "conversation_id:"},
		{"SequenceMaxInt64Is422", raw("sequence", "9223372036854775807"), "sequence:"},
		{"SequenceTwoTo53Is422", raw("sequence", "9007199254740992"), "sequence:"},
		{"SequenceTenTo17Is422", raw("sequence", "100000000000000000"), "sequence:"},
		{"SequenceExponentIs422", raw("sequence", "1e2"), "sequence:"},
		{"SequenceFloatIs422", raw("sequence", "2.0"), "sequence:"},
		{"SequenceNegativeIs422", raw("sequence", "-3"), "sequence:"},
		{"SequenceStringIs422", raw("sequence", `"3"`), "sequence:"},
		{"TagsNotListIs422", raw("tags", `"ios"`), "tags:"},
		{"AuthorNotObjectIs422", raw("author", `"ann"`), "author:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, http.MethodPost, url, "application/json", ingestToken, tt.body)
			code, message := errorCode(a)
			if a.status != 422 || code != "invalid_field" || !strings.HasPrefix(message, tt.wantInMsg) {
				t.Fatalf("answer = %d %s, want 422 invalid_field naming %q", a.status, a.raw, tt.wantInMsg)
			}
			if strings.Contains(a.raw, "Go value") || strings.Contains(a.raw, "relay.") || strings.Contains(a.raw, "int64") {
				t.Errorf("error answer shows Go types: %s", a.raw)
			}
			nothingKept(t, e.rdb, e.opt)
		})
	}
	t.Run("MalformedJSONNamesNoGoType", func(t *testing.T) {
		a := do(t, http.MethodPost, url, "application/json", ingestToken, `{"id": "m1", "conversation_id": }`)
		if a.status != 400 || strings.Contains(a.raw, "relay.") || strings.Contains(a.raw, "Go value") {
			t.Fatalf("answer = %d %s, want 400 in plain words", a.status, a.raw)
		}
	})
	t.Run("Visible255ByteIDIsAccepted", func(t *testing.T) {
		id := "~!" + strings.Repeat("a", 253)
		a := do(t, http.MethodPost, url, "application/json", ingestToken, raw("id", str(id)))
		if a.status != 202 {
			t.Fatalf("answer = %d %s, want 202", a.status, a.raw)
		}
	})
}

// A sequence up to 2^53−1 is kept exactly, and a message without sequence
// in the same conversation still takes the next position.
func TestIntakeSequenceExact(t *testing.T) {
	e := newEnv(t, envOptions{noWorkers: true})
	ctx := context.Background()
	const big = int64(1)<<53 - 1
	m := msg("exact", 1)
	m.Sequence = seq(big)
	mustEnqueue(t, e.relay, m)
	next := msg("exact", 2)
	next.Sequence = nil
	st, created, err := e.relay.Enqueue(ctx, next)
	if err != nil || !created {
		t.Fatalf("sequence-less message after 2^53-1: %+v created=%v err=%v; want accepted", st, created, err)
	}
	pos, err := e.rdb.ZScore(ctx, keys.Default.ConversationPending("exact"), next.ID).Result()
	if err != nil || int64(pos) != big+1 {
		t.Errorf("position of the next message = %v (%v), want %d", int64(pos), err, big+1)
	}
	small := msg("exact", 3)
	small.Sequence = seq(3)
	mustEnqueue(t, e.relay, small)
	head, err := e.rdb.ZRange(ctx, keys.Default.ConversationPending("exact"), 0, 0).Result()
	if err != nil || len(head) != 1 || head[0] != small.ID {
		t.Errorf("head of the conversation = %v (%v), want %s (sequence 3 before 2^53-1)", head, err, small.ID)
	}
	if got, err := e.rdb.HGet(ctx, keys.Default.Message(m.ID), "pos").Result(); err != nil || got != "9007199254740991" {
		t.Errorf("stored position = %q (%v), want 9007199254740991", got, err)
	}
}

// The previous release could store a conversation's highest position as a
// float ("9.2233720368548e+18", after a sequence of 2^63−1); a message
// without sequence in that conversation is still accepted, after it.
func TestIntakeHealsFloatPositions(t *testing.T) {
	e := newEnv(t, envOptions{noWorkers: true})
	ctx := context.Background()
	if err := e.rdb.HSet(ctx, keys.Default.ConversationOrder("floaty"), "max", "9.2233720368548e+18").Err(); err != nil {
		t.Fatal(err)
	}
	m := msg("floaty", 1)
	m.Sequence = nil
	if _, created, err := e.relay.Enqueue(ctx, m); err != nil || !created {
		t.Fatalf("Enqueue after a float position: created=%v err=%v; want accepted", created, err)
	}
	if got, _ := e.rdb.HGet(ctx, keys.Default.Message(m.ID), "pos").Result(); got != "9007199254740991" {
		t.Errorf("position = %q, want 9007199254740991 (the largest exact one)", got)
	}
}
