package relay

import (
	"context"
	"time"
)

// StaleTurn reads message id's record now and returns a turn check that
// runs later with that record, as a task does that loaded it before
// another worker (a chain) finished the message.
func (r *Relay) StaleTurn(ctx context.Context, id string) (func(context.Context) (bool, error), error) {
	rec, err := r.st.load(ctx, id)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (bool, error) {
		ok, _, err := r.turn(ctx, rec)
		return ok, err
	}, nil
}

// FinishDelivered records message id as delivered, as settle does after a
// delivery (without Zendesk).
func (r *Relay) FinishDelivered(ctx context.Context, id string) error {
	rec, err := r.st.load(ctx, id)
	if err != nil {
		return err
	}
	return r.st.finish(ctx, rec, finish{state: StateDelivered, ticketID: 1, commentID: 1}, time.Now(), r.cfg.Retention)
}
