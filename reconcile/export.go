package reconcile

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/zendesk"
)

// walk reads the incremental ticket events export over w page by page,
// publishes each page's events, and after each page calls o.onPage with
// the instant before which every event of w has been published.
func (r *Reconciler) walk(ctx context.Context, ru *runState, w Window, o scanOptions) error {
	seen := map[int64]int64{} // export item id -> timestamp, for page-boundary repeats
	cur := w.Since.Unix()
	until := w.Until.Unix()
	for {
		page, err := call(ctx, r, ru.b, true, func(ctx context.Context) (*zendesk.TicketEventsPage, error) {
			return r.zd.TicketEvents(ctx, time.Unix(cur, 0))
		})
		if err != nil {
			return fmt.Errorf("read ticket events from %s: %w", time.Unix(cur, 0).UTC().Format(time.RFC3339), err)
		}
		var kept []zendesk.TicketEvent
		for _, ev := range page.Events {
			ts := eventUnix(ev)
			if _, dup := seen[ev.ID]; dup || ts < w.Since.Unix() || ts >= until {
				continue
			}
			kept = append(kept, ev)
		}
		next := page.EndTime
		if next == 0 && page.NextPage != "" {
			next = startTimeOf(page.NextPage)
		}
		for _, ev := range kept {
			seen[ev.ID] = eventUnix(ev)
		}
		for id, ts := range seen {
			if ts < next {
				delete(seen, id)
			}
		}
		if err := r.publishPage(ctx, ru, kept); err != nil {
			return err
		}
		done := page.EndOfStream || next >= until
		ru.mu.Lock()
		ru.rep.Pages++
		ru.rep.TicketEvents += len(kept)
		ru.mu.Unlock()
		cp := time.Unix(min(next, until), 0).UTC()
		if done {
			cp = w.Until
		}
		if o.progress != nil {
			ru.progress(o.progress, cp)
		}
		if o.onPage != nil && !o.dry {
			if err := o.onPage(ctx, cp); err != nil {
				return err
			}
		}
		if done {
			ru.mu.Lock()
			ru.rep.Complete = true
			ru.mu.Unlock()
			return nil
		}
		if next <= cur {
			return fmt.Errorf("read ticket events: the export does not advance past start_time %d", cur)
		}
		cur = next
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
	}
}

func eventUnix(ev zendesk.TicketEvent) int64 {
	if ev.Timestamp != 0 {
		return ev.Timestamp
	}
	return ev.CreatedAt.Unix()
}

// startTimeOf returns the start_time query parameter of a next_page URL.
func startTimeOf(next string) int64 {
	i := 0
	for i < len(next) && next[i] != '?' {
		i++
	}
	q := next[min(i+1, len(next)):]
	for q != "" {
		var kv string
		kv, q, _ = cut(q, '&')
		if k, v, ok := cut(kv, '='); ok && k == "start_time" {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

func cut(s string, sep byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// publishPage publishes a page's events: tickets in parallel, the events of
// one ticket in order.
func (r *Reconciler) publishPage(ctx context.Context, ru *runState, page []zendesk.TicketEvent) error {
	var order []int64
	byTicket := map[int64][]zendesk.TicketEvent{}
	for _, ev := range page {
		if _, ok := byTicket[ev.TicketID]; !ok {
			order = append(order, ev.TicketID)
		}
		byTicket[ev.TicketID] = append(byTicket[ev.TicketID], ev)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.Concurrency)
	for _, id := range order {
		evs := byTicket[id]
		g.Go(func() error { return r.publishTicket(gctx, ru, id, evs) })
	}
	return g.Wait()
}

func (r *Reconciler) publishTicket(ctx context.Context, ru *runState, ticketID int64, evs []zendesk.TicketEvent) error {
	managed, err := ru.isManaged(ctx, ticketID)
	if err != nil || !managed {
		return err
	}
	for _, ev := range evs {
		at := time.Unix(eventUnix(ev), 0).UTC()
		status := ru.lastStatus(ticketID)
		for _, c := range ev.ChildEvents {
			if c.EventType == "Change" && c.Status != "" {
				status = c.Status
			}
		}
		for _, c := range ev.ChildEvents {
			var e events.Event
			switch {
			case c.EventType == "Comment" || (c.EventType == "" && c.Body != ""):
				cm, err := r.comment(ctx, ru, ev, c, at)
				if err != nil {
					return err
				}
				e = events.NewCommentEvent(ticketID, status, cm, events.SourceReconcile)
			case c.EventType == "Change" && c.Status != "":
				e = events.NewStatusEvent(ticketID, c.Status, at, events.SourceReconcile)
			default:
				continue
			}
			if err := ru.publish(ctx, e); err != nil {
				return err
			}
		}
		ru.setStatus(ticketID, status)
	}
	return nil
}

// comment builds the comment of a child event; the author's role comes from
// the user (cached), unless deskrelay wrote the comment itself.
func (r *Reconciler) comment(ctx context.Context, ru *runState, ev zendesk.TicketEvent, c zendesk.ChildEvent, at time.Time) (events.Comment, error) {
	cm := events.Comment{ID: c.ID, Body: c.Body, HTMLBody: c.HTMLBody, CreatedAt: at}
	if c.Public != nil {
		cm.Public = *c.Public
	}
	if s, ok := c.Raw["created_at"].(string); ok {
		if t, err := events.ParseTime(s); err == nil {
			cm.CreatedAt = t
		}
	}
	author := c.AuthorID
	if author == 0 {
		author = ev.UpdaterID
	}
	cm.Author.ID = author
	own, err := r.tickets.IsOwnComment(ctx, c.ID)
	if err != nil {
		return cm, err
	}
	if own || author == 0 {
		cm.Author.Role = events.RoleEndUser
		return cm, nil
	}
	u, err := r.user(ctx, ru, author)
	if err != nil {
		return cm, err
	}
	cm.Author.Name, cm.Author.Role = u.Name, u.Role
	return cm, nil
}
