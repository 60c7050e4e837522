package relay

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/zendesk"
)

// MetadataKey is the key of the message id in a ticket update's custom
// metadata (and in the creating request's).
const MetadataKey = "deskrelay_message_id"

// TagDeskrelay is the tag on every ticket deskrelay creates.
const TagDeskrelay = "deskrelay"

var (
	errNotYourTurn = errors.New("waiting for an earlier message of the conversation")
	errReplaying   = errors.New("replay in progress")
)

// delivery is where a message ended up in Zendesk.
type delivery struct {
	ticketID  int64
	commentID int64
}

// processMessage is the handler of TypeMessage: one delivery attempt. A
// task its account's budget holds back parks (park.go) rather than coming
// back every few seconds through the shared pending list.
func (r *Relay) processMessage(ctx context.Context, t *asynq.Task) error {
	var p taskPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.ID == "" {
		return queues.Fail(ReasonInvalid, fmt.Errorf("unreadable task payload %q", t.Payload()))
	}
	if !r.ownsPayload(p.Account) {
		return queues.Fail(ReasonInvalid, fmt.Errorf("task of account %q handed to account %q's relay", p.Account, r.space.Account()))
	}
	err := r.attempt(ctx, p)
	if parkable(err) && r.parkTask(ctx, p.ID) {
		return queues.Wait(jitter(r.cfg.GateParkTime), err)
	}
	return err
}

// attempt is one delivery attempt of the message of task payload p.
func (r *Relay) attempt(ctx context.Context, p taskPayload) error {
	log := r.log.With().Str("message_id", p.ID).Logger()
	if tid, ok := asynq.GetTaskID(ctx); ok {
		log = log.With().Str("task_id", tid).Logger()
	}
	rec, err := r.st.load(ctx, p.ID)
	if errors.Is(err, errNoRecord) {
		log.Warn().Msg("task without a message record (never acknowledged, or expired): dropped")
		return nil
	}
	if err != nil {
		return err
	}
	log = log.With().Str("conversation_id", rec.Conv).Logger()
	switch {
	case p.Gen < rec.Gen:
		return nil // superseded by a replay
	case p.Gen > rec.Gen:
		return queues.Wait(500*time.Millisecond, errReplaying)
	}
	switch rec.State {
	case "accepting":
		// The intake was interrupted after the task was enqueued: the
		// message is durable, so complete its acceptance.
		if _, err := r.st.queue(ctx, rec.ID, rec.Conv, rec.Msg.Sequence, ""); err != nil {
			return err
		}
		if rec, err = r.st.load(ctx, p.ID); err != nil {
			return err
		}
	case StateDelivered, StateFailed:
		return r.retellOutcome(ctx, rec, p.Gen)
	}
	if err := r.gateAdmit(ctx, p.ID); err != nil {
		return err
	}
	ok, wait, err := r.turn(ctx, rec)
	if err != nil {
		return err
	}
	if !ok {
		return queues.Wait(jitter(wait), errNotYourTurn)
	}
	l, lctx, err := r.lock(ctx, rec.Conv)
	if errors.Is(err, errLockBusy) {
		return queues.Wait(jitter(250*time.Millisecond), err)
	}
	if err != nil {
		return err
	}
	defer l.release()
	// Read again under the lock: another worker may have finished it.
	if rec, err = r.st.load(lctx, p.ID); err != nil {
		return err
	}
	if rec.State != StateQueued || rec.Gen != p.Gen {
		return r.retellOutcome(ctx, rec, p.Gen)
	}
	d, err := r.deliver(lctx, rec, log)
	serr := r.settle(ctx, rec, d, err, log)
	if serr == nil || errors.Is(serr, asynq.SkipRetry) {
		// The conversation moved on: send the messages that were waiting
		// for this one while the lock is held, then wake the next head.
		if serr == nil {
			r.chain(lctx, rec.Conv)
		}
		r.wakeHead(ctx, rec.Conv)
	}
	return serr
}

// Chaining bounds: how many successors one task sends, and for how long.
const maxChain = 50

