package zendesktest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server is a fake Zendesk account served over HTTP. All methods are safe for
// concurrent use.
type Server struct {
	cfg Config
	tb  TB // nil for Start
	hs  *httptest.Server

	// deliveryClient is used for webhook and target deliveries.
	deliveryClient *http.Client

	mu sync.Mutex // guards everything below

	// account state
	tickets      map[int64]*ticket
	users        map[int64]*user
	usersByEmail map[string]*user
	usersByExt   map[string]*user
	apiUser      *user    // the user the API credentials belong to
	agent        *user    // the agent of AgentComment and SetStatus
	log          []*audit // every audit, in creation order
	logUnsorted  bool     // log is not in timestamp order (a clock set back)
	idem         map[string]*idemEntry
	nextTicket   int64
	nextUser     int64
	nextAudit    int64
	nextEvent    int64
	nextTarget   int64
	nextFailure  int64

	// credentials
	email, token string
	revoked      bool
	oauth        oauthState

	// rate limits
	account, updates, exports, userCreates bucket
	webhooksAPI                            bucket                   // the Webhooks API's own budget, apart from the account's
	perTicket                              map[[2]int64][]time.Time // (ticket, user) → recent updates

	// faults
	down      bool
	fails     []*failure
	latency   time.Duration
	loseP     float64
	loseNext  int
	dropHooks bool
	dupNext   int
	scripted  []scriptedInvocation // outcomes of the next invocations (ScriptInvocations)

	requests []RecordedRequest

	webhooks     map[string]*webhook
	webhookOrder []string
	targets      map[int64]*target
	targetOrder  []int64
	targetFails  []targetFailure

	wg sync.WaitGroup // asynchronous work, waited for by Close

	conns atomic.Int64 // TCP connections accepted (Connections)

	// batch jobs (update_many, job statuses): batch.go
	jobs     map[string]*batchJob
	jobOrder []string      // job ids, oldest first
	stop     chan struct{} // closed by Close: background jobs stop
	stopOnce sync.Once
}

// RecordedRequest is one request the fake received, as seen on the wire
// minus credentials.
type RecordedRequest struct {
	Method    string
	Path      string     // as sent, with a .json suffix if there was one
	Query     url.Values // parsed query string
	Status    int        // status answered (or that would have been, when Lost)
	Time      time.Time  // when it arrived (Config.Now)
	Header    http.Header
	Body      []byte
	Auth      string // "basic", "bearer" or "" (what was presented, not whether it was accepted)
	RequestID string // X-Request-Id answered
	Lost      bool   // the write was applied but the response was lost
}

