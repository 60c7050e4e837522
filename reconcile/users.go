package reconcile

import (
	"context"
	"fmt"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/zendesk"
)

// maxCachedUsers bounds the reconciler's author cache, kept across runs:
// agents are few.
const maxCachedUsers = 10000

// user looks up a comment's author through the shared author cache (one
// lookup per user at a time, the agent/admin rule of events.AuthorOf),
// spending the run's Zendesk budget.
func (r *Reconciler) user(ctx context.Context, ru *runState, id int64) (events.Author, error) {
	a, err := r.users.Author(ctx, id, func(ctx context.Context, id int64) (*zendesk.User, error) {
		return call(ctx, r, ru.b, false, func(ctx context.Context) (*zendesk.User, error) {
			return r.zd.GetUser(ctx, id)
		})
	})
	if err != nil {
		return events.Author{}, fmt.Errorf("look up author %d: %w", id, err)
	}
	return a, nil
}