// chain sends the conversation's next messages in order, each as its own
// task would (its task later finds it delivered). It stops at the first
// message that is not due, or that fails: that one's own task takes over.
//
// An account with parked messages chains nothing: its successors wait for
// their release (park.go), which paces the account's work to its budget.
func (r *Relay) chain(ctx context.Context, conv string) {
	if n, err := r.rdb.ZCard(ctx, r.space.OutboundParked()).Result(); err != nil || n > 0 {
		return
	}
	deadline := time.Now().Add(r.cfg.AttemptTimeout / 4)
	for range maxChain {
		if ctx.Err() != nil || time.Now().After(deadline) {
			return
		}
		t, err := r.readTurn(ctx, conv, true)
		if err != nil || len(t.head) == 0 {
			return
		}
		id, _ := t.head[0].Member.(string)
		rec, err := r.st.load(ctx, id)
		if errors.Is(err, errNoRecord) || err == nil && (rec.State == StateDelivered || rec.State == StateFailed) {
			// A finished (or expired) message left at the head, as an
			// older release's turn check could leave one: take it out and
			// go on.
			if r.rejoin(ctx, conv, id) != nil {
				return
			}
			continue
		}
		if err != nil || rec.State != StateQueued {
			return
		}
		if t.gate == GateClosed {
			return
		}
		if ok, _, err := r.turnWith(ctx, rec, t); err != nil || !ok {
			return
		}
		log := r.log.With().Str("message_id", rec.ID).Str("conversation_id", conv).Logger()
		d, err := r.deliver(ctx, rec, log)
		if err != nil {
			log.Debug().Err(err).Msg("chained delivery failed; the message's own task takes over")
			return
		}
		if err := r.settle(ctx, rec, d, nil, log); err != nil {
			return
		}
		// Its own task has nothing left to do (best effort: it may be running).
		r.dropDoneTask(rec.ID, rec.Gen)
	}
}

// settle records an attempt's outcome and tells asynq what to do next.
func (r *Relay) settle(ctx context.Context, rec *record, d delivery, err error, log zerolog.Logger) error {
	now := r.cfg.Now()
	k := kindOf(err)
	switch k {
	case kindOK:
		f := finish{state: StateDelivered, ticketID: d.ticketID, commentID: d.commentID}
		if err := r.st.finish(ctx, rec, f, now, r.cfg.Retention); err != nil {
			return fmt.Errorf("record delivery of %s: %w", rec.ID, err)
		}
		r.m.deliveries.WithLabelValues("delivered").Inc()
		log.Info().Int64("ticket_id", d.ticketID).Int64("comment_id", d.commentID).Int("attempt", rec.Attempts+1).Msg("message delivered")
		return r.tellOutcome(ctx, rec, f, now)
	case kindWait:
		return err
	case kindRateLimited:
		r.m.rateLimitWaits.Inc()
		r.m.deliveries.WithLabelValues("rate_limited").Inc()
		return err
	case kindUnauthorized, kindInvalid:
		reason := ReasonInvalid
		if k == kindUnauthorized {
			reason = ReasonUnauthorized
		}
		f := finish{state: StateFailed, reason: reason, lastError: r.errorText(err), ticketID: d.ticketID}
		if ferr := r.st.finish(ctx, rec, f, now, r.cfg.Retention); ferr != nil {
			return fmt.Errorf("record failure of %s: %w", rec.ID, ferr)
		}
		if k == kindUnauthorized {
			r.credentialsRejected(ctx)
		}
		r.m.deliveries.WithLabelValues("failed_" + reason).Inc()
		ev := log.Error()
		if ze := zendesk.AsError(err); ze != nil {
			ev = ev.Int("zendesk_status", ze.Status).Str("request_id", ze.RequestID)
		}
		ev.Err(err).Str("reason", reason).Msg("message failed; kept for deskrelay replay")
		if terr := r.tellOutcome(ctx, rec, f, now); terr != nil {
			return terr
		}
		return queues.Fail(reason, err)
	default:
		ze := zendesk.AsError(err)
		// The write mark stays: only write() knows whether the error was
		// the write's own (and clears it then); a failed check or read
		// proves nothing about an earlier write.
		if rerr := r.st.attemptFailed(ctx, rec.ID, r.errorText(err)); rerr != nil {
			log.Warn().Err(rerr).Msg("cannot record failed attempt")
		}
		r.m.deliveries.WithLabelValues("retry").Inc()
		ev := log.Warn().Err(err).Int("attempt", rec.Attempts+1)
		if ze != nil {
			ev = ev.Int("zendesk_status", ze.Status).Str("request_id", ze.RequestID).Bool("ambiguous", ze.Ambiguous)
		}
		ev.Msg("delivery attempt failed; will retry")
		return err
	}
}

