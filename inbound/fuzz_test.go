package inbound_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/zendesk"
)

// FuzzVerifySignature: a signature is accepted only when it is exactly
// Zendesk's HMAC of timestamp+body, and never for another body.
func FuzzVerifySignature(f *testing.F) {
	f.Add(zendesk.TestSigningSecret, []byte(`{"say": "hello"}`), "2021-07-25T10:00:00Z", "gf3v0LzLRHPUnIdhbvwRDVEvzSb07/QN0GYjSNlkBT0=")
	f.Add(zendesk.TestSigningSecret, []byte{}, "2024-04-17T17:18:10Z", "a9HeCVFs3oo3D8z5WT8ptnWDDf13aRXlGQiHonVDOqU=")
	f.Add("s", []byte("x"), "", "")
	f.Fuzz(func(t *testing.T, secret string, body []byte, ts, sig string) {
		err := zendesk.VerifySignature(secret, body, ts, sig, time.Now(), 0)
		want := zendesk.Sign(secret, ts, body)
		if (err == nil) != (sig == want && ts != "" && sig != "") {
			t.Fatalf("VerifySignature = %v for sig %q, want accepted only for %q", err, sig, want)
		}
		if err == nil {
			other := append(bytes.Clone(body), 'x')
			if zendesk.VerifySignature(secret, other, ts, sig, time.Now(), 0) == nil {
				t.Fatal("signature accepted for another body")
			}
			if zendesk.VerifySignature(secret+"x", body, ts, sig, time.Now(), 0) == nil {
				t.Fatal("signature accepted with another secret")
			}
		}
	})
}
