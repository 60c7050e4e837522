package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/inbound"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/sink"
	"github.com/deskrelay/deskrelay/reconcile"
	"github.com/deskrelay/deskrelay/relay"
)

// oneShot parses a one-shot command's flags and settings and wires the parts
// it needs; logs go to stderr at warn unless DESKRELAY_LOG_LEVEL says otherwise.
func oneShot(ctx context.Context, env *environment, name, synopsis string, args []string, n needs, extra func(fs *flag.FlagSet)) (*parts, *config, zerolog.Logger, []string, error) {
	fs := oneShotFlags(env, name, synopsis, extra)
	resolve := fs.settings()
	if err := fs.parse(args); err != nil {
		return nil, nil, zerolog.Nop(), nil, err
	}
	v, err := resolve()
	if err != nil {
		return nil, nil, zerolog.Nop(), nil, err
	}
	if env.getenv("DESKRELAY_LOG_LEVEL") == "" {
		v["DESKRELAY_LOG_LEVEL"] = "warn"
	}
	cfg, err := parseConfig(v, n)
	if err != nil {
		return nil, nil, zerolog.Nop(), nil, err
	}
	log, err := newLogger(env, cfg)
	if err != nil {
		return nil, nil, zerolog.Nop(), nil, err
	}
	p, err := build(ctx, cfg, log, nil)
	if err != nil {
		return nil, nil, zerolog.Nop(), nil, err
	}
	return p, cfg, log, fs.Args(), nil
}

// oneShotFlags is a one-shot command's flag set: its own flags (extra)
// and the settings the one-shot commands take.
func oneShotFlags(env *environment, name, synopsis string, extra func(fs *flag.FlagSet)) *flagSet {
	fs := newFlagSet(env, name, synopsis, oneShotSettings())
	if extra != nil {
		extra(fs.FlagSet)
	}
	return fs
}

func cmdReconcile(ctx context.Context, env *environment, args []string) error {
	var since, until, acct *string
	var dry *bool
	p, _, _, rest, err := oneShot(ctx, env, "reconcile", "reconcile --since TIME [--until TIME] [--dry-run] [--account NAME|all]", args, needs{zendesk: true},
		func(fs *flag.FlagSet) {
			acct = accountFlag(fs, true)
			since = fs.String("since", "", "start of the window: RFC 3339 (2026-11-24T08:00:00Z) or a duration ago (6h, 90m, 2d); required")
			until = fs.String("until", "", "end of the window, same forms (default: now, less Zendesk's one-minute export lag)")
			dry = fs.Bool("dry-run", false, "report what would be delivered; change nothing")
		})
	if err != nil {
		return err
	}
	defer p.close()
	if len(rest) > 0 {
		fmt.Fprintf(env.stderr, "unexpected argument %q\nrun 'deskrelay reconcile -h' for usage\n", rest[0])
		return exitCode(2)
	}
	if p.receiver == nil {
		fmt.Fprintln(env.stderr, "DESKRELAY_SINK_URL: required: reconcile delivers Zendesk's updates to the platform's sink")
		return exitCode(2)
	}
	accts, err := pickAccounts(env, p, *acct, true)
	if err != nil {
		return err
	}
	now := time.Now()
	if *since == "" {
		fmt.Fprintln(env.stderr, "--since: required (RFC 3339 or a duration ago, e.g. 6h)")
		return exitCode(2)
	}
	w := reconcile.Window{}
	if w.Since, err = reconcile.ParseSince(*since, now); err != nil {
		fmt.Fprintf(env.stderr, "--since: %v\n", err)
		return exitCode(2)
	}
	if *until != "" {
		if w.Until, err = reconcile.ParseSince(*until, now); err != nil {
			fmt.Fprintf(env.stderr, "--until: %v\n", err)
			return exitCode(2)
		}
	}
	var failed bool
	for _, a := range accts {
		rep, err := a.reconciler.Backfill(ctx, w, reconcile.Options{DryRun: *dry, Progress: env.stdout})
		fmt.Fprintln(env.stdout)
		rep.WriteSummary(env.stdout)
		if err != nil {
			if len(accts) == 1 {
				return err
			}
			fmt.Fprintf(env.stderr, "account %s: %v\n", a.name(), err)
		}
		failed = failed || err != nil || len(rep.Errors) > 0 || !rep.Complete
	}
	if failed {
		return exitCode(1)
	}
	return nil
}