// deliver makes one attempt at putting rec into Zendesk.
func (r *Relay) deliver(ctx context.Context, rec *record, log zerolog.Logger) (delivery, error) {
	cur, haveTicket, err := r.tickets.TicketOf(ctx, rec.Conv)
	if err != nil {
		return delivery{}, err
	}
	if rec.Write != "" {
		// An earlier attempt sent a write whose outcome is unknown (a
		// timeout, a cut connection, a crash): look before sending again.
		// When no answer came at all, Zendesk may still be working on it:
		// give it AmbiguousSettle before looking.
		if _, at, ok := strings.Cut(rec.Write, "@"); ok {
			if ms, err := strconv.ParseInt(at, 10, 64); err == nil {
				if left := r.cfg.AmbiguousSettle - r.cfg.Now().Sub(time.UnixMilli(ms)); left > 0 {
					return delivery{}, queues.Wait(left, errors.New("letting an unanswered write settle before checking it"))
				}
			}
		}
		d, found, err := r.findApplied(ctx, rec, cur, haveTicket)
		if err != nil {
			return delivery{}, fmt.Errorf("check earlier attempt of %s: %w", rec.ID, err)
		}
		if found {
			log.Info().Int64("ticket_id", d.ticketID).Msg("an earlier attempt was applied: not sending again")
			return d, nil
		}
	}
	if !haveTicket {
		t, open, err := r.refind(ctx, rec)
		switch {
		case err != nil:
			return delivery{}, err
		case t.ID == 0:
			return r.create(ctx, rec, 0, "create")
		case !open:
			log.Info().Int64("ticket_id", t.ID).Msg("the conversation's tickets are all closed: creating a follow-up ticket")
			return r.create(ctx, rec, t.ID, "followup")
		}
		log.Info().Int64("ticket_id", t.ID).Msg("conversation's ticket found again by external_id")
		cur = t.ID
	}
	d, err := r.comment(ctx, rec, cur)
	switch kindOf(err) {
	case kindClosed:
		if ze := zendesk.AsError(err); ze != nil && ze.CommentLimit() {
			// Zendesk makes follow-ups of closed tickets only: a new ticket.
			log.Info().Int64("ticket_id", cur).Msg("ticket holds the maximum of comments: moving the conversation to a new ticket")
			return r.create(ctx, rec, cur, "limit")
		}
		log.Info().Int64("ticket_id", cur).Msg("ticket closed: creating a follow-up ticket")
		return r.create(ctx, rec, cur, "followup")
	case kindNotFound:
		log.Warn().Int64("ticket_id", cur).Msg("ticket deleted: creating a new ticket for the conversation")
		return r.create(ctx, rec, cur, "replace")
	}
	return d, err
}

// refind looks for the ticket of a conversation deskrelay has no record of:
// a new one, or one whose record expired (Config.Retention). Its tickets
// carry the conversation id as external_id (follow-ups share it). The
// newest ticket not closed becomes the conversation's ticket again (open);
// when all are closed, t is the newest (a follow-up of it is due); with
// none (t.ID 0), the conversation is new.
func (r *Relay) refind(ctx context.Context, rec *record) (t zendesk.Ticket, open bool, err error) {
	list, err := zdCall(ctx, r, "list tickets by external_id", func(ctx context.Context) ([]zendesk.Ticket, error) {
		return r.zd.TicketsByExternalID(ctx, rec.Conv)
	})
	if err != nil {
		return t, false, fmt.Errorf("conversation %s: %w", rec.Conv, err)
	}
	if len(list) == 0 {
		return t, false, nil
	}
	slices.SortFunc(list, func(a, b zendesk.Ticket) int { return cmp.Compare(b.ID, a.ID) }) // newest first
	for _, c := range list {
		if c.Status != "closed" {
			if err := r.adopt(ctx, rec.Conv, c, 0); err != nil {
				return t, false, err
			}
			return c, true, nil
		}
	}
	return list[0], false, nil
}

// write sends one Zendesk write: it takes the rate budget, marks the record
// (so that a retry checks Zendesk first), and clears the mark when the
// write certainly was not applied.
func write[T any](ctx context.Context, r *Relay, rec *record, op string, pre func() error, f func(context.Context) (T, error)) (T, error) {
	var zero T
	if r.zd == nil {
		return zero, errNoZendesk
	}
	if err := r.limit(ctx); err != nil {
		return zero, err
	}
	if pre != nil {
		if err := pre(); err != nil {
			return zero, err
		}
	}
	if err := stillHeld(ctx); err != nil {
		return zero, err
	}
	if err := r.st.markWrite(ctx, rec.ID, op); err != nil {
		return zero, err
	}
	v, err := f(ctx)
	budget.Pause429(ctx, r.lim, err)
	r.observe(op, err)
	if err != nil {
		switch ze := zendesk.AsError(err); {
		case ze != nil && !ze.Ambiguous && ze.Status != 0:
			// Zendesk answered and did not apply it.
			_ = r.st.clearWrite(ctx, rec.ID)
		case ze != nil && ze.Ambiguous && ze.Status == 0:
			// No answer at all: note when, so that the check waits.
			_ = r.st.markWrite(context.WithoutCancel(ctx), rec.ID, op+"@"+strconv.FormatInt(r.cfg.Now().UnixMilli(), 10))
		}
		return zero, fmt.Errorf("%s: %w", op, err)
	}
	return v, nil
}