// TB is the part of testing.TB the fake uses; *testing.T, *testing.B and
// *testing.F satisfy it. The package declares it rather than importing
// package testing, so that the deskrelay binary, which links the fake for
// `deskrelay demo`, does not link package testing.
type TB interface {
	Helper()
	Cleanup(func())
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// NewServer starts a fake Zendesk for a test and closes it at cleanup. A
// request to a path the fake does not know fails tb (Errorf naming the
// method and path) and is answered 404. Pass at most one Config.
func NewServer(tb TB, cfgs ...Config) *Server {
	tb.Helper()
	var cfg Config
	if len(cfgs) > 0 {
		cfg = cfgs[0]
	}
	if cfg.Logf == nil {
		cfg.Logf = tb.Logf
	}
	s, err := start(cfg, tb)
	if err != nil {
		tb.Fatalf("zendesktest: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Start starts a fake Zendesk outside of tests (demo, benchmarks, the
// fakezendesk command). Unknown paths are logged and answered 404. Close it
// when done.
func Start(cfg Config) (*Server, error) {
	return start(cfg, nil)
}

func start(cfg Config, tb TB) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:          cfg,
		tb:           tb,
		tickets:      map[int64]*ticket{},
		users:        map[int64]*user{},
		usersByEmail: map[string]*user{},
		usersByExt:   map[string]*user{},
		idem:         map[string]*idemEntry{},
		perTicket:    map[[2]int64][]time.Time{},
		nextTicket:   1000,
		nextUser:     360000000,
		nextAudit:    7000000000,
		nextEvent:    5000000000,
		nextTarget:   360000100,
		nextFailure:  1,
		email:        cfg.Email,
		token:        cfg.APIToken,
		webhooks:     map[string]*webhook{},
		targets:      map[int64]*target{},
		deliveryClient: &http.Client{
			Timeout: cfg.WebhookTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
	s.jobs, s.stop = map[string]*batchJob{}, make(chan struct{})
	s.oauth.init()
	now := s.now()
	s.apiUser = s.addUserLocked("Deskrelay Integration", cfg.Email, "", "admin", now)
	s.agent = s.addUserLocked("Agent Smith", "agent.smith@example.com", "", "agent", now)
	s.hs = httptest.NewUnstartedServer(s)
	s.hs.Config.ErrorLog = log.New(io.Discard, "", 0) // hijacked connections are expected
	s.hs.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.hs.Start()
	return s, nil
}

// URL returns the base URL of the fake account (no /api/v2), e.g.
// http://127.0.0.1:34567.
func (s *Server) URL() string { return s.hs.URL }

// base is the base URL of links in responses.
func (s *Server) base() string {
	if s.cfg.BaseURL != "" {
		return strings.TrimSuffix(s.cfg.BaseURL, "/")
	}
	return s.hs.URL
}

// Close stops the server and waits for asynchronous deliveries. Safe to call
// more than once.
func (s *Server) Close() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.hs.CloseClientConnections()
	s.hs.Close()
	s.wg.Wait()
}

// Connections returns how many TCP connections the fake has accepted so
// far: a client that reuses its connections opens few.
func (s *Server) Connections() int64 { return s.conns.Load() }

// Email returns the accepted API-token email.
func (s *Server) Email() string { s.mu.Lock(); defer s.mu.Unlock(); return s.email }

// APIToken returns the accepted API token.
func (s *Server) APIToken() string { s.mu.Lock(); defer s.mu.Unlock(); return s.token }

// AgentID returns the id of the agent user that AgentComment and SetStatus act as.
func (s *Server) AgentID() int64 { return s.agent.id }

// APIUserID returns the id of the user the API credentials belong to.
func (s *Server) APIUserID() int64 { return s.apiUser.id }

func (s *Server) now() time.Time { return s.cfg.Now().UTC() }

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf("zendesktest: "+format, args...)
	}
}

// ---- faults ----

// FailOption adjusts a failure scripted with FailNext.
type FailOption func(*failure)

type failure struct {
	status     int
	retryAfter time.Duration
	hasRetry   bool
	body       string
	hasBody    bool
	method     string
	prefix     string
}

// RetryAfter makes the failure carry "Retry-After: <seconds>" (rounded up).
func RetryAfter(d time.Duration) FailOption {
	return func(f *failure) { f.retryAfter, f.hasRetry = d, true }
}

// Body sets the failure's response body (default: Zendesk's usual body for
// the status: JSON for 4xx, an HTML page for 5xx).
func Body(body string) FailOption {
	return func(f *failure) { f.body, f.hasBody = body, true }
}

// Matching restricts the failure to requests with this method ("" = any) whose
// path starts with pathPrefix ("" = any); other requests pass by.
func Matching(method, pathPrefix string) FailOption {
	return func(f *failure) { f.method, f.prefix = method, pathPrefix }
}

// FailNext makes the next n requests (matching the options) answer status
// without being applied.
func (s *Server) FailNext(n int, status int, opts ...FailOption) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		f := &failure{status: status}
		for _, o := range opts {
			o(f)
		}
		s.fails = append(s.fails, f)
	}
}

// Down makes every request answer 503 with an HTML page and no Retry-After,
// like a Zendesk incident, until Up.
func (s *Server) Down() { s.mu.Lock(); s.down = true; s.mu.Unlock() }

