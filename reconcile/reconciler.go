package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/tickets"
	"github.com/deskrelay/deskrelay/zendesk"
)

// ErrBusy is returned by RunOnce when another run (on this or another
// replica) holds the lease.
var ErrBusy = errors.New("reconcile: another run holds the lease")

// errLeaseLost is the cause of a run's cancellation when its lease expired
// and could not be renewed.
var errLeaseLost = errors.New("reconcile: lease lost")

// Reconciler reads Zendesk's incremental ticket events and publishes what
// the webhook path did not deliver. Safe for concurrent use; scheduled runs
// are serialised by a lease in Redis.
type Reconciler struct {
	cfg      Config
	rdb      redis.UniversalClient
	zd       Zendesk
	pub      Publisher
	tickets  Tickets
	limiter  Limiter
	receiver Receiver
	log      zerolog.Logger
	m        *metrics
	users    *userCache
	client   *asynq.Client
	guardian *Guardian
	im       *invMetrics
}

// Options adjust a Backfill.
type Options struct {
	// DryRun reports what would be enqueued and changes nothing: no ledger
	// entry, no task, no checkpoint.
	DryRun bool
	// Progress, when set, receives one line per page read.
	Progress io.Writer
}

// New returns a Reconciler, or an error naming the bad setting.
func New(cfg Config, deps Deps) (*Reconciler, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := deps.validate(); err != nil {
		return nil, err
	}
	r := &Reconciler{
		cfg:      cfg,
		rdb:      deps.Redis,
		zd:       deps.Zendesk,
		pub:      deps.Publisher,
		tickets:  deps.Tickets,
		limiter:  deps.Limiter,
		receiver: deps.Receiver,
		log:      deps.Log.With().Str("component", "reconcile").Logger(),
		users:    newUserCache(),
		client:   asynq.NewClientFromRedisClient(deps.Redis),
	}
	if r.tickets == nil {
		r.tickets = tickets.New(deps.Redis)
	}
	if r.receiver == nil {
		r.receiver = redisReceiver{rdb: deps.Redis}
	}
	m, err := newMetrics(deps.Metrics, r)
	if err != nil {
		return nil, err
	}
	r.m = m
	if r.im, err = newInvMetrics(deps.Metrics); err != nil {
		return nil, err
	}
	r.guardian = &Guardian{r: r}
	return r, nil
}

// Close releases the asynq client (not the Redis client).
func (r *Reconciler) Close() error { return r.client.Close() }

// Guardian returns the webhook guardian (`deskrelay webhook status|enable`).
func (r *Reconciler) Guardian() *Guardian { return r.guardian }

// Config returns the configuration in effect, defaults applied.
func (r *Reconciler) Config() Config { return r.cfg }

// Backfill reconciles an explicit window, independently of the scheduled
// checkpoint (`deskrelay reconcile --since … [--until …] [--dry-run]`). A
// zero Until means as recent as the export allows. The error wraps
// ErrBadWindow for a bad window; the report says how far it got otherwise.
func (r *Reconciler) Backfill(ctx context.Context, w Window, opts Options) (Report, error) {
	w, err := w.check(r.cfg.Now(), r.cfg.Lag)
	if err != nil {
		return Report{Window: w, DryRun: opts.DryRun}, err
	}
	rep, err := r.scan(ctx, w, scanOptions{dry: opts.DryRun, progress: opts.Progress})
	if err == nil {
		r.log.Info().Time("since", w.Since).Time("until", w.Until).Bool("dry_run", opts.DryRun).
			Int("events_found", rep.EventsFound).Int("enqueued", rep.Enqueued).Int("already_delivered", rep.AlreadyDelivered).
			Int("zendesk_requests", rep.ZendeskRequests).Msg("backfill done")
	}
	return rep, err
}

// RunOnce is one scheduled run: it takes the lease (ErrBusy when another
// run holds it), lets the guardian check the webhook, reads the export from
// the checkpoint (or from a gap the guardian rewound to) up to now − Lag,
// and moves the checkpoint after each page whose events are durable.
func (r *Reconciler) RunOnce(ctx context.Context) (Report, error) {
	l, err := r.acquire(ctx)
	if err != nil {
		r.m.run("error")
		return Report{}, err
	}
	if l == nil {
		r.m.run("busy")
		return Report{}, ErrBusy
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := l.keep(ctx, cancel)
	defer func() {
		stop()
		r.release(l)
	}()

	b := &budget{}
	if _, gerr := r.guardian.check(ctx, b); gerr != nil && ctx.Err() == nil {
		r.log.Warn().Err(gerr).Msg("webhook guardian check failed")
	}

	rep, err := r.runFrom(ctx, l, b)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && errors.Is(cause, errLeaseLost) {
			err = fmt.Errorf("%w: %w", cause, err)
		}
		rep.Errors = append(rep.Errors, err.Error())
		r.m.run("error")
	} else {
		r.m.run("ok")
	}
	r.saveLastRun(rep)
	return rep, err
}