// create opens a ticket for the conversation: its first, a follow-up of a
// closed ticket (prev, why "followup"), the successor of a ticket at its
// maximum of comments ("limit"), or a replacement of a deleted one.
func (r *Relay) create(ctx context.Context, rec *record, prev int64, why string) (delivery, error) {
	nt, key := newTicket(rec, prev, why)
	if nt.Requester == nil {
		uid, err := r.userByExternalID(ctx, rec.Msg.Author)
		if err != nil {
			return delivery{}, err
		}
		nt.RequesterID = uid
	}
	tw, err := write(ctx, r, rec, "create ticket", nil, func(ctx context.Context) (*zendesk.TicketWrite, error) {
		return r.zd.CreateTicket(ctx, nt, key)
	})
	if err != nil {
		return delivery{}, fmt.Errorf("conversation %s: %w", rec.Conv, err)
	}
	d := delivery{ticketID: tw.Ticket.ID, commentID: tw.CommentID()}
	if err := r.adopt(ctx, rec.Conv, tw.Ticket, d.commentID); err != nil {
		return d, err
	}
	return d, nil
}

// newTicket is the ticket creation request for rec and its Idempotency-Key
// (see create); a requester known by external id only is left to the caller.
func newTicket(rec *record, prev int64, why string) (zendesk.NewTicket, string) {
	m := &rec.Msg
	nt := zendesk.NewTicket{
		Subject:      m.ticketSubject(),
		Comment:      zendesk.CommentInput{Body: m.Body, Public: true},
		ExternalID:   rec.Conv,
		Tags:         ticketTags(m.Tags),
		CustomFields: m.CustomFields,
		Metadata:     map[string]any{MetadataKey: rec.ID},
	}
	if why == "followup" {
		nt.ViaFollowupSourceID = prev
	}
	if m.Author.Email != "" {
		nt.Requester = &zendesk.Requester{Name: m.Author.Name, Email: m.Author.Email}
	}
	key := rec.ID
	if prev != 0 {
		key = rec.ID + ":" + why + ":" + strconv.FormatInt(prev, 10)
	}
	return nt, key
}

// comment adds rec as a public comment by the requester to ticket.
func (r *Relay) comment(ctx context.Context, rec *record, ticket int64) (delivery, error) {
	author, err := r.requesterOf(ctx, ticket)
	if err != nil {
		return delivery{}, err
	}
	u := zendesk.TicketUpdate{
		Comment:  &zendesk.CommentInput{Body: rec.Msg.Body, Public: true, AuthorID: author},
		Metadata: map[string]any{MetadataKey: rec.ID},
	}
	perTicket := func() error {
		ok, d, err := r.lim.AllowUpdate(ctx, r.cfg.UpdateRateLimit)
		if err == nil && ok {
			ok, d, err = r.lim.AllowTicketUpdate(ctx, ticket, r.cfg.TicketUpdateLimit, r.cfg.TicketUpdateWindow)
		}
		if err != nil {
			return err
		}
		if !ok {
			r.m.rateLimitWaits.Inc()
			return queues.Wait(jitter(d), fmt.Errorf("ticket %d: Zendesk's update limit", ticket))
		}
		return nil
	}
	tw, err := write(ctx, r, rec, "update ticket", perTicket, func(ctx context.Context) (*zendesk.TicketWrite, error) {
		return r.zd.UpdateTicket(ctx, ticket, u)
	})
	if err != nil {
		return delivery{ticketID: ticket}, fmt.Errorf("ticket %d: %w", ticket, err)
	}
	d := delivery{ticketID: ticket, commentID: tw.CommentID()}
	if err := r.tickets.RememberOwnComment(ctx, d.commentID); err != nil {
		return d, err
	}
	return d, nil
}

