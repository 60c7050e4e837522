package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/sink"
	"github.com/deskrelay/deskrelay/reconcile"
	"github.com/deskrelay/deskrelay/relay"
)

// cmdDiscard is `deskrelay discard`: it drops failed messages (or sink
// deliveries) for good, after a human decided they are not wanted.
func cmdDiscard(ctx context.Context, env *environment, args []string) error {
	var reason, queue, before, acct *string
	var dry *bool
	p, _, _, rest, err := oneShot(ctx, env, "discard", "discard [--reason unauthorized|invalid|gone] [--queue outbound|inbound] [--before TIME] [--dry-run] [--account NAME|all]", args, needs{zendesk: true},
		func(fs *flag.FlagSet) {
			acct = accountFlag(fs, true)
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
	if err := checkDiscardFlags(env, *queue, *reason); err != nil {
		return err
	}
	return eachAccount(env, p, *acct, func(a *account) error {
		return discardAccount(ctx, env, p, a, *queue, *reason, beforeT, *dry)
	})
}

// checkDiscardFlags checks --queue and --reason of discard.
func checkDiscardFlags(env *environment, queue, reason string) error {
	switch queue {
	case queues.Outbound:
		if reason != "" && reason != relay.ReasonUnauthorized && reason != relay.ReasonInvalid {
			fmt.Fprintf(env.stderr, "--reason: %q is not a reason outbound messages fail for (unauthorized, invalid)\n", reason)
			return exitCode(2)
		}
	case queues.Inbound:
		if reason != "" && reason != sink.ReasonUnauthorized && reason != sink.ReasonGone {
			fmt.Fprintf(env.stderr, "--reason: %q is not a reason sink deliveries fail for (unauthorized, gone)\n", reason)
			return exitCode(2)
		}
	default:
		fmt.Fprintf(env.stderr, "--queue: %q is not a queue (outbound or inbound)\n", queue)
		return exitCode(2)
	}
	return nil
}

// discardAccount drops one account's failed messages or sink deliveries.
func discardAccount(ctx context.Context, env *environment, p *parts, a *account, queue, reason string, before time.Time, dry bool) error {
	verb := "discarded"
	if dry {
		verb = "would discard"
	}
	if queue == queues.Inbound {
		n, err := sink.Discard(ctx, p.rdb, p.insp, sink.DiscardOptions{Space: a.space, Reason: reason, Before: before, DryRun: dry, Out: env.stdout})
		fmt.Fprintf(env.stdout, "%s %d failed deliver(ies)\n", verb, n)
		return err
	}
	sum, err := a.relay.Discard(ctx, relay.DiscardOptions{Reason: reason, Before: before, DryRun: dry, Out: env.stdout})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "%d failed message(s) selected; %s %d; skipped %d (changed meanwhile)\n", sum.Selected, verb, sum.Discarded, sum.Skipped)
	return nil
}
