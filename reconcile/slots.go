package reconcile

import (
	"container/heap"
	"context"
	"hash/fnv"
	"time"
)

// The spread. With many accounts, scheduled runs must not all start at the
// top of the interval: each account's slots are shifted by an offset
// derived from its name alone (SlotOffset), so that every replica computes
// the same slots, a slot keeps one task id, and the accounts' runs spread
// evenly over the interval. The breaker watch's one-minute slots are
// shifted likewise, by half a slot more than the run (breakerSlots): when
// the interval is a whole number of minutes, each scheduled run falls in
// the middle of a breaker slot, about half a minute after that slot's check,
// and takes the check's figures instead of reading them again (breaker.go,
// recentBreaker).

// SlotOffset is where within each slot of length every the account's
// scheduled work starts: the 64-bit FNV-1a hash of its name, mixed
// (splitmix64's finalizer, so that names that differ in one character land
// far apart), modulo every, to the millisecond. 0 when every is under a
// millisecond.
func SlotOffset(account string, every time.Duration) time.Duration {
	if every < time.Millisecond {
		return 0
	}
	ms := uint64(every / time.Millisecond) //nolint:gosec // positive, checked above
	h := fnv.New64a()
	_, _ = h.Write([]byte(account))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return time.Duration(x%ms) * time.Millisecond //nolint:gosec // below ms, which came from an int64
}

// slots are the time slots of one account's scheduled work: every long,
// each starting offset after a multiple of every (since the zero time, as
// time.Truncate counts).
type slots struct{ every, offset time.Duration }

// base is the multiple of every that the slot holding now belongs to: the
// slot's name in its task id (for the account "default", whose ids stay
// those of the release before the spread, the slot's start then).
func (s slots) base(now time.Time) time.Time { return now.Add(-s.offset).Truncate(s.every) }

// start is when the slot holding now began.
func (s slots) start(now time.Time) time.Time { return s.base(now).Add(s.offset) }

// runSlots are the account's scheduled runs: Config.Interval long, shifted
// by SlotOffset.
func (r *Reconciler) runSlots() slots {
	return slots{every: r.cfg.Interval, offset: SlotOffset(r.Account(), r.cfg.Interval)}
}

// breakerSlots are the account's breaker checks: BreakerCheckInterval
// long, shifted half a slot from the run's offset.
func (r *Reconciler) breakerSlots() slots {
	every := r.cfg.BreakerCheckInterval
	return slots{every: every, offset: (r.runSlots().offset + every/2) % every}
}

// series is one account's recurring task: enqueue is called with the base
// of each slot (slots.base) at the slot's start.
type series struct {
	r       *Reconciler
	what    string // for logs
	s       slots
	enqueue func(ctx context.Context, base time.Time) error
	due     time.Time // when (on the real clock) the next slot starts
}

// schedule runs every series on one timer until ctx ends: each series'
// current slot is enqueued at once (a replica that starts mid-slot; a slot
// already enqueued by any replica keeps its task), then each next slot at
// its start. One goroutine and one timer, whatever the number of accounts.
// A slot whose enqueue fails is logged and left to the next one.
func schedule(ctx context.Context, all []*series) error {
	if len(all) == 0 {
		return nil
	}
	q := make(seriesQueue, 0, len(all))
	for _, sr := range all {
		sr.fire(ctx)
		q = append(q, sr)
	}
	heap.Init(&q)
	t := time.NewTimer(time.Until(q[0].due))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for len(q) > 0 && !time.Now().Before(q[0].due) {
			q[0].fire(ctx)
			heap.Fix(&q, 0)
		}
		t.Reset(time.Until(q[0].due))
	}
}

// fire enqueues the slot holding now on the series' clock and sets due to
// the next slot's start. A replica that slept past slot starts enqueues the
// current slot only, as one that started then would.
func (sr *series) fire(ctx context.Context) {
	now := sr.r.cfg.Now()
	base := sr.s.base(now)
	if err := sr.enqueue(ctx, base); err != nil && ctx.Err() == nil {
		sr.r.log.Warn().Err(err).Str("task", sr.what).Msg("reconcile: could not schedule a task; trying again next slot")
	}
	next := base.Add(sr.s.offset + sr.s.every)
	sr.due = time.Now().Add(next.Sub(sr.r.cfg.Now()))
}

// seriesQueue is a min-heap of series by due.
type seriesQueue []*series

func (q seriesQueue) Len() int           { return len(q) }
func (q seriesQueue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q seriesQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *seriesQueue) Push(x any)        { *q = append(*q, x.(*series)) }
func (q *seriesQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}
