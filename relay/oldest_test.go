package relay_test

import (
	"context"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/testutil"
)

// TestOldestPending: the age gauge's source names the first accepted
// message while any is undelivered, whatever asynq state its task is in,
// and nothing once all are delivered.
func TestOldestPending(t *testing.T) {
	ctx := context.Background()
	t.Run("NoneOnAnEmptyQueue", func(t *testing.T) {
		e := newEnv(t, envOptions{noWorkers: true})
		if at, ok, err := e.relay.OldestPending(ctx); err != nil || ok {
			t.Fatalf("OldestPending on nothing = %v, %v, %v; want none", at, ok, err)
		}
	})
	t.Run("FirstAcceptedUntilDelivered", func(t *testing.T) {
		e := newEnv(t, envOptions{noWorkers: true})
		before := time.Now().Truncate(time.Millisecond)
		mustEnqueue(t, e.relay, msg("conv-old", 1))
		after := time.Now()
		mustEnqueue(t, e.relay, msg("conv-old", 2))
		at, ok, err := e.relay.OldestPending(ctx)
		if err != nil || !ok || at.Before(before) || at.After(after) {
			t.Fatalf("OldestPending = %v, %v, %v; want the first message's acceptance in [%v, %v]", at, ok, err, before, after)
		}
		startWorkers(t, e.opt, e.relay, 2, testRetryMaxDelay)
		waitStatus(t, e.relay, []string{"conv-old-m01", "conv-old-m02"}, "delivered", 10*time.Second)
		if at, ok, err := e.relay.OldestPending(ctx); err != nil || ok {
			t.Fatalf("OldestPending after delivery = %v, %v, %v; want none", at, ok, err)
		}
	})
	t.Run("CountsMessagesWaitingToRetry", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		e.fake.Down()
		before := time.Now().Truncate(time.Millisecond)
		mustEnqueue(t, e.relay, msg("conv-down", 1))
		testutil.WaitFor(t, 10*time.Second, func() bool {
			q, err := e.insp.GetQueueInfo("outbound")
			return err == nil && q.Pending == 0 && q.Active == 0 && q.Retry+q.Scheduled > 0
		}, "the message's task waiting to retry")
		at, ok, err := e.relay.OldestPending(ctx)
		if err != nil || !ok || at.Before(before) {
			t.Fatalf("OldestPending while Zendesk is down = %v, %v, %v; want the message accepted after %v", at, ok, err, before)
		}
	})
}

// TestCredentialsUnauthorizedGauge: the gauge's source is true from
// Zendesk's 401 until the probe sees the credentials work again.
func TestCredentialsUnauthorizedGauge(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOptions{})
	if bad, err := e.relay.CredentialsUnauthorized(ctx); err != nil || bad {
		t.Fatalf("CredentialsUnauthorized at start = %v, %v; want false", bad, err)
	}
	e.fake.RevokeCredentials()
	mustEnqueue(t, e.relay, msg("conv-401", 1))
	testutil.WaitFor(t, 10*time.Second, func() bool {
		bad, err := e.relay.CredentialsUnauthorized(ctx)
		return err == nil && bad
	}, "credentials unauthorized after a 401")
	e.fake.SetCredentials(e.fake.Email(), e.fake.APIToken())
	testutil.WaitFor(t, 10*time.Second, func() bool {
		bad, err := e.relay.CredentialsUnauthorized(ctx)
		return err == nil && !bad
	}, "credentials ok again after the probe")
}