// Up ends Down.
func (s *Server) Up() { s.mu.Lock(); s.down = false; s.mu.Unlock() }

// SetLatency delays every request by d before it is handled.
func (s *Server) SetLatency(d time.Duration) { s.mu.Lock(); s.latency = d; s.mu.Unlock() }

// LoseResponses makes each write (POST, PUT, PATCH, DELETE) lose its response
// with probability p after it has been applied: the connection is closed
// without an answer (after Config.LostResponseDelay).
func (s *Server) LoseResponses(p float64) { s.mu.Lock(); s.loseP = p; s.mu.Unlock() }

// LoseNext makes the next n writes lose their responses after being applied.
func (s *Server) LoseNext(n int) { s.mu.Lock(); s.loseNext += n; s.mu.Unlock() }

// RevokeCredentials makes every credential (API token, fixed and issued OAuth
// tokens) fail with 401 until SetCredentials.
func (s *Server) RevokeCredentials() { s.mu.Lock(); s.revoked = true; s.mu.Unlock() }

// SetCredentials sets the accepted API-token credentials and ends
// RevokeCredentials.
func (s *Server) SetCredentials(email, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.email, s.token, s.revoked = email, token, false
	s.apiUser.email = email
}

// ---- recorder ----

// Requests returns a copy of every request received so far, oldest first.
func (s *Server) Requests() []RecordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RecordedRequest(nil), s.requests...)
}

// CountRequests counts the requests with this method ("" = any) whose path
// starts with pathPrefix.
func (s *Server) CountRequests(method, pathPrefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if (method == "" || r.Method == method) && strings.HasPrefix(r.Path, pathPrefix) {
			n++
		}
	}
	return n
}

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() { s.mu.Lock(); s.requests = nil; s.mu.Unlock() }

// ---- HTTP ----

// resp is a buffered response, so the middleware can record, store for
// idempotency, or lose it.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func newResp() *resp { return &resp{header: http.Header{}} }

func (r *resp) json(status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	r.status = status
	r.header.Set("Content-Type", "application/json; charset=utf-8")
	r.body = b
}

func (r *resp) errorJSON(status int, name, description string, details any) {
	m := map[string]any{"error": name}
	if description != "" {
		m["description"] = description
	}
	if details != nil {
		m["details"] = details
	}
	r.json(status, m)
}

func (r *resp) notFound() { r.errorJSON(http.StatusNotFound, "RecordNotFound", "Not found", nil) }

func (r *resp) html(status int, page string) {
	r.status = status
	r.header.Set("Content-Type", "text/html; charset=utf-8")
	r.body = []byte(page)
}

// request is what a handler gets.
type request struct {
	method string
	path   string // without .json
	query  url.Values
	header http.Header
	body   []byte
	params []string // path wildcards in order
	user   *user    // authenticated user; nil on public endpoints
	bearer string   // the access token used, if any
}

type handler struct {
	public bool // no authentication (OAuth token endpoint)
	// webhooksAPI: the Webhooks API, whose budget is its own
	webhooksAPI bool
	list        bool // a list endpoint: sends ratelimit-* headers
	limit       func(s *Server) *bucket
	fn          func(s *Server, r *request, w *resp)
}

var writeMethods = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "DELETE": true}

// updateRateLimitedPage is what Update Ticket answers with a 429 (text/html,
// as recorded; the account's 429 is plain text).
const updateRateLimitedPage = "Rate limit for ticket updates exceeded, please wait before updating this ticket again"

// commentLimitDescription is the 422 detail of an update that would add a
// comment beyond the ticket's maximum (Zendesk: 5,000). Zendesk documents
// the 422, not its text; the client matches "comment" with "limit".
const commentLimitDescription = "Ticket has reached the limit of %d comments; no more comments can be added"

// forbiddenBody is Zendesk's 403 as recorded: an error object.
var forbiddenBody = map[string]any{"error": map[string]string{"title": "Forbidden",
	"message": "You do not have access to this page. Please contact the account owner of this help desk for further help."}}

