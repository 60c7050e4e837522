package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/sink"
	"github.com/deskrelay/deskrelay/internal/tickets"
	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// clock is real time shifted by an offset the test moves forward, shared by
// the fake Zendesk and the reconciler: events can be spread over hours and
// made old enough for the export without sleeping.
type clock struct{ offset atomic.Int64 }

func newClock(start time.Duration) *clock {
	c := &clock{}
	c.offset.Store(int64(start))
	return c
}

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// env is one test's world: a fake Zendesk, a Redis database, the ticket
// record and the Publisher that the webhook path uses too.
type env struct {
	clock   *clock
	zd      *zendesktest.Server
	zc      *zendesk.Client
	db      *redistest.DB
	rdb     redis.UniversalClient
	tickets *tickets.Tickets
	pub     *sink.Publisher
	insp    *asynq.Inspector
	nconv   int
	// naccounts counts the accounts added with account (accounts_test.go).
	naccounts int
}

func newEnv(tb testing.TB, zcfg zendesktest.Config) *env {
	tb.Helper()
	e := &env{clock: newClock(-3 * time.Hour)}
	if zcfg.Now == nil {
		zcfg.Now = e.clock.Now
	}
	if zcfg.ExportLimit == 0 {
		zcfg.ExportLimit = 100000
	}
	if zcfg.RateLimit == 0 {
		zcfg.RateLimit = 1000000
	}
	zcfg.Logf = func(string, ...any) {}
	e.zd = zendesktest.NewServer(tb, zcfg)
	zc, err := zendesk.New(zendesk.Config{BaseURL: e.zd.URL(), Email: e.zd.Email(), APIToken: e.zd.APIToken()})
	if err != nil {
		tb.Fatal(err)
	}
	e.zc = zc
	e.db = redistest.New(tb)
	e.rdb = e.db.Client
	e.tickets = tickets.New(e.rdb)
	e.pub = sink.NewPublisher(e.rdb, e.tickets, sink.PublisherConfig{Now: e.clock.Now})
	e.insp = asynq.NewInspectorFromRedisClient(e.rdb)
	return e
}

// reconciler returns a Reconciler on env with test defaults: the env's
// clock, no export limit unless cfg sets one.
func (e *env) reconciler(tb testing.TB, cfg Config, mod ...func(*Deps)) *Reconciler {
	tb.Helper()
	if cfg.Now == nil {
		cfg.Now = e.clock.Now
	}
	if cfg.ExportLimit == 0 {
		cfg.ExportLimit = -1
	}
	if cfg.RetryBaseDelay == 0 {
		cfg.RetryBaseDelay = 10 * time.Millisecond
	}
	d := Deps{Redis: e.rdb, Zendesk: e.zc, Publisher: e.pub, Log: testLogger(tb)}
	for _, m := range mod {
		m(&d)
	}
	r, err := New(cfg, d)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = r.Close() })
	return r
}

func testLogger(tb testing.TB) zerolog.Logger {
	if testing.Verbose() {
		return zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.DebugLevel)
	}
	return zerolog.Nop()
}

// managedTicket creates a ticket and records it as deskrelay's.
func (e *env) managedTicket(tb testing.TB) int64 {
	tb.Helper()
	e.nconv++
	conv := "conv_" + strconv.Itoa(e.nconv)
	id := e.zd.CreateTicket(zendesk.NewTicket{Subject: "help", Comment: zendesk.CommentInput{Body: "first", Public: true},
		Requester: &zendesk.Requester{Name: "Ann", Email: "ann" + strconv.Itoa(e.nconv) + "@example.com"}, ExternalID: conv})
	if err := e.tickets.Link(context.Background(), conv, id); err != nil {
		tb.Fatal(err)
	}
	// relay remembers the ticket's first comment as its own
	if err := e.tickets.RememberOwnComment(context.Background(), e.zd.Comments(id)[0].ID); err != nil {
		tb.Fatal(err)
	}
	return id
}

