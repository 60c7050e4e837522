package inbound_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/deskrelay/deskrelay/inbound"
	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/internal/tickets"
	"github.com/deskrelay/deskrelay/zendesk"
)

const (
	webhookSecret = "zendesk-signing-secret"
	sinkSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	// the default account's legacy target login
	targetUser     = "zendesk"
	targetPassword = "target-password"
)

// sink is a test sink that verifies every delivery with the Standard
// Webhooks library and answers what respond says.
type fakeSink struct {
	t   testing.TB
	srv *httptest.Server
	wh  *standardwebhooks.Webhook

	mu       sync.Mutex
	got      []events.Event // verified 2xx deliveries, in arrival order
	attempts map[string]int
	respond  func(ev events.Event, attempt int) (status int, retryAfter string)
	changed  chan struct{}
}

func newSink(t testing.TB) *fakeSink {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(sinkSecret)
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeSink{t: t, wh: wh, attempts: map[string]int{}, changed: make(chan struct{}, 1)}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *fakeSink) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := s.wh.Verify(body, r.Header); err != nil {
		s.t.Errorf("sink: delivery does not verify: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var ev events.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		s.t.Errorf("sink: body: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if r.Header.Get("webhook-id") != ev.ID {
		s.t.Errorf("sink: webhook-id %q, body id %q", r.Header.Get("webhook-id"), ev.ID)
	}
	s.mu.Lock()
	s.attempts[ev.ID]++
	status, ra := http.StatusOK, ""
	if s.respond != nil {
		status, ra = s.respond(ev, s.attempts[ev.ID])
	}
	if status/100 == 2 {
		s.got = append(s.got, ev)
	}
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
	if ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	if status/100 == 3 {
		w.Header().Set("Location", "/moved") // a client that follows would GET it without the event
	}
	w.WriteHeader(status)
}

func (s *fakeSink) setRespond(f func(ev events.Event, attempt int) (int, string)) {
	s.mu.Lock()
	s.respond = f
	s.mu.Unlock()
}

func (s *fakeSink) events() []events.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]events.Event(nil), s.got...)
}

func (s *fakeSink) ids() []string {
	var ids []string
	for _, ev := range s.events() {
		ids = append(ids, ev.ID)
	}
	return ids
}

func (s *fakeSink) attemptsOf(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[id]
}

type harness struct {
	t       testing.TB
	rdb     redis.UniversalClient
	opt     asynq.RedisConnOpt
	tickets *tickets.Tickets
	sink    *fakeSink
	recv    *inbound.Receiver
	api     *httptest.Server
	spool   string
	cfg     inbound.Config
	deps    inbound.Deps
	accts   []inbound.Account // the accounts start gives the Receiver; the first is the default
	reg     *prometheus.Registry
	stopRun context.CancelFunc
	runDone chan struct{}
}

type harnessOptions struct {
	server    *redistest.Server // a private redis-server (restarts); default redistest.New
	noWorkers bool
	zendesk   *zendesk.Client
	limiter   inbound.RateLimiter
	secrets   inbound.SecretReader
	cfg       func(*inbound.Config)
	acct      func(*inbound.Account) // changes the default account
	accounts  []inbound.Account      // more accounts
}

func newHarness(t testing.TB, o harnessOptions) *harness {
	t.Helper()
	h := &harness{t: t, sink: newSink(t), spool: t.TempDir()}
	if o.server != nil {
		c := redis.NewClient(&redis.Options{Addr: o.server.Addr, MaxRetries: 1, DialTimeout: 200 * time.Millisecond})
		t.Cleanup(func() { _ = c.Close() })
		h.rdb, h.opt = c, o.server.AsynqOpt()
	} else {
		db := redistest.New(t)
		h.rdb, h.opt = db.Client, db.AsynqOpt()
	}
	h.tickets = tickets.New(h.rdb)
	h.cfg = inbound.Config{
		SinkURL:        h.sink.srv.URL + "/events",
		SinkSecret:     sinkSecret,
		SpoolDir:       h.spool,
		SinkTimeout:    2 * time.Second,
		SlowEnqueue:    150 * time.Millisecond, // -race on a busy machine
		EnqueueTimeout: time.Second,
		TaskTimeout:    10 * time.Second,
		OrderSettle:    150 * time.Millisecond,
		OrderPoll:      50 * time.Millisecond,
	}
	if o.cfg != nil {
		o.cfg(&h.cfg)
	}
	h.reg = prometheus.NewRegistry()
	h.deps = inbound.Deps{Redis: h.rdb, Tickets: h.tickets, Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel), Metrics: h.reg}
	def := inbound.Account{Name: keys.DefaultAccount, WebhookSecret: webhookSecret, TargetUser: targetUser, TargetPassword: targetPassword,
		Zendesk: o.zendesk, Limiter: o.limiter, Secrets: o.secrets}
	if o.acct != nil {
		o.acct(&def)
	}
	h.accts = append([]inbound.Account{def}, o.accounts...)
	h.start()
	if !o.noWorkers {
		mux := asynq.NewServeMux()
		h.recv.Register(mux)
		srv := queues.NewServer(h.opt, queues.ServerConfig{
			Concurrency:     6,
			Policy:          queues.Policy{BaseDelay: 50 * time.Millisecond, MaxDelay: 300 * time.Millisecond},
			PollInterval:    50 * time.Millisecond,
			ShutdownTimeout: 2 * time.Second,
		}, zerolog.Nop())
		if err := srv.Start(mux); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
	}
	return h
}