const incidentPage = `<!DOCTYPE html>
<html><head><title>Zendesk is temporarily unavailable</title></head>
<body><h1>Service Unavailable</h1><p>We are experiencing a service disruption. Please check status.zendesk.com.</p></body></html>
`

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(hw http.ResponseWriter, hr *http.Request) {
	arrived := s.now()
	body, _ := io.ReadAll(io.LimitReader(hr.Body, 32<<20))
	rid := newRequestID()
	rec := RecordedRequest{
		Method: hr.Method, Path: hr.URL.Path, Query: hr.URL.Query(), Time: arrived,
		Header: hr.Header.Clone(), Body: body, RequestID: rid,
	}
	rec.Header.Del("Authorization")
	if strings.HasPrefix(hr.URL.Path, "/oauth/") {
		rec.Body = redactOAuth(body, hr.Header.Get("Content-Type"))
	}
	if a := hr.Header.Get("Authorization"); a != "" {
		rec.Auth = strings.ToLower(strings.SplitN(a, " ", 2)[0])
	}

	w := newResp()
	path := strings.TrimSuffix(hr.URL.Path, ".json")
	h, params, ok := route(hr.Method, path)
	if !ok {
		if s.tb != nil {
			s.tb.Errorf("zendesktest: unexpected request %s %s", hr.Method, hr.URL.Path)
		} else {
			s.logf("unknown endpoint %s %s", hr.Method, hr.URL.Path)
		}
		w.errorJSON(http.StatusNotFound, "InvalidEndpoint", "Not found", nil)
		s.finish(hw, hr, w, rec, rid, false)
		return
	}

	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-hr.Context().Done():
			t.Stop()
		}
	}

	s.mu.Lock()
	down := s.down
	var fail *failure
	if !down {
		for i, f := range s.fails {
			if (f.method == "" || f.method == hr.Method) && strings.HasPrefix(hr.URL.Path, f.prefix) {
				fail = f
				s.fails = append(s.fails[:i:i], s.fails[i+1:]...)
				break
			}
		}
	}
	s.mu.Unlock()

	applied := false
	switch {
	case down:
		w.html(http.StatusServiceUnavailable, incidentPage)
	case fail != nil:
		writeFailure(w, fail)
	default:
		r := &request{method: hr.Method, path: path, query: hr.URL.Query(), header: hr.Header, body: body, params: params}
		if !h.public {
			u, bearer, ok := s.authenticate(hr)
			if !ok {
				w.json(http.StatusUnauthorized, map[string]string{"error": "Couldn't authenticate you"})
				break
			}
			r.user, r.bearer = u, bearer
		}
		if !h.public && !s.takeRate(w, h) {
			break
		}
		h.fn(s, r, w)
		applied = true
	}
	s.finish(hw, hr, w, rec, rid, applied)
}

func writeFailure(w *resp, f *failure) {
	switch {
	case f.hasBody:
		w.status = f.status
		w.body = []byte(f.body)
		if json.Valid(w.body) && len(w.body) > 0 {
			w.header.Set("Content-Type", "application/json; charset=utf-8")
		} else {
			w.header.Set("Content-Type", "text/html; charset=utf-8")
		}
	case f.status >= 500:
		w.html(f.status, incidentPage)
	case f.status == http.StatusTooManyRequests:
		w.html(f.status, "You have exceeded the rate limit. Please retry later.")
		w.header.Set("Content-Type", "text/plain; charset=utf-8")
	case f.status == http.StatusUnauthorized:
		w.json(f.status, map[string]string{"error": "Couldn't authenticate you"})
	case f.status == http.StatusForbidden:
		w.json(f.status, forbiddenBody)
	case f.status == http.StatusNotFound:
		w.notFound()
	case f.status == http.StatusUnprocessableEntity:
		w.errorJSON(f.status, "RecordInvalid", "Record validation errors", map[string]any{})
	default:
		w.errorJSON(f.status, strings.ReplaceAll(http.StatusText(f.status), " ", ""), http.StatusText(f.status), nil)
	}
	if f.hasRetry {
		w.header.Set("Retry-After", strconv.Itoa(ceilSeconds(f.retryAfter)))
	}
}

