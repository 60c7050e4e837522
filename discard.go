package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/sink"
	"github.com/deskrelay/deskrelay/reconcile"
	"github.com/deskrelay/deskrelay/relay"
)

// cmdDiscard is `deskrelay discard`: it drops failed messages (or sink
// deliveries) for good, after a human decided they are not wanted.
func cmdDiscard(ctx context.Context, env *environment, args []string) error {
	var reason, queue, before *string
	var dry *bool
	p, cfg, _, rest, err := oneShot(ctx, env, "discard", "discard [--reason unauthorized|invalid|gone] [--queue outbound|inbound] [--before TIME] [--dry-run]", args, needs{zendesk: true},
		func(fs *flag.FlagSet) {
			reason = fs.String("reason", "", "only what failed for this reason: unauthorized or invalid (outbound), unauthorized or gone (inbound)")
			queue = fs.String("queue", queues.Outbound, "outbound (messages to Zendesk) or inbound (deliveries to the sink)")
			before = fs.String("before", "", "only what failed before this time: RFC 3339 or a duration ago (7d)")
			dry = fs.Bool("dry-run", false, "list what would be dropped; change nothing")
		})
	if err != nil {
		return err
	}
	defer p.close()
	if len(rest) > 0 {
		fmt.Fprintf(env.stderr, "discard: unexpected argument %q\n", rest[0])
		return exitCode(2)
	}
	var beforeT time.Time
	if *before != "" {
		if beforeT, err = reconcile.ParseSince(*before, time.Now()); err != nil {
			fmt.Fprintf(env.stderr, "--before: %v\n", err)
			return exitCode(2)
		}
	}
	verb := "discarded"
	if *dry {
		verb = "would discard"
	}
	switch *queue {
	case queues.Outbound:
		if *reason != "" && *reason != relay.ReasonUnauthorized && *reason != relay.ReasonInvalid {
			fmt.Fprintf(env.stderr, "--reason: %q is not a reason outbound messages fail for (unauthorized, invalid)\n", *reason)
			return exitCode(2)
		}
		sum, err := p.relay.Discard(ctx, relay.DiscardOptions{Reason: *reason, Before: beforeT, DryRun: *dry, Out: env.stdout})
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "%d failed message(s) selected; %s %d; skipped %d (changed meanwhile)\n", sum.Selected, verb, sum.Discarded, sum.Skipped)
	case queues.Inbound:
		if *reason != "" && *reason != sink.ReasonUnauthorized && *reason != sink.ReasonGone {
			fmt.Fprintf(env.stderr, "--reason: %q is not a reason sink deliveries fail for (unauthorized, gone)\n", *reason)
			return exitCode(2)
		}
		insp := asynq.NewInspector(cfg.redis)
		defer insp.Close()
		n, err := sink.Discard(ctx, p.rdb, insp, sink.DiscardOptions{Reason: *reason, Before: beforeT, DryRun: *dry, Out: env.stdout})
		fmt.Fprintf(env.stdout, "%s %d failed deliver(ies)\n", verb, n)
		if err != nil {
			return err
		}
	default:
		fmt.Fprintf(env.stderr, "--queue: %q is not a queue (outbound or inbound)\n", *queue)
		return exitCode(2)
	}
	return nil
}
