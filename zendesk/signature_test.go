package zendesk

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSignVectors(t *testing.T) {
	tests := []struct {
		name      string
		timestamp string
		body      string
		want      string
	}{
		{name: "HelloBody", timestamp: "2021-07-25T10:00:00Z", body: `{"say": "hello"}`, want: "gf3v0LzLRHPUnIdhbvwRDVEvzSb07/QN0GYjSNlkBT0="},
		{name: "EmptyBody", timestamp: "2024-04-17T17:18:10Z", body: "", want: "a9HeCVFs3oo3D8z5WT8ptnWDDf13aRXlGQiHonVDOqU="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sign(TestSigningSecret, tt.timestamp, []byte(tt.body)); got != tt.want {
				t.Errorf("Sign = %s, want %s", got, tt.want)
			}
			now, _ := time.Parse(time.RFC3339, tt.timestamp)
			if err := VerifySignature(TestSigningSecret, []byte(tt.body), tt.timestamp, tt.want, now.Add(time.Minute), 5*time.Minute); err != nil {
				t.Errorf("VerifySignature = %v, want nil", err)
			}
		})
	}
}

func TestVerifySignature(t *testing.T) {
	const ts = "2026-11-24T10:00:00Z"
	body := []byte(`{"ticket_id":"1001"}`)
	now := time.Date(2026, 11, 24, 10, 1, 0, 0, time.UTC)
	good := Sign("s3cret", ts, body)
	tests := []struct {
		name      string
		secret    string
		body      []byte
		timestamp string
		signature string
		now       time.Time
		want      error
	}{
		{name: "GoodIsAccepted", secret: "s3cret", body: body, timestamp: ts, signature: good, now: now},
		{name: "WrongSecretIsRejected", secret: "other", body: body, timestamp: ts, signature: good, now: now, want: ErrSignatureMismatch},
		{name: "ChangedBodyIsRejected", secret: "s3cret", body: []byte(`{"ticket_id":"1002"}`), timestamp: ts, signature: good, now: now, want: ErrSignatureMismatch},
		{name: "BodyPlusTimestampOrderIsRejected", secret: "s3cret", body: body, timestamp: ts,
			signature: Sign("s3cret", string(body), []byte(ts)), now: now, want: ErrSignatureMismatch},
		{name: "GarbageSignatureIsRejected", secret: "s3cret", body: body, timestamp: ts, signature: "not base64!", now: now, want: ErrSignatureMismatch},
		{name: "StaleTimestampIsRejected", secret: "s3cret", body: body, timestamp: ts, signature: good, now: now.Add(time.Hour), want: ErrTimestampSkew},
		{name: "FutureTimestampIsRejected", secret: "s3cret", body: body, timestamp: ts, signature: good, now: now.Add(-time.Hour), want: ErrTimestampSkew},
		{name: "MissingSignatureIsRejected", secret: "s3cret", body: body, timestamp: ts, now: now, want: ErrSignatureMissing},
		{name: "MissingTimestampIsRejected", secret: "s3cret", body: body, signature: good, now: now, want: ErrSignatureMissing},
		{name: "NonISOTimestampIsRejected", secret: "s3cret", body: body, timestamp: "1700000000",
			signature: Sign("s3cret", "1700000000", body), now: now, want: ErrTimestampInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifySignature(tt.secret, tt.body, tt.timestamp, tt.signature, tt.now, 5*time.Minute)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("VerifySignature = %v, want %v", err, tt.want)
			}
		})
	}
}

// FuzzVerifySignature: never panics, accepts its own signature, and never
// accepts a signature made for a different secret, timestamp or body.
// Zendesk signs timestamp+body without a separator, so two pairs with the
// same concatenation are the same message; HMAC also treats a short key and
// the same key padded with zero bytes alike. Those pairs are not "different".
func FuzzVerifySignature(f *testing.F) {
	f.Add(TestSigningSecret, "2021-07-25T10:00:00Z", []byte(`{"say": "hello"}`), "other", "2021-07-25T10:00:01Z", []byte(`{"say": "hello"}`), "gf3v0LzLRHPUnIdhbvwRDVEvzSb07/QN0GYjSNlkBT0=")
	f.Add("s", "2024-04-17T17:18:10Z", []byte{}, "s", "2024-04-17T17:18:10Z", []byte("x"), "")
	f.Fuzz(func(t *testing.T, secret, ts string, body []byte, secret2, ts2 string, body2 []byte, sig string) {
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		_ = VerifySignature(secret, body, ts, sig, now, 5*time.Minute) // must not panic
		_ = VerifySignature(secret, body, ts, sig, now, 0)
		if ts == "" {
			return
		}
		good := Sign(secret, ts, body)
		if err := VerifySignature(secret, body, ts, good, now, 0); err != nil {
			t.Fatalf("own signature rejected: %v", err)
		}
		if ts2 == "" {
			return
		}
		sameMessage := bytes.Equal(append([]byte(ts), body...), append([]byte(ts2), body2...))
		if sameMessage && hmacKeysEqual(secret, secret2) {
			return
		}
		if err := VerifySignature(secret2, body2, ts2, good, now, 0); err == nil {
			t.Fatalf("signature for (%q, %q, %q) accepted for (%q, %q, %q)", secret, ts, body, secret2, ts2, body2)
		}
	})
}

// hmacKeysEqual reports whether HMAC-SHA256 treats two keys alike (short
// keys are zero-padded to the block size).
func hmacKeysEqual(a, b string) bool {
	if len(a) > 64 || len(b) > 64 {
		return a == b
	}
	return strings.TrimRight(a, "\x00") == strings.TrimRight(b, "\x00")
}

// FuzzParseRetryAfter: never panics, never negative, never over the cap,
// and a plain number of seconds up to the cap is read exactly.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"7", "0", "-1", "1.5", "soon", "", "Tue, 24 Nov 2026 10:00:30 GMT", "99999999999999999999", "1e9", "+3"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := ParseRetryAfter(v, now)
		if d < 0 || d > MaxRetryAfter {
			t.Fatalf("ParseRetryAfter(%q) = %s, out of [0, %s]", v, d, MaxRetryAfter)
		}
		if !ok && d != 0 {
			t.Fatalf("ParseRetryAfter(%q) = %s with ok=false", v, d)
		}
	})
}
