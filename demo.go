package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/alicebob/miniredis/v2"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/deskrelay/deskrelay/internal/logging"
	"github.com/deskrelay/deskrelay/internal/textx"
	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// The demo's fixed, made-up credentials: everything runs on loopback.
const (
	demoIngestToken = "demo-ingest-token"
	demoSinkSecret  = "whsec_ZGVza3JlbGF5LWRlbW8tc2luay1zZWNyZXQ="
	demoAdminUser   = "admin"
	demoAdminPass   = "demo"
	demoTargetUser  = "zendesk"
	demoTargetPass  = "demo-target-password"
)

// demoTimings are the waits of the story; --fast shortens them.
type demoTimings struct {
	outage            time.Duration // how long Zendesk stays down
	reconcileInterval time.Duration
	reconcileLag      time.Duration
	exportLag         time.Duration
	exportWindow      time.Duration
	stepTimeout       time.Duration // how long a step may take before the demo fails
}

func cmdDemo(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "demo", "demo [--fast] [--keep]", nil)
	fast := fs.Bool("fast", false, "shorten the waits (CI runs the demo this way as a smoke test)")
	keep := fs.Bool("keep", false, "leave everything running after the story, for exploring (Ctrl-C ends it)")
	if err := fs.parse(args); err != nil {
		return err
	}
	t := demoTimings{outage: 12 * time.Second, reconcileInterval: 10 * time.Second, reconcileLag: 5 * time.Second,
		exportLag: 3 * time.Second, exportWindow: 10 * time.Second, stepTimeout: 3 * time.Minute}
	if *fast {
		t = demoTimings{outage: 3 * time.Second, reconcileInterval: 2 * time.Second, reconcileLag: 2 * time.Second,
			exportLag: time.Second, exportWindow: 5 * time.Second, stepTimeout: 90 * time.Second}
	}
	d := &demo{env: env, t: t, start: time.Now(), keep: *keep}
	err := d.run(ctx)
	d.shutdown()
	return err
}

// demo plays deskrelay's bad day against an embedded Redis and the fake Zendesk.
type demo struct {
	env   *environment
	t     demoTimings
	start time.Time
	keep  bool

	redis   *miniredis.Miniredis
	zd      *zendesktest.Server
	sink    *demoSink
	proxy   *flakyProxy
	base    string // deskrelay's URL
	target  int64
	logPath string

	stopDaemon context.CancelFunc
	daemonDone chan error
	stopClock  chan struct{}

	sent      []demoMessage
	drainTime time.Duration

	outMu sync.Mutex // say is called from the sink's handlers too
}

type demoMessage struct {
	id, conv, body string
	seq            int
}

