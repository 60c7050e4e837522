package reconcile

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

func TestCheckpoint(t *testing.T) {
	ctx := context.Background()
	t0 := time.Unix(1_700_000_000, 0).UTC()

	t.Run("AdvancesOnlyForwardAndOnlyUnderTheLease", func(t *testing.T) {
		e := newEnv(t, zendesktest.Config{})
		r := e.reconciler(t, Config{})
		if _, ok, err := r.Checkpoint(ctx); ok || err != nil {
			t.Fatalf("fresh database: checkpoint ok=%v, %v", ok, err)
		}
		l, err := r.acquire(ctx)
		if err != nil || l == nil {
			t.Fatalf("acquire: %v, %v", l, err)
		}
		for _, at := range []time.Time{t0, t0.Add(-time.Hour)} {
			if err := r.advanceCheckpoint(ctx, l, exportCheckpoint, at); err != nil {
				t.Fatal(err)
			}
		}
		if cp, ok, err := r.Checkpoint(ctx); !ok || err != nil || !cp.Equal(t0) {
			t.Fatalf("checkpoint %v (%v, %v), want %v: it moved back", cp, ok, err, t0)
		}
		if _, ok, _ := r.readCheckpoint(ctx, invocationsCheckpoint); ok {
			t.Fatal("moving the export's checkpoint moved the invocations' one")
		}
		r.release(l)
		err = r.advanceCheckpoint(ctx, l, invocationsCheckpoint, t0)
		if !errors.Is(err, errLeaseLost) {
			t.Fatalf("advance after the lease was released: %v, want errLeaseLost", err)
		}
	})

	t.Run("RewindKeepsTheEarliestGapAndAMovedRewindSurvivesTheClear", func(t *testing.T) {
		e := newEnv(t, zendesktest.Config{})
		r := e.reconciler(t, Config{})
		for _, at := range []time.Time{t0, t0.Add(time.Hour), t0.Add(-time.Hour)} {
			if err := r.rewind(ctx, at); err != nil {
				t.Fatal(err)
			}
		}
		got, ok, err := r.readRewind(ctx)
		if !ok || err != nil || !got.Equal(t0.Add(-time.Hour)) {
			t.Fatalf("rewind %v (%v, %v), want the earliest %v", got, ok, err, t0.Add(-time.Hour))
		}
		// a run covered t0: the guardian's newer gap (t0 − 1h) stays
		if err := r.clearRewind(ctx, t0); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := r.readRewind(ctx); !ok {
			t.Fatal("clearing a rewind the guardian had moved dropped the new gap")
		}
		if err := r.clearRewind(ctx, got); err != nil {
			t.Fatal(err)
		}
		if n, _ := e.rdb.Exists(ctx, keys.Default.ReconcileRewind()).Result(); n != 0 {
			t.Fatal("the covered rewind is still there")
		}
	})
}
