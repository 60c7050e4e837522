package main

import (
	"context"
	"time"

	"github.com/deskrelay/deskrelay/relay"
)

// autoReplayInterval is how often DESKRELAY_AUTO_REPLAY checks whether
// messages failed as unauthorized can go again.
const autoReplayInterval = time.Minute

// autoReplay puts messages failed as unauthorized back into delivery once the
// credentials work again (DESKRELAY_AUTO_REPLAY=true). It probes Zendesk
// only while such messages exist.
func (d *daemon) autoReplay(ctx context.Context) {
	t := time.NewTicker(autoReplayInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rep, err := d.relay.Report(ctx)
		if err != nil || rep.Failed["unauthorized"] == 0 {
			continue
		}
		if _, err := d.zd.Me(ctx); err != nil {
			d.log.Debug().Err(err).Msg("auto-replay: credentials still rejected")
			continue
		}
		sum, err := d.relay.Replay(ctx, relay.ReplayOptions{Reason: "unauthorized"})
		if err != nil {
			d.log.Error().Err(err).Msg("auto-replay failed")
			continue
		}
		d.log.Warn().Int("replayed", sum.Replayed).Msg("credentials work again: replayed messages failed as unauthorized")
	}
}