// start builds the Receiver (again: a restart) and runs its spool mover.
func (h *harness) start() {
	h.t.Helper()
	if h.stopRun != nil {
		h.stopRun()
		<-h.runDone
		h.api.Close()
		_ = h.recv.Close()
	}
	r, err := inbound.New(h.cfg, h.deps)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := r.SetAccounts(h.accts); err != nil {
		h.t.Fatal(err)
	}
	h.recv = r
	mux := http.NewServeMux()
	for _, p := range []string{"", "/{account}"} { // as main mounts them
		mux.Handle("POST /v1/zendesk/webhook"+p, r.Webhook())
		mux.Handle("POST /v1/zendesk/target"+p, r.Target())
	}
	h.api = httptest.NewServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	h.stopRun, h.runDone = cancel, done
	h.t.Cleanup(func() {
		cancel()
		<-done
		h.api.Close()
		_ = r.Close()
	})
}

func (h *harness) link(conv string, ticket int64) {
	h.t.Helper()
	if err := h.tickets.Link(context.Background(), conv, ticket); err != nil {
		h.t.Fatal(err)
	}
}

// status is the default account's receiver status.
func (h *harness) status() inbound.ReceiverStatus {
	h.t.Helper()
	return h.recv.ReceiverStatus(keys.DefaultAccount)
}

type response struct {
	Status     int
	Body       string
	RetryAfter string
}

// post sends body to the webhook endpoint, signed with secret at ts.
func (h *harness) post(body []byte, secret string, ts time.Time, invocation string) response {
	h.t.Helper()
	return h.postTo("/v1/zendesk/webhook", body, secret, ts, invocation)
}

// postTo sends body to path, signed with secret at ts.
func (h *harness) postTo(path string, body []byte, secret string, ts time.Time, invocation string) response {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.api.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	stamp := ts.UTC().Format(time.RFC3339)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(zendesk.HeaderSignatureTimestamp, stamp)
	req.Header.Set(zendesk.HeaderSignature, zendesk.Sign(secret, stamp, body))
	if invocation != "" {
		req.Header.Set(inbound.HeaderInvocationID, invocation)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, string(b), resp.Header.Get("Retry-After")}
}

// send posts a correctly signed webhook and requires a 200.
func (h *harness) send(body []byte, invocation string) response {
	h.t.Helper()
	r := h.post(body, webhookSecret, time.Now(), invocation)
	if r.Status != http.StatusOK {
		h.t.Fatalf("webhook answered %d %s", r.Status, r.Body)
	}
	return r
}

// idle waits until the inbound queue has no pending, active, scheduled or
// retrying task and the spool is empty.
func (h *harness) idle(d time.Duration) {
	h.t.Helper()
	insp := asynq.NewInspectorFromRedisClient(h.rdb)
	testutil.WaitFor(h.t, d, func() bool {
		if h.recv.SpoolPending() > 0 {
			return false
		}
		qs, err := insp.Queues()
		if err != nil {
			return false
		}
		if !slices.Contains(qs, queues.Inbound) {
			return true // nothing was ever enqueued
		}
		q, err := insp.GetQueueInfo(queues.Inbound)
		if err != nil {
			return false
		}
		return q.Pending+q.Active+q.Scheduled+q.Retry == 0
	}, "the inbound queue to drain")
}

func commentBody(ticket, comment int64, conv string, staff, public bool, at time.Time) []byte {
	return fmt.Appendf(nil, `{"account_id":123456,"id":"ev-%d","subject":"zen:ticket:%d","time":%q,"type":"zen:event-type:ticket.comment_added",`+
		`"zendesk_event_version":"2022-11-06","detail":{"id":"%d","external_id":%q,"status":"OPEN","requester_id":"77","updated_at":%q},`+
		`"event":{"comment":{"id":%d,"body":"reply %d","is_public":%v,"author":{"id":"9","is_staff":%v,"name":"Agent Smith"}}}}`,
		comment, ticket, at.UTC().Format(time.RFC3339Nano), ticket, conv, at.UTC().Format(time.RFC3339), comment, comment, public, staff)
}

func statusBody(ticket int64, status string, at time.Time) []byte {
	return fmt.Appendf(nil, `{"account_id":123456,"id":"st-%d","subject":"zen:ticket:%d","time":%q,"type":"zen:event-type:ticket.status_changed",`+
		`"detail":{"id":"%d","status":%q,"updated_at":%q},"event":{"current":%q,"previous":"OPEN"}}`,
		at.Unix(), ticket, at.UTC().Format(time.RFC3339), ticket, status, at.UTC().Format(time.RFC3339), status)
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}

// metric returns the value of the counter or gauge name with the given
// label value (or the first series when label is empty); the first match
// when several series carry the value.
func (h *harness) metric(name, label string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				match = match || l.GetValue() == label
			}
			if !match {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// queueState describes the inbound queue and the order sets, for failures.
func (h *harness) queueState() string {
	insp := asynq.NewInspectorFromRedisClient(h.rdb)
	var b strings.Builder
	for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){insp.ListPendingTasks, insp.ListActiveTasks, insp.ListScheduledTasks, insp.ListRetryTasks, insp.ListArchivedTasks} {
		tasks, _ := list(queues.Inbound)
		for _, ti := range tasks {
			fmt.Fprintf(&b, "\n  %s %s %s retried=%d err=%q", ti.State, ti.Type, ti.ID, ti.Retried, ti.LastErr)
		}
	}
	keys, _ := h.rdb.Keys(context.Background(), keys.Default.Prefix()+"inbound:order:*").Result()
	for _, k := range keys {
		m, _ := h.rdb.ZRangeWithScores(context.Background(), k, 0, -1).Result()
		fmt.Fprintf(&b, "\n  %s %v", k, m)
	}
	return b.String()
}
