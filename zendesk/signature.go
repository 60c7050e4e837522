package zendesk

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/deskrelay/deskrelay/internal/textx"
)

// Headers Zendesk signs webhook requests with.
// https://developer.zendesk.com/documentation/webhooks/verifying/
const (
	HeaderSignature          = "X-Zendesk-Webhook-Signature"
	HeaderSignatureTimestamp = "X-Zendesk-Webhook-Signature-Timestamp"
)

// TestSigningSecret is the secret Zendesk signs test deliveries from the
// webhook builder with.
const TestSigningSecret = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="

// Errors from VerifySignature.
var (
	ErrSignatureMissing  = errors.New("webhook signature or timestamp header missing")
	ErrSignatureMismatch = errors.New("webhook signature does not match")
	ErrTimestampInvalid  = errors.New("webhook signature timestamp is not ISO 8601")
	ErrTimestampSkew     = errors.New("webhook signature timestamp too far from now")
)

// Sign returns Zendesk's webhook signature: base64(HMAC-SHA256(secret, timestamp+body)).
// The secret string's bytes are the key; it is not base64-decoded.
func Sign(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a webhook request's signature in constant time and
// that its timestamp is within maxSkew of now (maxSkew <= 0 skips the check).
func VerifySignature(secret string, body []byte, timestamp, signature string, now time.Time, maxSkew time.Duration) error {
	if timestamp == "" || signature == "" {
		return ErrSignatureMissing
	}
	want := Sign(secret, timestamp, body)
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return ErrSignatureMismatch
	}
	if maxSkew > 0 {
		ts, err := time.Parse(time.RFC3339, timestamp)
		if err != nil {
			return fmt.Errorf("%w: %q", ErrTimestampInvalid, textx.Truncate(timestamp, 40))
		}
		if d := now.Sub(ts); d > maxSkew || d < -maxSkew {
			return fmt.Errorf("%w: %s off", ErrTimestampSkew, d.Round(time.Second))
		}
	}
	return nil
}
