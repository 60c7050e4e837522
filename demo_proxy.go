package main

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
)

// flakyProxy stands between Zendesk and deskrelay, like a load balancer that
// can break.
type flakyProxy struct {
	*httptest.Server
	broken atomic.Bool
}

func newFlakyProxy(backend string) *flakyProxy {
	u, _ := url.Parse(backend)
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &flakyProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.broken.Load() {
			http.Error(w, "503 Service Unavailable (the demo's broken load balancer)", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	return p
}

func (p *flakyProxy) URL() string      { return p.Server.URL }
func (p *flakyProxy) setBroken(b bool) { p.broken.Store(b) }
