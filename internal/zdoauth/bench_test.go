package zdoauth_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/zdoauth"
)

// BenchmarkToken measures the hot path every Zendesk request takes: one
// Redis read of the shared token (no refresh).
func BenchmarkToken(b *testing.B) {
	c := newClock()
	ts := newTokenServer(b, c.Now)
	s, err := zdoauth.New(zdoauth.Config{BaseURL: ts.URL(), ClientID: ts.clientID, ClientSecret: ts.clientSecret,
		RefreshToken: ts.issue(), Now: c.Now, Metrics: prometheus.NewRegistry()}, redistest.New(b).Client, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Token(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Token(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if n := ts.count(); n != 1 {
		b.Fatalf("token requests = %d, want 1", n)
	}
}
