package relay

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/queues"
)

// StatusReport is the outbound part of GET /v1/status.
type StatusReport struct {
	// Account is the Zendesk account the report is about.
	Account string `json:"account"`
	// Queue is the shared outbound queue (every account's tasks).
	Queue QueueReport `json:"queue"`
	// Parked counts the account's messages parked off the shared queue
	// (closed gate, spent budget, backlog), waiting for their release.
	Parked      int64               `json:"parked"`
	Gate        GateReport          `json:"gate"`
	Credentials CredentialsReport   `json:"credentials"`
	Failed      map[string]int      `json:"failed"` // kept failed messages by reason
	RateLimit   budget.LimiterState `json:"rate_limit"`
}

// QueueReport is the outbound asynq queue's size by task state.
type QueueReport struct {
	Name      string `json:"name"`
	Pending   int    `json:"pending"`
	Active    int    `json:"active"`
	Scheduled int    `json:"scheduled"`
	Retry     int    `json:"retry"`
	Archived  int    `json:"archived"`
	Paused    bool   `json:"paused"`
}

// maxFailedScan bounds how many failed messages Report reads to count
// reasons.
const maxFailedScan = 10000

// Report returns the outbound relay's state for GET /v1/status.
func (r *Relay) Report(ctx context.Context) (StatusReport, error) {
	rep := StatusReport{Account: r.space.Account(), Queue: QueueReport{Name: queues.Outbound}, Failed: map[string]int{}}
	qs, err := r.insp.Queues()
	if err != nil {
		return rep, fmt.Errorf("outbound queue: %w", err)
	}
	if slices.Contains(qs, queues.Outbound) {
		qi, err := r.insp.GetQueueInfo(queues.Outbound)
		if err != nil {
			return rep, fmt.Errorf("outbound queue: %w", err)
		}
		rep.Queue = QueueReport{Name: queues.Outbound, Pending: qi.Pending, Active: qi.Active, Scheduled: qi.Scheduled,
			Retry: qi.Retry, Archived: qi.Archived, Paused: qi.Paused}
	}
	if rep.Parked, err = r.rdb.ZCard(ctx, r.space.OutboundParked()).Result(); err != nil {
		return rep, fmt.Errorf("parked messages: %w", err)
	}
	if rep.Gate, err = r.gateState(ctx); err != nil {
		return rep, err
	}
	if rep.Credentials, err = r.credentialsState(ctx); err != nil {
		return rep, err
	}
	if rep.RateLimit, err = r.lim.State(ctx); err != nil {
		return rep, err
	}
	ids, err := r.rdb.ZRange(ctx, r.space.Failed(queues.Outbound), 0, maxFailedScan-1).Result()
	if err != nil {
		return rep, fmt.Errorf("failed messages: %w", err)
	}
	p := r.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = p.HGet(ctx, r.space.Message(id), "reason")
	}
	if len(ids) > 0 {
		if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return rep, fmt.Errorf("failed messages: %w", err)
		}
	}
	for _, c := range cmds {
		if v, err := c.Result(); err == nil && v != "" {
			rep.Failed[v]++
		}
	}
	return rep, nil
}