// findApplied looks in Zendesk for an earlier attempt's write of rec: an
// audit of one of the conversation's tickets whose custom metadata carries
// the message id (a ticket creation or a comment).
func (r *Relay) findApplied(ctx context.Context, rec *record, cur int64, haveTicket bool) (delivery, bool, error) {
	list, err := zdCall(ctx, r, "list tickets by external_id", func(ctx context.Context) ([]zendesk.Ticket, error) {
		return r.zd.TicketsByExternalID(ctx, rec.Conv)
	})
	if err != nil {
		return delivery{}, false, err
	}
	if haveTicket && !slices.ContainsFunc(list, func(t zendesk.Ticket) bool { return t.ID == cur }) {
		list = append(list, zendesk.Ticket{ID: cur})
	}
	slices.SortFunc(list, func(a, b zendesk.Ticket) int { return cmp.Compare(b.ID, a.ID) }) // newest first
	for _, t := range list {
		audits, err := zdCall(ctx, r, "list audits", func(ctx context.Context) ([]zendesk.Audit, error) {
			return r.zd.ListAudits(ctx, t.ID)
		})
		if kindOf(err) == kindNotFound {
			continue
		}
		if err != nil {
			return delivery{}, false, err
		}
		for _, a := range audits {
			if a.Metadata.CustomString(MetadataKey) != rec.ID {
				continue
			}
			d := delivery{ticketID: t.ID}
			for _, ev := range a.Events {
				if ev.Type == "Comment" {
					d.commentID = ev.ID
					break
				}
			}
			if !haveTicket || t.ID != cur {
				// It was a ticket creation: adopt the ticket.
				if t.RequesterID == 0 {
					if full, err := zdCall(ctx, r, "show ticket", func(ctx context.Context) (*zendesk.Ticket, error) {
						return r.zd.GetTicket(ctx, t.ID)
					}); err == nil {
						t = *full
					}
				}
				if err := r.adopt(ctx, rec.Conv, t, d.commentID); err != nil {
					return d, false, err
				}
			} else if err := r.tickets.RememberOwnComment(ctx, d.commentID); err != nil {
				return d, false, err
			}
			return d, true, nil
		}
	}
	return delivery{}, false, nil
}

// adopt makes ticket the conversation's ticket.
func (r *Relay) adopt(ctx context.Context, conv string, t zendesk.Ticket, commentID int64) error {
	if t.RequesterID != 0 {
		if err := r.rdb.Set(ctx, r.space.TicketRequester(t.ID), t.RequesterID, r.cfg.Retention).Err(); err != nil {
			return fmt.Errorf("remember requester of ticket %d: %w", t.ID, err)
		}
	}
	if err := r.tickets.RememberOwnComment(ctx, commentID); err != nil {
		return err
	}
	return r.tickets.Link(ctx, conv, t.ID)
}

// requesterOf returns a ticket's requester, the author of the comments
// deskrelay adds to it.
func (r *Relay) requesterOf(ctx context.Context, ticket int64) (int64, error) {
	id, err := r.rdb.Get(ctx, r.space.TicketRequester(ticket)).Int64()
	if err == nil && id != 0 {
		return id, nil
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("requester of ticket %d: %w", ticket, err)
	}
	t, err := zdCall(ctx, r, "show ticket", func(ctx context.Context) (*zendesk.Ticket, error) {
		return r.zd.GetTicket(ctx, ticket)
	})
	if err != nil {
		return 0, err
	}
	if t.RequesterID != 0 {
		if err := r.rdb.Set(ctx, r.space.TicketRequester(ticket), t.RequesterID, r.cfg.Retention).Err(); err != nil {
			return 0, fmt.Errorf("remember requester of ticket %d: %w", ticket, err)
		}
	}
	return t.RequesterID, nil
}

// userByExternalID finds or creates the end user known only by the
// platform's id (Zendesk limits create_or_update per user: cached).
func (r *Relay) userByExternalID(ctx context.Context, a Author) (int64, error) {
	id, err := r.rdb.GetEx(ctx, r.space.UserByExternalID(a.ID), r.cfg.Retention).Int64()
	if err == nil && id != 0 {
		return id, nil
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("user %s: %w", a.ID, err)
	}
	u, err := zdCall(ctx, r, "create or update user", func(ctx context.Context) (*zendesk.User, error) {
		return r.zd.CreateOrUpdateUser(ctx, zendesk.UserInput{Name: a.Name, ExternalID: a.ID, Role: "end-user"})
	})
	if err != nil {
		return 0, err
	}
	if u.ID == nil {
		return 0, fmt.Errorf("create or update user %s: Zendesk returned no user id", a.ID)
	}
	if err := r.rdb.Set(ctx, r.space.UserByExternalID(a.ID), *u.ID, r.cfg.Retention).Err(); err != nil {
		return 0, fmt.Errorf("remember user %s: %w", a.ID, err)
	}
	return *u.ID, nil
}

func ticketTags(tags []string) []string {
	out := []string{TagDeskrelay}
	for _, t := range tags {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}