func (d *demo) say(format string, args ...any) {
	d.outMu.Lock()
	defer d.outMu.Unlock()
	fmt.Fprintf(d.env.stdout, "[%6.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func (d *demo) step(n int, title string) {
	d.outMu.Lock()
	defer d.outMu.Unlock()
	fmt.Fprintf(d.env.stdout, "\n── %d. %s\n", n, title)
}

func (d *demo) run(ctx context.Context) error {
	fmt.Fprintln(d.env.stdout, "deskrelay demo: a bad day between a messaging platform and Zendesk, on this machine only.")
	if err := d.setUp(ctx); err != nil {
		return err
	}

	d.step(1, "Conversations flow to Zendesk as tickets and comments")
	for c := 1; c <= 3; c++ {
		for s := 1; s <= 2; s++ {
			if err := d.send(ctx, fmt.Sprintf("conv_%d", c), s); err != nil {
				return err
			}
		}
	}
	if err := d.waitDelivered(ctx, "the first messages"); err != nil {
		return err
	}
	for _, tk := range d.zd.Tickets() {
		d.say("Zendesk ticket #%d for %s: %q, %d comment(s)", tk.ID, tk.ExternalID, tk.Subject, len(d.zd.Comments(tk.ID)))
	}

	d.step(2, "Zendesk goes down; messages keep arriving and wait")
	d.zd.Down()
	d.say("Zendesk answers 503 to everything now")
	for c := 1; c <= 4; c++ {
		for s := 3; s <= 5; s++ {
			seq := s
			if c == 4 {
				seq = s - 2 // a conversation that starts during the outage
			}
			if err := d.send(ctx, fmt.Sprintf("conv_%d", c), seq); err != nil {
				return err
			}
		}
	}
	d.say("%d messages accepted (202) while Zendesk is down: they are durable in Redis", 12)
	if err := sleepCtx(ctx, d.t.outage); err != nil {
		return err
	}
	counts := d.statusCounts(ctx)
	d.say("after %s of outage: %s; Zendesk saw %d requests (503)", d.t.outage, formatCounts(counts), d.zd.CountRequests("", "/api/v2"))

	d.step(3, "Zendesk comes back; the backlog drains at the rate limit, exactly once, in order")
	up := time.Now()
	d.zd.Up()
	if err := d.waitDelivered(ctx, "the backlog"); err != nil {
		return err
	}
	d.drainTime = time.Since(up)
	d.say("backlog of 12 drained %.1fs after Zendesk came back", d.drainTime.Seconds())

	d.step(4, "Agents reply; the replies reach the platform through Zendesk's target")
	tickets := d.managedTickets()
	for i, tk := range tickets {
		d.zd.AgentComment(tk.ID, fmt.Sprintf("Hi! Agent here, looking into %s (reply %d).", tk.ExternalID, i+1), true)
	}
	d.zd.SetStatus(tickets[0].ID, "pending")
	if err := d.waitSink(ctx, len(tickets)+1, "agent replies via the target"); err != nil {
		return err
	}

	d.step(5, "The platform's side fails; after 21 failures Zendesk disables the target; agents keep replying")
	d.proxy.setBroken(true)
	d.say("the load balancer in front of deskrelay answers 503 now")
	missed := 0
	for i := 0; ; i++ {
		tk := tickets[i%len(tickets)]
		d.zd.AgentComment(tk.ID, fmt.Sprintf("Follow-up %d on %s while nobody hears us.", i+1, tk.ExternalID), true)
		missed++
		if tg, _ := d.zd.Target(d.target); !tg.Active {
			d.say("after %d failed notifications Zendesk deactivated the target (active: false)", d.zd.TargetConsecutiveFailures(d.target))
			break
		}
		if i > 40 {
			return errors.New("demo: the fake Zendesk never deactivated the target")
		}
	}
	for i := 0; i < 3; i++ {
		tk := tickets[i%len(tickets)]
		d.zd.AgentComment(tk.ID, fmt.Sprintf("Another reply on %s; the target is off, Zendesk does not even try.", tk.ExternalID), true)
		missed++
	}
	d.say("%d agent replies never reached the platform", missed)
	d.proxy.setBroken(false)
	d.say("the load balancer is fixed; the target is still off in Zendesk")

	d.step(6, "The reconciler re-enables the target and backfills the missed replies")
	want := len(tickets) + 1 + missed
	if err := d.waitFor(ctx, "the target re-enabled", func() bool { tg, _ := d.zd.Target(d.target); return tg.Active }); err != nil {
		return err
	}
	d.say("the guardian re-enabled the target")
	if err := d.waitSink(ctx, want, "the backfill"); err != nil {
		return err
	}

	d.step(7, "Summary")
	ok := d.summary(want)
	if d.keep {
		d.explore(ctx)
	}
	if !ok {
		return exitCode(1)
	}
	return nil
}

func (d *demo) setUp(ctx context.Context) error {
	d.redis = miniredis.NewMiniRedis()
	if err := d.redis.Start(); err != nil {
		return fmt.Errorf("demo: embedded Redis: %w", err)
	}
	// miniredis expires keys only when told the time has passed.
	d.stopClock = make(chan struct{})
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-d.stopClock:
				return
			case now := <-tick.C:
				d.redis.FastForward(now.Sub(last))
				d.redis.SetTime(now)
				last = now
			}
		}
	}()
	d.say("embedded Redis (miniredis) on %s — in memory only: 'deskrelay serve' never uses it", d.redis.Addr())

	zd, err := zendesktest.Start(zendesktest.Config{
		Email: "demo@example.com", APIToken: "demo-api-token",
		// The fake's minute shrinks to the demo's export window, so that the
		// export's 10 requests per window match what the reconciler expects.
		RateLimit: 600, ExportLag: d.t.exportLag, Window: d.t.exportWindow,
		NotifyAPIWrites: true, // Zendesk's triggers also fire on deskrelay's own comments: no echo must reach the platform
	})
	if err != nil {
		return fmt.Errorf("demo: Zendesk sandbox: %w", err)
	}
	d.zd = zd
	d.say("Zendesk sandbox (the fake from zendesk/zendesktest) on %s", zd.URL())

	d.sink = newDemoSink(d)
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	d.base = "http://" + ln.Addr().String()
	d.proxy = newFlakyProxy(d.base)
	d.target = zd.AddTarget(d.proxy.URL()+"/v1/zendesk/target", demoTargetUser, demoTargetPass)

	dir, err := os.MkdirTemp("", "deskrelay-demo-")
	if err != nil {
		return err
	}
	d.logPath = filepath.Join(dir, "deskrelay.log")
	logFile, err := os.Create(d.logPath)
	if err != nil {
		return err
	}
	v := values{}
	for _, s := range settings {
		v[s.env] = s.def
	}
	for k, val := range map[string]string{
		"DESKRELAY_REDIS_URL":          "redis://" + d.redis.Addr() + "/0",
		"DESKRELAY_ZENDESK_URL":        zd.URL(),
		"DESKRELAY_ZENDESK_EMAIL":      zd.Email(),
		"DESKRELAY_ZENDESK_API_TOKEN":  zd.APIToken(),
		"DESKRELAY_ZENDESK_RATE_LIMIT": "300",
		"DESKRELAY_ZENDESK_TARGET_ID":  fmt.Sprint(d.target),
		"DESKRELAY_INGEST_TOKEN":       demoIngestToken,
		"DESKRELAY_SINK_URL":           d.sink.URL(),
		"DESKRELAY_SINK_SECRET":        demoSinkSecret,
		"DESKRELAY_ADMIN_USER":         demoAdminUser,
		"DESKRELAY_ADMIN_PASSWORD":     demoAdminPass,
		"DESKRELAY_TARGET_USER":        demoTargetUser,
		"DESKRELAY_TARGET_PASSWORD":    demoTargetPass,
		"DESKRELAY_PUBLIC_URL":         d.proxy.URL(),
		"DESKRELAY_RECONCILE_INTERVAL": d.t.reconcileInterval.String(),
		"DESKRELAY_RETRY_MAX_DELAY":    "5s",
		"DESKRELAY_SPOOL_DIR":          filepath.Join(dir, "spool"),
		"DESKRELAY_SHUTDOWN_TIMEOUT":   "5s",
	} {
		v[k] = val
	}
	cfg, err := parseConfig(v, needs{zendesk: true, ingest: true})
	if err != nil {
		return fmt.Errorf("demo: settings: %w", err)
	}
	cfg.tuning = tuning{
		listener:        ln,
		pollInterval:    200 * time.Millisecond,
		reconcileLag:    d.t.reconcileLag,
		exportWindow:    d.t.exportWindow,
		gateProbe:       time.Second,
		initialLookback: time.Minute,
	}
	log, err := logging.New(logFile, "json", "info")
	if err != nil {
		return err
	}
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.stopDaemon = cancel
	d.daemonDone = make(chan error, 1)
	go func() { d.daemonDone <- serve(dctx, cfg, log) }()
	if err := d.waitFor(ctx, "deskrelay ready", func() bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.base+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		return err
	}
	d.say("deskrelay on %s (logs: %s)", d.base, d.logPath)
	d.say("asynqmon: %s/monitoring/  metrics: %s/metrics  (admin: %s / %s)", d.base, d.base, demoAdminUser, demoAdminPass)
	d.say("the platform's sink on %s verifies every delivery's Standard Webhooks signature", d.sink.URL())
	return nil
}