func cmdReplay(ctx context.Context, env *environment, args []string) error {
	var reason, queue, since, acct *string
	var dry *bool
	p, _, _, rest, err := oneShot(ctx, env, "replay", "replay [--reason unauthorized|invalid|gone] [--queue outbound|inbound] [--since TIME] [--dry-run] [--account NAME|all]", args, needs{zendesk: true},
		func(fs *flag.FlagSet) {
			acct = accountFlag(fs, true)
			reason = fs.String("reason", "", "only messages failed for this reason: unauthorized or invalid (outbound), unauthorized or gone (inbound)")
			queue = fs.String("queue", queues.Outbound, "outbound (messages to Zendesk) or inbound (deliveries to the sink)")
			since = fs.String("since", "", "only what failed at or after this time: RFC 3339 or a duration ago (6h)")
			dry = fs.Bool("dry-run", false, "list what would be replayed; change nothing")
		})
	if err != nil {
		return err
	}
	defer p.close()
	if len(rest) > 0 {
		fmt.Fprintf(env.stderr, "unexpected argument %q\nrun 'deskrelay replay -h' for usage\n", rest[0])
		return exitCode(2)
	}
	var sinceT time.Time
	if *since != "" {
		if sinceT, err = reconcile.ParseSince(*since, time.Now()); err != nil {
			fmt.Fprintf(env.stderr, "--since: %v\n", err)
			return exitCode(2)
		}
	}
	if err := checkReplayFlags(env, p, *queue, *reason); err != nil {
		return err
	}
	return eachAccount(env, p, *acct, func(a *account) error {
		return replayAccount(ctx, env, p, a, *queue, *reason, sinceT, *dry)
	})
}

// checkReplayFlags checks --queue and --reason of replay.
func checkReplayFlags(env *environment, p *parts, queue, reason string) error {
	switch queue {
	case queues.Outbound:
		switch reason {
		case "", "unauthorized", "invalid":
		default:
			fmt.Fprintf(env.stderr, "--reason: %q is not a reason outbound messages fail for (unauthorized, invalid)\n", reason)
			return exitCode(2)
		}
	case queues.Inbound:
		switch reason {
		case "", sink.ReasonUnauthorized, sink.ReasonGone:
		default:
			fmt.Fprintf(env.stderr, "--reason: %q is not a reason sink deliveries fail for (unauthorized, gone)\n", reason)
			return exitCode(2)
		}
		if p.receiver == nil {
			fmt.Fprintln(env.stderr, "DESKRELAY_SINK_URL: required to replay sink deliveries")
			return exitCode(2)
		}
	default:
		fmt.Fprintf(env.stderr, "--queue: %q is not a queue (outbound or inbound)\n", queue)
		return exitCode(2)
	}
	return nil
}

// replayAccount replays one account's failed messages or sink deliveries.
func replayAccount(ctx context.Context, env *environment, p *parts, a *account, queue, reason string, since time.Time, dry bool) error {
	if queue == queues.Inbound {
		rep, err := p.receiver.Replay(ctx, a.name(), sink.ReplayOptions{Reason: reason, Since: since, DryRun: dry, Out: env.stdout})
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "%d failed deliver(ies) selected; replayed %d; %d already waiting\n", rep.Found, rep.Replayed, rep.Waiting)
		return nil
	}
	sum, err := a.relay.Replay(ctx, relay.ReplayOptions{Reason: reason, Since: since, DryRun: dry, Out: env.stdout})
	if err != nil {
		return err
	}
	verb := "replayed"
	if dry {
		verb = "would replay"
	}
	fmt.Fprintf(env.stdout, "%d failed message(s) selected in %d conversation(s); %s %d; skipped %d (changed meanwhile)\n",
		sum.Selected, sum.Conversations, verb, sum.Replayed, sum.Skipped)
	return nil
}