// finish adds the common headers, records the request and writes (or loses)
// the response.
func (s *Server) finish(hw http.ResponseWriter, hr *http.Request, w *resp, rec RecordedRequest, rid string, applied bool) {
	now := s.now()
	s.mu.Lock()
	limit, remaining, _ := s.account.peek(s.cfg.RateLimit, s.cfg.Window, now)
	if isWebhooksAPI(hr.URL.Path) {
		limit, remaining, _ = s.webhooksAPI.peek(s.cfg.WebhooksAPILimit, s.cfg.Window, now)
	}
	lose := false
	if applied && writeMethods[hr.Method] {
		if s.loseNext > 0 {
			s.loseNext--
			lose = true
		} else if s.loseP > 0 && mrand.Float64() < s.loseP {
			lose = true
		}
	}
	rec.Status = w.status
	rec.Lost = lose
	s.requests = append(s.requests, rec)
	if len(s.requests) > s.cfg.RecordLimit {
		s.requests = append([]RecordedRequest(nil), s.requests[len(s.requests)-s.cfg.RecordLimit:]...)
	}
	s.mu.Unlock()

	h := hw.Header()
	for k, v := range w.header {
		h[k] = v
	}
	h.Set("X-Request-Id", rid)
	h.Set("X-Zendesk-Request-Id", rid)
	h.Set("X-Rate-Limit", strconv.Itoa(limit))
	h.Set("X-Rate-Limit-Remaining", strconv.Itoa(remaining))

	if lose {
		if d := s.cfg.LostResponseDelay; d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-hr.Context().Done():
				t.Stop()
			}
		}
		if hj, ok := hw.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // aborts the response without an answer
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	hw.WriteHeader(w.status)
	_, _ = hw.Write(w.body)
}

// ---- rate limits ----

func isWebhooksAPI(path string) bool {
	return path == "/api/v2/webhooks" || strings.HasPrefix(path, "/api/v2/webhooks/")
}

// bucket is a fixed-window counter.
type bucket struct {
	start time.Time
	used  int
}

func (b *bucket) roll(window time.Duration, now time.Time) {
	if b.start.IsZero() || now.Sub(b.start) >= window || now.Before(b.start) {
		b.start, b.used = now, 0
	}
}

// peek returns limit, remaining and the time until the window resets.
func (b *bucket) peek(limit int, window time.Duration, now time.Time) (int, int, time.Duration) {
	b.roll(window, now)
	rem := limit - b.used
	if rem < 0 {
		rem = 0
	}
	return limit, rem, b.start.Add(window).Sub(now)
}

func ceilSeconds(d time.Duration) int {
	n := int((d + time.Second - 1) / time.Second)
	if n < 1 {
		n = 1
	}
	return n
}