func (d *demo) shutdown() {
	if d.stopDaemon != nil {
		d.stopDaemon()
		select {
		case err := <-d.daemonDone:
			if err != nil {
				fmt.Fprintln(d.env.stderr, "deskrelay stopped with an error:", err)
			}
		case <-time.After(15 * time.Second):
			fmt.Fprintln(d.env.stderr, "deskrelay did not stop within 15s")
		}
	}
	if d.proxy != nil {
		d.proxy.Close()
	}
	if d.sink != nil {
		d.sink.Close()
	}
	if d.zd != nil {
		d.zd.Close()
	}
	if d.stopClock != nil {
		close(d.stopClock)
	}
	if d.redis != nil {
		d.redis.Close()
	}
}

func (d *demo) send(ctx context.Context, conv string, seq int) error {
	m := demoMessage{id: fmt.Sprintf("msg_%s_%d", conv, seq), conv: conv, seq: seq,
		body: fmt.Sprintf("Message %d of %s: the app crashes when I press Save.", seq, conv)}
	body, _ := json.Marshal(map[string]any{
		"id": m.id, "conversation_id": conv, "sequence": seq, "body": m.body,
		"author":  map[string]string{"id": "user_" + conv, "name": "Customer " + conv, "email": conv + "@example.com"},
		"subject": "Crash on Save (" + conv + ")",
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.base+"/v1/messages", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+demoIngestToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("demo: post %s: %w", m.id, err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("demo: post %s: %d %s", m.id, resp.StatusCode, raw)
	}
	d.sent = append(d.sent, m)
	return nil
}

func (d *demo) messageStatus(ctx context.Context, id string) string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.base+"/v1/messages/"+url.PathEscape(id), nil)
	req.Header.Set("Authorization", "Bearer "+demoIngestToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "unknown"
	}
	defer resp.Body.Close()
	var st struct {
		Status string `json:"status"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&st)
	return st.Status
}

func (d *demo) statusCounts(ctx context.Context) map[string]int {
	counts := map[string]int{}
	for _, m := range d.sent {
		counts[d.messageStatus(ctx, m.id)]++
	}
	return counts
}

func formatCounts(c map[string]int) string {
	var parts []string
	for k, v := range c {
		parts = append(parts, fmt.Sprintf("%d %s", v, k))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func (d *demo) waitDelivered(ctx context.Context, what string) error {
	return d.waitFor(ctx, what+" delivered", func() bool {
		c := d.statusCounts(ctx)
		return c["delivered"] == len(d.sent)
	})
}

func (d *demo) waitSink(ctx context.Context, n int, what string) error {
	return d.waitFor(ctx, fmt.Sprintf("%d events at the platform (%s)", n, what), func() bool { return d.sink.unique() >= n })
}

func (d *demo) waitFor(ctx context.Context, what string, cond func() bool) error {
	deadline := time.Now().Add(d.t.stepTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: gave up after %s waiting for %s (deskrelay's log: %s)", d.t.stepTimeout, what, d.logPath)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func (d *demo) managedTickets() []zendesk.Ticket {
	var out []zendesk.Ticket
	for _, tk := range d.zd.Tickets() {
		if tk.ExternalID != "" {
			out = append(out, tk)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// summary checks Zendesk and the sink against what was sent and what agents
// did, prints the table, and reports whether nothing was lost or duplicated.
func (d *demo) summary(wantEvents int) bool {
	// Outbound: every message exactly once in its conversation's ticket, in order.
	seen := map[string]int{}
	outOfOrder := 0
	for _, tk := range d.managedTickets() {
		last := 0
		for _, c := range d.zd.Comments(tk.ID) {
			for _, m := range d.sent {
				if m.conv == tk.ExternalID && strings.TrimSpace(c.Body) == m.body {
					seen[m.id]++
					if m.seq < last {
						outOfOrder++
					}
					last = m.seq
				}
			}
		}
	}
	delivered, dupMessages := 0, 0
	for _, m := range d.sent {
		if seen[m.id] > 0 {
			delivered++
		}
		if seen[m.id] > 1 {
			dupMessages += seen[m.id] - 1
		}
	}
	viaWebhook, viaReconcile, dupEvents, echoes, badSig := d.sink.stats()
	w := tabwriter.NewWriter(d.env.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "messages sent to deskrelay\t%d\t\n", len(d.sent))
	fmt.Fprintf(w, "messages in Zendesk\t%d\t\n", delivered)
	fmt.Fprintf(w, "duplicate comments in Zendesk\t%d\t\n", dupMessages)
	fmt.Fprintf(w, "comments out of order\t%d\t\n", outOfOrder)
	fmt.Fprintf(w, "agent replies and status changes\t%d\t\n", wantEvents)
	fmt.Fprintf(w, "received by the platform via the target\t%d\t\n", viaWebhook)
	fmt.Fprintf(w, "received by the platform via the reconciler\t%d\t\n", viaReconcile)
	fmt.Fprintf(w, "duplicate deliveries to the platform\t%d\t\n", dupEvents)
	fmt.Fprintf(w, "echoes of the platform's own messages\t%d\t\n", echoes)
	fmt.Fprintf(w, "deliveries with a bad signature\t%d\t\n", badSig)
	fmt.Fprintf(w, "time to drain the outage backlog\t%.1fs\t\n", d.drainTime.Seconds())
	_ = w.Flush()
	lost := len(d.sent) - delivered + wantEvents - (viaWebhook + viaReconcile)
	ok := lost == 0 && dupMessages == 0 && outOfOrder == 0 && echoes == 0 && badSig == 0
	if ok {
		fmt.Fprintln(d.env.stdout, "\nNothing lost, nothing duplicated, nothing out of order.")
	} else {
		fmt.Fprintf(d.env.stdout, "\nFAILED: %d lost, %d duplicated comments, %d out of order, %d echoes, %d bad signatures (deskrelay's log: %s)\n",
			lost, dupMessages, outOfOrder, echoes, badSig, d.logPath)
	}
	return ok
}

func (d *demo) explore(ctx context.Context) {
	fmt.Fprintf(d.env.stdout, "\n--keep: everything stays up until Ctrl-C.\n  asynqmon   %s/monitoring/ (%s / %s)\n  metrics    %s/metrics\n  status     curl -u %s:%s %s/v1/status\n  send       DESKRELAY_INGEST_TOKEN=%s go run . send --server %s --conversation conv_9 --email c9@example.com --body hello\n  Zendesk    %s (email %s, token %s)\n",
		d.base, demoAdminUser, demoAdminPass, d.base, demoAdminUser, demoAdminPass, d.base, demoIngestToken, d.base, d.zd.URL(), d.zd.Email(), d.zd.APIToken())
	<-ctx.Done()
}

// demoSink is the platform: it verifies each delivery's signature and counts.
type demoSink struct {
	*httptest.Server
	d  *demo
	wh *standardwebhooks.Webhook

	mu      sync.Mutex
	count   map[string]int
	sources map[string]string
	echoes  int
	badSig  atomic.Int64
}

func newDemoSink(d *demo) *demoSink {
	wh, err := standardwebhooks.NewWebhook(demoSinkSecret)
	if err != nil {
		panic(err) // a constant secret
	}
	s := &demoSink{d: d, wh: wh, count: map[string]int{}, sources: map[string]string{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

func (s *demoSink) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err := s.wh.Verify(body, r.Header); err != nil {
		s.badSig.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ev struct {
		Type           string `json:"type"`
		ID             string `json:"id"`
		ConversationID string `json:"conversation_id"`
		Status         string `json:"status"`
		Source         string `json:"source"`
		Comment        *struct {
			Body   string `json:"body"`
			Author struct {
				Role string `json:"role"`
			} `json:"author"`
		} `json:"comment"`
	}
	_ = json.Unmarshal(body, &ev)
	s.mu.Lock()
	s.count[ev.ID]++
	first := s.count[ev.ID] == 1
	if first {
		s.sources[ev.ID] = ev.Source
	}
	if ev.Comment != nil && ev.Comment.Author.Role != "agent" {
		s.echoes++
	}
	s.mu.Unlock()
	if first {
		what := "status → " + ev.Status
		if ev.Comment != nil {
			what = fmt.Sprintf("%q", textx.Truncate(strings.TrimSpace(ev.Comment.Body), 60))
		}
		s.d.say("platform ← %s %s: %s (via %s)", ev.ConversationID, strings.TrimPrefix(ev.Type, "ticket."), what, ev.Source)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *demoSink) unique() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.count)
}

func (s *demoSink) stats() (viaWebhook, viaReconcile, duplicates, echoes, badSig int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, n := range s.count {
		duplicates += n - 1
		if s.sources[id] == "webhook" {
			viaWebhook++
		} else {
			viaReconcile++
		}
	}
	return viaWebhook, viaReconcile, duplicates, s.echoes, int(s.badSig.Load())
}

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
func (s *demoSink) URL() string        { return s.Server.URL }