func (e *env) unmanagedTicket(tb testing.TB) int64 {
	tb.Helper()
	e.nconv++
	return e.zd.CreateTicket(zendesk.NewTicket{Subject: "other", Comment: zendesk.CommentInput{Body: "not ours", Public: true},
		Requester: &zendesk.Requester{Name: "Bob", Email: "bob" + strconv.Itoa(e.nconv) + "@example.com"}})
}

// ownComment adds a comment through the API as deskrelay does, and records it.
func (e *env) ownComment(tb testing.TB, ticketID int64) int64 {
	tb.Helper()
	w, err := e.zc.AddComment(context.Background(), ticketID, zendesk.CommentInput{Body: "from the platform", Public: true}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := e.tickets.RememberOwnComment(context.Background(), w.CommentID()); err != nil {
		tb.Fatal(err)
	}
	return w.CommentID()
}

// statusEventIDs returns the ids of every status change of a ticket, from
// the fake's audits.
func (e *env) statusEventIDs(ticketID int64) []string {
	var ids []string
	for _, a := range e.zd.Audits(ticketID) {
		for _, ev := range a.Events {
			if ev.Type == "Change" && ev.FieldName == "status" {
				s, _ := ev.Value.(string)
				ids = append(ids, events.StatusEventID(ticketID, s, a.CreatedAt))
			}
		}
	}
	return ids
}

// sink returns the events waiting on the inbound queue, by id.
func (e *env) sink(tb testing.TB) map[string]events.Event {
	tb.Helper()
	out := map[string]events.Event{}
	for page := 1; ; page++ {
		tasks, err := e.insp.ListPendingTasks(queues.Inbound, asynq.PageSize(1000), asynq.Page(page))
		if errors.Is(err, asynq.ErrQueueNotFound) {
			return out
		}
		if err != nil {
			tb.Fatal(err)
		}
		for _, ti := range tasks {
			var p sink.DeliverPayload
			if err := json.Unmarshal(ti.Payload, &p); err != nil {
				tb.Fatal(err)
			}
			if _, dup := out[p.Event.ID]; dup {
				tb.Fatalf("event %s queued twice", p.Event.ID)
			}
			out[p.Event.ID] = p.Event
		}
		if len(tasks) < 1000 {
			return out
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sameSet(got map[string]events.Event, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, id := range want {
		if _, ok := got[id]; !ok {
			return false
		}
	}
	return true
}

// receiver is a stand-in for inbound's webhook receiver: it parses what the
// fake sends with events.ParsePayload and publishes through the same
// Publisher, or answers 500 while down.
type receiver struct {
	srv  *httptest.Server
	pub  *sink.Publisher
	down atomic.Bool
	mu   sync.Mutex
	got  int
}

func newReceiver(tb testing.TB, pub *sink.Publisher) *receiver {
	tb.Helper()
	rc := &receiver{pub: pub}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if rc.down.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		p, err := events.ParsePayload(body, events.SourceWebhook)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, ev := range p.Events {
			if _, err := pub.Publish(r.Context(), ev); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		rc.mu.Lock()
		rc.got++
		rc.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	tb.Cleanup(rc.srv.Close)
	return rc
}

// gatedZendesk wraps the client: hooks run around TicketEvents.
type gatedZendesk struct {
	*zendesk.Client
	before func(ctx context.Context)
	after  func(ctx context.Context, p *zendesk.TicketEventsPage)
}

func (g *gatedZendesk) TicketEvents(ctx context.Context, start time.Time) (*zendesk.TicketEventsPage, error) {
	if g.before != nil {
		g.before(ctx)
	}
	p, err := g.Client.TicketEvents(ctx, start)
	if err == nil && g.after != nil {
		g.after(ctx, p)
	}
	return p, err
}

// gather reads every metric of reg as "name{label="value",…}" → value.
func gather(tb testing.TB, reg *prometheus.Registry) map[string]float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			if len(m.GetLabel()) > 0 {
				var parts []string
				for _, l := range m.GetLabel() {
					parts = append(parts, l.GetName()+"=\""+l.GetValue()+"\"")
				}
				name += "{" + strings.Join(parts, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[name] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}