// takeRate consumes one request of the account budget and of the endpoint's
// own budget, or answers 429. Like Zendesk, list endpoints (and those with
// their own limit) also carry ratelimit-limit/-remaining/-reset with the
// account's figures, and an endpoint with its own limit carries
// Zendesk-RateLimit-<endpoint>: total=…; remaining=…; resets=….
func (s *Server) takeRate(w *resp, h handler) bool {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	type lim struct {
		b     *bucket
		limit int
		name  string
	}
	lims := []lim{{&s.account, s.cfg.RateLimit, ""}}
	if h.webhooksAPI {
		// The Webhooks API has its own budget, reported in X-Rate-Limit
		// (finish), and does not spend the account's.
		lims = []lim{{&s.webhooksAPI, s.cfg.WebhooksAPILimit, ""}}
	}
	if h.limit != nil {
		b := h.limit(s)
		switch b {
		case &s.updates:
			lims = append(lims, lim{b, s.cfg.UpdateTicketLimit, "tickets-update"})
		case &s.exports:
			lims = append(lims, lim{b, s.cfg.ExportLimit, "incremental-exports"})
		case &s.userCreates:
			lims = append(lims, lim{b, s.cfg.UserCreateLimit, "users-create-or-update"})
		}
	}
	for _, l := range lims {
		_, rem, reset := l.b.peek(l.limit, s.cfg.Window, now)
		if rem <= 0 {
			if l.b == &s.updates {
				w.html(http.StatusTooManyRequests, updateRateLimitedPage)
			} else {
				w.html(http.StatusTooManyRequests, "You have exceeded the rate limit. Please retry later.")
				w.header.Set("Content-Type", "text/plain; charset=utf-8")
			}
			w.header.Set("Retry-After", strconv.Itoa(ceilSeconds(reset)))
			if l.name != "" {
				w.header.Set("Zendesk-RateLimit-"+l.name, fmt.Sprintf("total=%d; remaining=0; resets=%d", l.limit, ceilSeconds(reset)))
			}
			return false
		}
	}
	for _, l := range lims {
		l.b.used++
		if l.name != "" {
			_, rem, reset := l.b.peek(l.limit, s.cfg.Window, now)
			w.header.Set("Zendesk-RateLimit-"+l.name, fmt.Sprintf("total=%d; remaining=%d; resets=%d", l.limit, rem, ceilSeconds(reset)))
		}
	}
	if (h.list || h.limit != nil) && !h.webhooksAPI {
		limit, rem, reset := s.account.peek(s.cfg.RateLimit, s.cfg.Window, now)
		w.header.Set("ratelimit-limit", strconv.Itoa(limit))
		w.header.Set("ratelimit-remaining", strconv.Itoa(rem))
		w.header.Set("ratelimit-reset", strconv.Itoa(ceilSeconds(reset)))
	}
	return true
}

// ---- auth ----

func (s *Server) authenticate(hr *http.Request) (*user, string, bool) {
	a := hr.Header.Get("Authorization")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.revoked || a == "" {
		return nil, "", false
	}
	scheme, cred, _ := strings.Cut(a, " ")
	switch strings.ToLower(scheme) {
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
		if err != nil {
			return nil, "", false
		}
		u, p, _ := strings.Cut(string(raw), ":")
		if s.email != "" && s.token != "" && u == s.email+"/token" && p == s.token {
			return s.apiUser, "", true
		}
	case "bearer":
		tok := strings.TrimSpace(cred)
		for _, t := range s.cfg.OAuthTokens {
			if t == tok {
				return s.apiUser, tok, true
			}
		}
		if exp, ok := s.oauth.access[tok]; ok && s.now().Before(exp) {
			return s.apiUser, tok, true
		}
	}
	return nil, "", false
}

// ---- helpers ----

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// newULID returns a 26-character ULID-like id, as Zendesk uses for webhooks
// and invocations: 10 characters of millisecond time, 16 random ones, so ids
// made later sort later.
func newULID(t time.Time) string {
	var out [26]byte
	ms := uint64(t.UnixMilli())
	for i := 9; i >= 0; i-- {
		out[i] = crockford[ms&31]
		ms >>= 5
	}
	var r [16]byte
	_, _ = rand.Read(r[:])
	for i := range 16 {
		out[10+i] = crockford[r[i]&31]
	}
	return string(out[:])
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

func rfc3339(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

// redactOAuth hides the secrets of a token request body in the recorder.
func redactOAuth(body []byte, contentType string) []byte {
	secret := map[string]bool{"client_secret": true, "refresh_token": true, "code": true, "password": true}
	if strings.HasPrefix(contentType, "application/json") {
		var m map[string]any
		if json.Unmarshal(body, &m) != nil {
			return nil
		}
		for k := range m {
			if secret[k] {
				m[k] = "[redacted]"
			}
		}
		b, _ := json.Marshal(m)
		return b
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return nil
	}
	for k := range v {
		if secret[k] {
			v.Set(k, "[redacted]")
		}
	}
	return []byte(v.Encode())
}
