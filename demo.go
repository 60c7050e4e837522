package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// `deskrelay demo` plays deskrelay's bad day in one process: this file is
// the command and the story; demo_world.go starts and stops what the story
// runs against (an embedded Redis, the fake Zendesk, deskrelay itself),
// demo_check.go sends, waits and counts, demo_sink.go is the platform and
// demo_proxy.go the load balancer that breaks.

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
	keep := fs.Bool("keep", false, "after the story, leave everything running for exploring until Ctrl-C, and keep the working directory")
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
	d.tidy(err)
	return err
}

// demo plays deskrelay's bad day against an embedded Redis and the fake Zendesk.
type demo struct {
	env   *environment
	t     demoTimings
	start time.Time
	keep  bool

	// the world (demo_world.go)
	dir        string // the working directory: deskrelay's log and spool
	redis      *miniredis.Miniredis
	zd         *zendesktest.Server
	sink       *demoSink
	proxy      *flakyProxy
	base       string // deskrelay's URL
	target     int64
	logPath    string
	logFile    *os.File
	stopDaemon context.CancelFunc
	daemonDone chan error
	stopClock  chan struct{}

	// what happened
	sent          []demoMessage
	beforeOutage  []demoMessage // delivered before Zendesk went down
	duringOutage  []demoMessage // sent while Zendesk was down
	requestsAtOut int           // requests the fake had recorded when it went down
	drainTime     time.Duration
	tickets       []zendesk.Ticket // deskrelay's tickets, once the backlog is in
	missed        int              // agent replies that did not reach the platform
	wantEvents    int              // agent replies and status changes made in Zendesk

	steps int
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

func (d *demo) step(title string) {
	d.outMu.Lock()
	defer d.outMu.Unlock()
	d.steps++
	fmt.Fprintf(d.env.stdout, "\n── %d. %s\n", d.steps, title)
}

func (d *demo) run(ctx context.Context) error {
	fmt.Fprintln(d.env.stdout, "deskrelay demo: a bad day between a messaging platform and Zendesk, on this machine only.")
	if err := d.setUp(ctx); err != nil {
		return err
	}
	for _, chapter := range []func(context.Context) error{
		d.conversationsFlow, d.zendeskDown, d.zendeskBack, d.agentsReply, d.targetFails, d.backfill,
	} {
		if err := chapter(ctx); err != nil {
			return err
		}
	}
	d.step("Summary")
	ok := d.summary()
	d.lookFurther()
	if d.keep {
		d.explore(ctx)
	}
	if !ok {
		return exitCode(1)
	}
	return nil
}

func (d *demo) conversationsFlow(ctx context.Context) error {
	d.step("Conversations flow to Zendesk as tickets and comments")
	for c := 1; c <= 3; c++ {
		for s := 1; s <= 2; s++ {
			if err := d.send(ctx, fmt.Sprintf("conv_%d", c), s); err != nil {
				return err
			}
		}
	}
	if err := d.waitDelivered(ctx, d.sent, "the first messages"); err != nil {
		return err
	}
	for _, tk := range d.zd.Tickets() {
		d.say("Zendesk ticket #%d for %s: %q, %d comment(s)", tk.ID, tk.ExternalID, tk.Subject, len(d.zd.Comments(tk.ID)))
	}
	return nil
}

func (d *demo) zendeskDown(ctx context.Context) error {
	d.step("Zendesk goes down; messages keep arriving and wait")
	d.beforeOutage = d.sent[:len(d.sent):len(d.sent)]
	d.requestsAtOut = len(d.zd.Requests())
	d.zd.Down()
	d.say("%d messages were delivered before the outage; Zendesk answers 503 to everything from now on", len(d.beforeOutage))
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
	d.duringOutage = d.sent[len(d.beforeOutage):]
	d.say("%d messages accepted (202) while Zendesk is down: they wait in Redis, durable", len(d.duringOutage))
	d.say("waiting %s with Zendesk down; deskrelay retries with backoff meanwhile …", d.t.outage)
	if err := sleepCtx(ctx, d.t.outage); err != nil {
		return err
	}
	before, during := d.statusCounts(ctx, d.beforeOutage), d.statusCounts(ctx, d.duringOutage)
	duringDelivered := during["delivered"]
	delete(during, "delivered")
	d.say("after %s of outage, delivered so far: %d of the %d messages from before the outage, %d of the %d sent during it (%s)",
		d.t.outage, before["delivered"], len(d.beforeOutage), duringDelivered, len(d.duringOutage), formatCounts(during))
	d.say("Zendesk answered 503 to %d of deskrelay's requests during the outage", d.rejectedSinceOutage())
	return nil
}

func (d *demo) zendeskBack(ctx context.Context) error {
	d.step("Zendesk comes back; the backlog drains at the rate limit, exactly once, in order")
	up := time.Now()
	d.zd.Up()
	if err := d.waitDelivered(ctx, d.duringOutage, "the backlog"); err != nil {
		return err
	}
	d.drainTime = time.Since(up)
	d.say("backlog of %d drained %.1fs after Zendesk came back", len(d.duringOutage), d.drainTime.Seconds())
	return nil
}

func (d *demo) agentsReply(ctx context.Context) error {
	d.step("Agents reply; the replies reach the platform through Zendesk's target")
	d.tickets = d.managedTickets()
	if len(d.tickets) == 0 {
		return errors.New("demo: deskrelay made no ticket in Zendesk")
	}
	for i, tk := range d.tickets {
		d.zd.AgentComment(tk.ID, fmt.Sprintf("Hi! Agent here, looking into %s (reply %d).", tk.ExternalID, i+1), true)
		d.wantEvents++
	}
	d.zd.SetStatus(d.tickets[0].ID, "pending")
	d.wantEvents++
	return d.waitSink(ctx, d.wantEvents, "the agents' replies and the status change to reach the platform")
}

func (d *demo) targetFails(context.Context) error {
	d.step("The platform's side fails; Zendesk disables the target after repeated failures; agents keep replying")
	d.proxy.setBroken(true)
	d.say("the load balancer in front of deskrelay answers 503 now")
	for i := 0; ; i++ {
		tk := d.tickets[i%len(d.tickets)]
		d.zd.AgentComment(tk.ID, fmt.Sprintf("Follow-up %d on %s while nobody hears us.", i+1, tk.ExternalID), true)
		d.missed++
		if tg, _ := d.zd.Target(d.target); !tg.Active {
			d.say("after %d failed notifications Zendesk deactivated the target (active: false)", d.zd.TargetConsecutiveFailures(d.target))
			break
		}
		if i > 40 {
			return errors.New("demo: the fake Zendesk never deactivated the target")
		}
	}
	for i := 0; i < 3; i++ {
		tk := d.tickets[i%len(d.tickets)]
		d.zd.AgentComment(tk.ID, fmt.Sprintf("Another reply on %s; the target is off, Zendesk does not even try.", tk.ExternalID), true)
		d.missed++
	}
	d.wantEvents += d.missed
	d.say("%d agent replies never reached the platform", d.missed)
	d.proxy.setBroken(false)
	d.say("the load balancer is fixed; the target is still off in Zendesk")
	return nil
}

func (d *demo) backfill(ctx context.Context) error {
	d.step("The reconciler re-enables the target and backfills the missed replies")
	what := fmt.Sprintf("the guardian to re-enable the target (the reconciler runs every %s)", d.t.reconcileInterval)
	if err := d.waitFor(ctx, what, func() bool { tg, _ := d.zd.Target(d.target); return tg.Active }); err != nil {
		return err
	}
	d.say("the guardian re-enabled the target")
	what = fmt.Sprintf("the reconciler to backfill the %d missed replies from Zendesk's incremental export", d.missed)
	return d.waitSink(ctx, d.wantEvents, what)
}

// managedTickets are the tickets deskrelay made (they carry the
// conversation as external id), oldest first.
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

// rejectedSinceOutage counts the requests the fake answered 503 since it went down.
func (d *demo) rejectedSinceOutage() int {
	n := 0
	for _, r := range d.zd.Requests()[d.requestsAtOut:] {
		if r.Status == http.StatusServiceUnavailable {
			n++
		}
	}
	return n
}

// lookFurther ends the story by saying how to see more of it.
func (d *demo) lookFurther() {
	if d.keep {
		return // explore prints the addresses themselves
	}
	fmt.Fprint(d.env.stdout, `
To look further, run "deskrelay demo --keep": after the story everything stays up until
Ctrl-C, and the demo prints where each part is: asynqmon (the queues, the retried and
archived tasks) at deskrelay's /monitoring/, its metrics and status API, the embedded
Redis for redis-cli, deskrelay's log, and the settings to run a second "deskrelay serve"
against the same Redis and Zendesk. The README's "Operations" section says what each
of them shows.
`)
}

// explore prints where everything is and waits for Ctrl-C (--keep).
func (d *demo) explore(ctx context.Context) {
	replica, err := d.writeReplicaEnv(ctx)
	if err != nil {
		fmt.Fprintf(d.env.stderr, "demo: %v\n", err)
	}
	w := d.env.stdout
	fmt.Fprintf(w, "\n--keep: everything stays up until Ctrl-C; the working directory %s stays after it.\n", d.dir)
	fmt.Fprintf(w, "  asynqmon   %s/monitoring/ (%s / %s): queues, retried and archived tasks\n", d.base, demoAdminUser, demoAdminPass)
	fmt.Fprintf(w, "  metrics    %s/metrics\n", d.base)
	fmt.Fprintf(w, "  status     curl -u %s:%s %s/v1/status\n", demoAdminUser, demoAdminPass, d.base)
	fmt.Fprintf(w, "  send       DESKRELAY_INGEST_TOKEN=%s deskrelay send --server %s --conversation conv_9 --email c9@example.com --body hello\n", demoIngestToken, d.base)
	fmt.Fprintf(w, "  Redis      redis-cli -p %s --scan --pattern 'deskrelay:*'  (in memory: gone at Ctrl-C)\n", d.redisPort())
	fmt.Fprintf(w, "  Zendesk    %s (email %s, API token %s)\n", d.zd.URL(), d.zd.Email(), d.zd.APIToken())
	fmt.Fprintf(w, "  log        %s\n", d.logPath)
	if replica != "" {
		fmt.Fprintf(w, "  serve      a second deskrelay against the same Redis and Zendesk, while this one runs:\n")
		fmt.Fprintf(w, "             (set -a; . %s; deskrelay serve)\n", replica)
	}
	<-ctx.Done()
}