func (r *Reconciler) runFrom(ctx context.Context, l *lease, b *budget) (Report, error) {
	now := r.cfg.Now()
	until := now.Add(-r.cfg.Lag).Truncate(time.Second).UTC()
	cp, ok, err := r.Checkpoint(ctx)
	if err != nil {
		return Report{}, err
	}
	if !ok {
		cp = until.Add(-r.cfg.InitialLookback)
	}
	start := cp
	rewind, hasRewind, err := r.readUnix(ctx, keys.ReconcileRewind)
	if err != nil {
		return Report{}, err
	}
	if hasRewind && rewind.Before(start) {
		start = rewind
		r.log.Info().Time("since", rewind).Time("checkpoint", cp).Msg("reconcile: covering the gap the guardian found")
	}
	w := Window{Since: start.UTC(), Until: until}
	if !w.Since.Before(w.Until) {
		rep := Report{Window: w, Complete: true, Checkpoint: cp, StartedAt: now}
		rep.ZendeskRequests, rep.RateLimited, rep.RateLimitWait = b.snapshot()
		return rep, nil
	}
	rep, err := r.scan(ctx, w, scanOptions{budget: b, lease: l, onPage: func(ctx context.Context, at time.Time) error {
		return r.advance(ctx, l, at)
	}})
	if c, ok, cerr := r.Checkpoint(context.WithoutCancel(ctx)); cerr == nil && ok {
		rep.Checkpoint = c
	}
	if err != nil {
		return rep, err
	}
	if hasRewind {
		if err := compareAndDelete.Run(ctx, r.rdb, []string{keys.ReconcileRewind}, strconv.FormatInt(rewind.Unix(), 10)).Err(); err != nil {
			return rep, fmt.Errorf("clear rewind: %w", err)
		}
	}
	return rep, nil
}

// Checkpoint returns the scheduled checkpoint: every event before it has
// been published. ok is false when no run has set one yet.
func (r *Reconciler) Checkpoint(ctx context.Context) (time.Time, bool, error) {
	return r.readUnix(ctx, keys.ReconcileCheckpoint)
}

func (r *Reconciler) readUnix(ctx context.Context, key string) (time.Time, bool, error) {
	v, err := r.rdb.Get(ctx, key).Int64()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read %s: %w", key, err)
	}
	return time.Unix(v, 0).UTC(), true, nil
}