func cmdWebhook(ctx context.Context, env *environment, args []string) error {
	var asJSON *bool
	var acct *string
	jsonFlag := func(fs *flag.FlagSet) {
		asJSON = fs.Bool("json", false, "print JSON")
		acct = accountFlag(fs, false)
	}
	if len(args) == 0 || (args[0] != "status" && args[0] != "enable") {
		fs := oneShotFlags(env, "webhook", "webhook status|enable [flags]\n\nstatus shows the Zendesk webhook or legacy target deskrelay watches; enable re-activates it.", jsonFlag)
		_ = fs.settings()
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fs.help(env.stdout)
			return nil
		}
		fmt.Fprintln(env.stderr, "Usage: deskrelay webhook status|enable [flags]\nrun 'deskrelay webhook -h' for usage")
		return exitCode(2)
	}
	action := args[0]
	p, _, _, _, err := oneShot(ctx, env, "webhook "+action, "webhook "+action+" [flags]", args[1:], needs{zendesk: true}, jsonFlag)
	if err != nil {
		return err
	}
	defer p.close()
	accts, err := pickAccounts(env, p, *acct, false)
	if err != nil {
		return err
	}
	a := accts[0]
	if a.cfg.webhookID == "" && a.cfg.targetID == 0 {
		fmt.Fprintln(env.stderr, webhookSettingProblem(a.name()))
		return exitCode(2)
	}
	if a.reconciler == nil {
		fmt.Fprintln(env.stderr, "DESKRELAY_SINK_URL: required (the guardian backfills into the sink)")
		return exitCode(2)
	}
	g := a.reconciler.Guardian()
	var st reconcile.WatchState
	if action == "status" {
		st, err = g.Status(ctx)
	} else {
		st, err = g.Enable(ctx)
	}
	waiting := action == "status" && receiverWaiting(ctx, p, a, &st)
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
	} else {
		printWatchState(env, st)
	}
	if err != nil {
		return err
	}
	if action == "status" && (st.State != "active" || waiting) {
		return exitCode(1)
	}
	return nil
}

// receiverWaiting reports (into st) that serve's receiver still waits for
// the webhook's signing secret, as it last wrote to Redis in the last 10
// minutes (it confirms at least every 2 minutes while waiting).
func receiverWaiting(ctx context.Context, p *parts, a *account, st *reconcile.WatchState) bool {
	rs, ok, err := inbound.ReadReceiverState(ctx, p.rdb, a.space)
	if err != nil || !ok || rs.State != inbound.ReceiverWaiting || time.Since(rs.UpdatedAt) > 10*time.Minute {
		return false
	}
	st.ReceiverHealthy = false
	st.ReceiverProblem = "waiting for the webhook's signing secret from Zendesk"
	if rs.LastError != "" {
		st.ReceiverProblem += ": " + rs.LastError
	}
	return true
}

func printWatchState(env *environment, st reconcile.WatchState) {
	w := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "%s\t%s %s\n", st.Kind, st.ID, st.Name)
	fmt.Fprintf(w, "state\t%s\n", st.State)
	if st.Endpoint != "" {
		fmt.Fprintf(w, "endpoint\t%s\n", st.Endpoint)
	}
	if st.ExpectedEndpoint != "" {
		fmt.Fprintf(w, "expected endpoint\t%s (ours: %v)\n", st.ExpectedEndpoint, st.Ours)
	}
	if st.ConsecutiveFailures > 0 {
		fmt.Fprintf(w, "consecutive failures\t%d (Zendesk deactivates a target at 21)\n", st.ConsecutiveFailures)
	}
	health := "healthy"
	if !st.ReceiverHealthy {
		health = "unhealthy: " + st.ReceiverProblem
	}
	fmt.Fprintf(w, "deskrelay receiver\t%s\n", health)
	if !st.LastReceived.IsZero() {
		fmt.Fprintf(w, "last event received\t%s (%s ago)\n", st.LastReceived.Format(time.RFC3339), time.Since(st.LastReceived).Round(time.Second))
	}
	if st.Action != "" {
		fmt.Fprintf(w, "action\t%s\n", st.Action)
	}
	if st.Breaker != nil {
		fmt.Fprintf(w, "breaker\t%s\n", st.Breaker.Summary())
		if st.Breaker.Message != "" {
			fmt.Fprintf(w, "warning\t%s\n", st.Breaker.Message)
		}
	}
	if !st.GapSince.IsZero() {
		fmt.Fprintf(w, "gap to backfill since\t%s (the next scheduled run covers it; without a schedule: deskrelay reconcile --since %s)\n",
			st.GapSince.Format(time.RFC3339), st.GapSince.UTC().Format(time.RFC3339))
	}
	if st.Reason != "" {
		fmt.Fprintf(w, "reason\t%s\n", strings.TrimSpace(st.Reason))
	}
	_ = w.Flush()
}