// advanceScript moves the checkpoint forward to ARGV[2] if the lease still
// holds token ARGV[1]; -1 when the lease is lost.
var advanceScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local cur = tonumber(redis.call('GET', KEYS[2]) or '-1')
if cur >= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
return 1`)

func (r *Reconciler) advance(ctx context.Context, l *lease, at time.Time) error {
	n, err := advanceScript.Run(ctx, r.rdb, []string{keys.ReconcileLease, keys.ReconcileCheckpoint}, l.token, at.Unix()).Int()
	if err != nil {
		return fmt.Errorf("move checkpoint: %w", err)
	}
	if n < 0 {
		return errLeaseLost
	}
	r.m.checkpoint(at)
	return nil
}

// scanOptions say what a scan does besides reading.
type scanOptions struct {
	dry      bool
	progress io.Writer
	// onPage is called after a page's events are durable with the instant
	// before which every event of the window has been published.
	onPage func(ctx context.Context, at time.Time) error
	// budget counts the requests and waits (a new one when nil).
	budget *budget
	// lease is the scheduled run's: the invocations checkpoint moves under
	// it (nil for Backfill, which has none).
	lease *lease
}

// scan reads the export over w and publishes (or checks) the events.
func (r *Reconciler) scan(ctx context.Context, w Window, o scanOptions) (Report, error) {
	started := time.Now()
	if o.budget == nil {
		o.budget = &budget{}
	}
	ru := &runState{
		r: r, dry: o.dry, b: o.budget,
		rep:     Report{Window: w, DryRun: o.dry, StartedAt: started.UTC(), Filtered: map[string]int{}},
		managed: map[int64]bool{},
		status:  map[int64]string{},
		sim:     map[int64]simStatus{},
	}
	var ierr error
	if r.cfg.WebhookID != "" && !r.cfg.Invocations.Disabled {
		// first the webhook's own record of what it failed to deliver
		// (invocations.go), then the export: the ledger drops what both
		// find; a failure here is reported, and the export still runs
		ierr = r.invocationStep(ctx, ru, w, o)
	}
	err := r.walk(ctx, ru, w, o)
	rep := ru.report()
	rep.Duration = time.Since(started)
	if err != nil {
		rep.Errors = append(rep.Errors, err.Error())
	}
	if ierr != nil {
		rep.Errors = append(rep.Errors, ierr.Error())
	}
	r.m.report(rep)
	return rep, err
}

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
	cm.Author.Name, cm.Author.Role = u.name, u.role
	return cm, nil
}

// runState is one scan's counters and caches.
type runState struct {
	r   *Reconciler
	dry bool
	b   *budget

	mu      sync.Mutex
	rep     Report
	managed map[int64]bool
	status  map[int64]string
	sim     map[int64]simStatus // dry run: the ticket's last status as the real run would have recorded it
	dryIDs  map[string]bool     // dry run: the events this run would have enqueued (invocations.go)
}

type simStatus struct {
	status string
	at     int64
}

func (ru *runState) report() Report {
	ru.mu.Lock()
	rep := ru.rep
	ru.mu.Unlock()
	rep.ZendeskRequests, rep.RateLimited, rep.RateLimitWait = ru.b.snapshot()
	rep.FromTicketEvents = rep.Enqueued - rep.FromInvocations
	if len(rep.Filtered) == 0 {
		rep.Filtered = nil
	}
	return rep
}

func (ru *runState) progress(w io.Writer, upTo time.Time) {
	rep := ru.report()
	fmt.Fprintf(w, "page %d: events up to %s; tickets scanned %d (not ours %d); events found %d, already delivered %d, %s %d; zendesk requests %d, waited %s\n",
		rep.Pages, upTo.Format(time.RFC3339), rep.TicketsScanned, rep.TicketsSkipped, rep.EventsFound, rep.AlreadyDelivered,
		map[bool]string{true: "would enqueue", false: "enqueued"}[ru.dry], rep.Enqueued, rep.ZendeskRequests, rep.RateLimitWait.Round(time.Millisecond))
}

func (ru *runState) isManaged(ctx context.Context, ticketID int64) (bool, error) {
	ru.mu.Lock()
	m, ok := ru.managed[ticketID]
	ru.mu.Unlock()
	if ok {
		return m, nil
	}
	_, m, err := ru.r.tickets.ConversationOf(ctx, ticketID)
	if err != nil {
		return false, err
	}
	ru.mu.Lock()
	defer ru.mu.Unlock()
	if _, ok := ru.managed[ticketID]; !ok {
		ru.managed[ticketID] = m
		ru.rep.TicketsScanned++
		if !m {
			ru.rep.TicketsSkipped++
		}
	}
	return m, nil
}

func (ru *runState) lastStatus(ticketID int64) string {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	return ru.status[ticketID]
}

func (ru *runState) setStatus(ticketID int64, s string) {
	if s == "" {
		return
	}
	ru.mu.Lock()
	ru.status[ticketID] = s
	ru.mu.Unlock()
}

// publish hands one event to the Publisher (Check in a dry run) and counts
// the outcome.
func (ru *runState) publish(ctx context.Context, ev events.Event) error {
	var out events.Outcome
	var err error
	if ru.dry {
		out, err = ru.check(ctx, ev)
		if err == nil {
			out = ru.dryOnce(out)
		}
	} else {
		out, err = ru.r.pub.Publish(ctx, ev)
	}
	if err != nil {
		return fmt.Errorf("publish %s: %w", ev.ID, err)
	}
	if out.Result == events.ResultSkipped && (out.Reason == events.SkipStatusUnchanged || out.Reason == events.SkipStatusStale) {
		// the status gate answers before the ledger: a change the webhook
		// delivered is "already delivered", not filtered
		seen, err := ru.r.pub.Ledger().Seen(ctx, ev.ID)
		if err != nil {
			return fmt.Errorf("publish %s: %w", ev.ID, err)
		}
		if seen {
			out.Result, out.Reason = events.ResultDuplicate, "ledger"
		}
	}
	ru.mu.Lock()
	defer ru.mu.Unlock()
	ru.rep.EventsFound++
	switch out.Result {
	case events.ResultEnqueued:
		ru.rep.Enqueued++
		ru.r.log.Debug().Int64("ticket_id", ev.TicketID).Str("event_id", ev.ID).Bool("dry_run", ru.dry).Msg("reconcile: missing event enqueued")
	case events.ResultDuplicate:
		ru.rep.AlreadyDelivered++
	default:
		ru.rep.Filtered[out.Reason]++
	}
	return nil
}

// check is the dry run's Publish: the Publisher's Check, plus, for status
// changes, the ticket's last status as the events before it in this run
// would have recorded it (Check alone sees only what Redis holds).
func (ru *runState) check(ctx context.Context, ev events.Event) (events.Outcome, error) {
	out, err := ru.r.pub.Check(ctx, ev)
	if err != nil || ev.Type != events.TypeStatusChanged || out.Reason == events.SkipUnmanaged {
		return out, err
	}
	at := ev.OccurredAt.Unix()
	ru.mu.Lock()
	prev, ok := ru.sim[ev.TicketID]
	ru.mu.Unlock()
	if ok {
		skip := func(reason string) events.Outcome {
			return events.Outcome{Result: events.ResultSkipped, Reason: reason, Event: out.Event}
		}
		switch {
		case at < prev.at:
			out = skip(events.SkipStatusStale)
		case ev.Status == prev.status:
			out = skip(events.SkipStatusUnchanged)
		case ev.Status == "new":
			out = skip(events.SkipStatusInitial)
		case out.Result == events.ResultSkipped:
			seen, err := ru.r.pub.Ledger().Seen(ctx, ev.ID)
			if err != nil {
				return out, err
			}
			if seen {
				out = events.Outcome{Result: events.ResultDuplicate, Reason: "ledger", Event: out.Event}
			} else {
				out = events.Outcome{Result: events.ResultEnqueued, Event: out.Event}
			}
		}
	}
	next, set := prev, false
	switch {
	case out.Result == events.ResultEnqueued:
		next, set = simStatus{ev.Status, at}, true
	case out.Reason == events.SkipStatusUnchanged && at > prev.at:
		next, set = simStatus{ev.Status, at}, true
	case out.Reason == events.SkipStatusInitial:
		next, set = simStatus{ev.Status, at}, true
	}
	if set {
		ru.mu.Lock()
		ru.sim[ev.TicketID] = next
		ru.mu.Unlock()
	}
	return out, nil
}

// userInfo is what the reconciler needs of a comment's author.
type userInfo struct {
	name, role string
}

// userCache remembers authors across runs (agents are few).
type userCache struct {
	mu      sync.Mutex
	m       map[int64]userInfo
	pending map[int64]*sync.Mutex
}

const maxCachedUsers = 10000

func newUserCache() *userCache {
	return &userCache{m: map[int64]userInfo{}, pending: map[int64]*sync.Mutex{}}
}

// lock serialises the lookups of one user.
func (c *userCache) lock(id int64) (unlock func()) {
	c.mu.Lock()
	l, ok := c.pending[id]
	if !ok {
		l = &sync.Mutex{}
		c.pending[id] = l
	}
	c.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		c.mu.Lock()
		if c.pending[id] == l {
			delete(c.pending, id)
		}
		c.mu.Unlock()
	}
}

func (c *userCache) get(id int64) (userInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.m[id]
	return u, ok
}

func (c *userCache) put(id int64, u userInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedUsers {
		clear(c.m)
	}
	c.m[id] = u
}

func (r *Reconciler) user(ctx context.Context, ru *runState, id int64) (userInfo, error) {
	if u, ok := r.users.get(id); ok {
		return u, nil
	}
	// one lookup per user at a time: tickets of a page run in parallel
	unlock := r.users.lock(id)
	defer unlock()
	if u, ok := r.users.get(id); ok {
		return u, nil
	}
	zu, err := call(ctx, r, ru.b, false, func(ctx context.Context) (*zendesk.User, error) {
		return r.zd.GetUser(ctx, id)
	})
	if zendesk.KindOf(err) == zendesk.KindNotFound {
		u := userInfo{role: events.RoleEndUser} // deleted user: not staff any more
		r.users.put(id, u)
		return u, nil
	}
	if err != nil {
		return userInfo{}, fmt.Errorf("look up author %d: %w", id, err)
	}
	u := userInfo{name: zu.Name, role: events.RoleEndUser}
	if zu.Role == "agent" || zu.Role == "admin" {
		u.role = events.RoleAgent
	}
	r.users.put(id, u)
	return u, nil
}
