package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/zendesk"
)

// Kinds of watched endpoint.
const (
	KindWebhook = "webhook"
	KindTarget  = "target"
)

// Actions the guardian reports.
const (
	ActionNone      = "none"      // active, nothing to do
	ActionReenabled = "reenabled" // it was inactive and is active again
	ActionRefused   = "refused"   // inactive, but re-enabling is not safe (Reason says why)
	ActionObserved  = "observed"  // Status: looked, did nothing
	ActionReported  = "reported"  // an inactive webhook left off (Config.WebhookAutoEnable is false)
)

// Paths of deskrelay's receivers, appended to Config.PublicURL.
const (
	WebhookPath = "/v1/zendesk/webhook"
	TargetPath  = "/v1/zendesk/target"
)

// ErrRefused is wrapped by Enable's error when re-enabling is not safe.
var ErrRefused = errors.New("not re-enabled")

// WatchState is what the guardian knows of the webhook or target that
// calls deskrelay: `deskrelay webhook status` prints it and /v1/status
// shows the last one.
type WatchState struct {
	// Kind is "webhook", "target", or "" when none is configured.
	Kind string `json:"kind"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
	// State is "active", "inactive" or "unknown" (Zendesk did not answer).
	State    string `json:"state"`
	Endpoint string `json:"endpoint,omitempty"`
	// ExpectedEndpoint is Config.PublicURL + the receiver's path; empty
	// when it is not given (then any endpoint counts as ours).
	ExpectedEndpoint string `json:"expected_endpoint,omitempty"`
	Ours             bool   `json:"endpoint_is_ours"`
	// ConsecutiveFailures is the latest recent consecutive_failure_count of
	// a target (Zendesk deactivates it at 21).
	ConsecutiveFailures int `json:"consecutive_failures,omitempty"`
	// ReceiverHealthy is false when Zendesk's own record shows calls that
	// deskrelay answered 401 (SignatureRejections): a wrong secret.
	// ReceiverProblem says so for people.
	ReceiverHealthy bool   `json:"receiver_healthy"`
	ReceiverProblem string `json:"receiver_problem,omitempty"`
	// SignatureRejections is how many of Zendesk's calls deskrelay answered
	// 401 since RejectionsSince: the last verified call or the last time the
	// secret was read again (SecretReadAt), within Zendesk's record (a
	// webhook's invocations; a target's recent target_failures). Any stops
	// re-activation and, for a webhook, has the secret read again
	// (evidence.go).
	SignatureRejections int       `json:"signature_rejections"`
	RejectionsSince     time.Time `json:"rejections_since,omitzero"`
	SecretReadAt        time.Time `json:"secret_read_at,omitzero"`
	// LocalSignatureFailures is the receiver's own count of requests it
	// refused for their signature since the last good one. Anyone can send
	// those: shown, never a reason to refuse anything.
	LocalSignatureFailures int `json:"local_signature_failures,omitempty"`
	// AutoEnable is Config.WebhookAutoEnable: whether scheduled runs
	// re-activate an inactive webhook (a target always is).
	AutoEnable bool `json:"auto_enable"`
	// LastReceived is when the receiver last accepted a verified event.
	LastReceived time.Time `json:"last_received,omitzero"`
	// Action is what this check did; Reason explains a refusal or a warning.
	Action string `json:"action"`
	Reason string `json:"reason,omitempty"`
	// GapSince is the start of the gap the next run covers after a re-enable.
	GapSince  time.Time `json:"gap_since,omitzero"`
	CheckedAt time.Time `json:"checked_at"`
	// Reenables counts every re-enable so far (all replicas), the last at LastReenable.
	Reenables    int64     `json:"reenables"`
	LastReenable time.Time `json:"last_reenable,omitzero"`
	Error        string    `json:"error,omitempty"`

	// Breaker is the webhook's failure ratio over the last 5 minutes, from
	// its invocations: the early warning before Zendesk's circuit breaker
	// trips (breaker.go). Nil for a target.
	Breaker *BreakerState `json:"breaker,omitempty"`
}

// Guardian watches the webhook (or legacy target) that calls deskrelay.
type Guardian struct {
	r *Reconciler

	mu         sync.Mutex
	lastReread time.Time // the last RefreshSecret call (evidence.go)
}

// Status looks at the webhook or target in Zendesk and at the receiver's
// health, and changes nothing (`deskrelay webhook status`).
func (g *Guardian) Status(ctx context.Context) (WatchState, error) {
	b := &budget{}
	st, err := g.inspect(ctx, b)
	if st.Kind != "" {
		st.Action = ActionObserved
	}
	if err == nil && st.Kind == KindWebhook {
		st.Breaker = g.breaker(ctx, b) // the failure ratio, without logging or metrics
	}
	return st, err
}

// Enable re-activates the webhook or target when it is inactive, points
// to this deskrelay and Zendesk's record shows no call deskrelay answered
// 401 (whatever Config.WebhookAutoEnable says), and makes the next
// scheduled run cover the gap (`deskrelay webhook enable`). It returns an
// error wrapping ErrRefused, with the reason, when that is not safe; an
// active one is left alone (Action "none").
func (g *Guardian) Enable(ctx context.Context) (WatchState, error) {
	st, err := g.check(ctx, &budget{}, true)
	if err != nil {
		return st, err
	}
	if st.Action == ActionRefused {
		return st, fmt.Errorf("%s %s %w: %s", st.Kind, st.ID, ErrRefused, st.Reason)
	}
	return st, nil
}

// check is the guardian's step of a scheduled run (manual false) and of
// Enable (manual true): inspect, have the secret read again on evidence of
// a wrong one, and re-activate when that is safe and wanted.
func (g *Guardian) check(ctx context.Context, b *budget, manual bool) (WatchState, error) {
	r := g.r
	st, err := g.inspect(ctx, b)
	if err != nil || st.Kind == "" {
		if st.Kind != "" {
			g.save(st)
		}
		return st, err
	}
	log := r.log.With().Str("kind", st.Kind).Str("webhook_id", st.ID).Logger()
	if st.SignatureRejections > 0 {
		log.Error().Int("signature_rejections", st.SignatureRejections).Time("since", st.RejectionsSince).Msg(st.ReceiverProblem)
		g.rereadSecret(ctx, log, &st)
	}
	switch {
	case st.State == "active":
		g.checkActive(ctx, b, log, &st, !manual)
	case !st.Ours:
		st.Action = ActionRefused
		st.Reason = fmt.Sprintf("its endpoint %s is not this deskrelay's %s (DESKRELAY_PUBLIC_URL)", st.Endpoint, st.ExpectedEndpoint)
		log.Warn().Str("endpoint", st.Endpoint).Msg("zendesk " + st.Kind + " is inactive and not re-enabled: " + st.Reason)
	case !st.ReceiverHealthy:
		st.Action = ActionRefused
		st.Reason = st.ReceiverProblem
		log.Warn().Msg("zendesk " + st.Kind + " is inactive and not re-enabled: Zendesk's calls were answered 401")
	case st.Kind == KindWebhook && !manual && !r.cfg.WebhookAutoEnable:
		g.reportInactive(ctx, log, &st)
	default:
		if err := g.reenable(ctx, b, log, &st); err != nil {
			st.Error = err.Error()
			g.save(st)
			return st, fmt.Errorf("re-activate %s %s: %w", st.Kind, st.ID, err)
		}
	}
	if st.State == "active" {
		_ = r.rdb.HDel(ctx, r.space.ReconcileGuardian(), fieldInactiveLoggedAt).Err()
	}
	r.m.watched(st.Kind, st.State == "active", st.ConsecutiveFailures, st.SignatureRejections)
	g.save(st)
	return st, nil
}

// reportInactive leaves an inactive webhook off (Config.WebhookAutoEnable
// is false) and says so: a warning when it is first seen off, then every
// inactiveLogEvery; /v1/status and deskrelay_webhook_active always.
func (g *Guardian) reportInactive(ctx context.Context, log zerolog.Logger, st *WatchState) {
	st.Action = ActionReported
	st.Reason = "switched off in Zendesk by a person or an app (Zendesk never switches a webhook off for failures) and left off, since DESKRELAY_WEBHOOK_AUTO_ENABLE is false: " +
		"`deskrelay webhook enable` re-activates it; meanwhile every reconcile run backfills what it does not deliver"
	now := g.r.cfg.Now()
	h := g.r.space.ReconcileGuardian()
	if v, err := g.r.rdb.HGet(ctx, h, fieldInactiveLoggedAt).Int64(); err == nil && now.Sub(time.UnixMilli(v)) < inactiveLogEvery {
		return
	}
	log.Warn().Str("endpoint", st.Endpoint).Msg("zendesk webhook is inactive: " + st.Reason)
	if err := g.r.rdb.HSet(ctx, h, fieldInactiveLoggedAt, now.UnixMilli()).Err(); err != nil {
		log.Warn().Err(err).Msg("record the inactive webhook's warning")
	}
}

// checkActive looks at an active webhook's failure ratio (the breaker's
// early warning; a scheduled run takes the figures the breaker watch read
// in the current slot) and an active target's consecutive failures, and
// warns.
func (g *Guardian) checkActive(ctx context.Context, b *budget, log zerolog.Logger, st *WatchState, scheduled bool) {
	g.checkBreaker(ctx, b, log, st, scheduled)
	st.Action = ActionNone
	if st.ConsecutiveFailures >= g.r.cfg.FailureWarn {
		st.Reason = fmt.Sprintf("%d consecutive failed deliveries (Zendesk deactivates a target at 21)", st.ConsecutiveFailures)
		log.Warn().Int("consecutive_failures", st.ConsecutiveFailures).Msg("zendesk is failing to deliver to deskrelay: " + st.Reason)
	}
}

// reenable re-activates the inactive webhook or target, rewinds the next
// scheduled run to the start of the gap (gapSince) and counts the
// re-enable.
func (g *Guardian) reenable(ctx context.Context, b *budget, log zerolog.Logger, st *WatchState) error {
	r := g.r
	_, err := call(ctx, r, b, false, func(ctx context.Context) (struct{}, error) {
		if st.Kind == KindWebhook {
			return struct{}{}, r.zd.ActivateWebhook(ctx, st.ID)
		}
		id, _ := strconv.ParseInt(st.ID, 10, 64)
		return struct{}{}, r.zd.ActivateTarget(ctx, id)
	})
	if err != nil {
		return err
	}
	st.Action, st.State = ActionReenabled, "active"
	now := r.cfg.Now().UTC()
	if gap := g.gapSince(ctx, st.LastReceived, now); !gap.IsZero() {
		st.GapSince = gap
		if err := r.rewind(ctx, gap); err != nil {
			st.Error = err.Error()
		}
	}
	n, _ := r.rdb.HIncrBy(ctx, r.space.ReconcileGuardian(), "reenables", 1).Result()
	_ = r.rdb.HSet(ctx, r.space.ReconcileGuardian(), "last_reenable", now.Unix()).Err()
	st.Reenables, st.LastReenable = n, now
	r.m.reenabled(st.Kind)
	ev := log.Warn().Str("endpoint", st.Endpoint)
	if !st.GapSince.IsZero() {
		ev = ev.Time("gap_since", st.GapSince).Dur("gap_ms", now.Sub(st.GapSince).Round(time.Second))
	}
	ev.Msg("zendesk " + st.Kind + " was inactive: re-enabled; the next reconcile run covers the gap")
	return nil
}

// gapSince is where the next run goes back to after a re-enable: the last
// event the receiver got (the schedule's checkpoint when none ever
// arrived), at most MaxRewind back; zero when neither is known.
func (g *Guardian) gapSince(ctx context.Context, lastReceived, now time.Time) time.Time {
	gap := lastReceived
	if gap.IsZero() {
		gap, _, _ = g.r.Checkpoint(ctx)
	}
	if gap.IsZero() {
		return gap
	}
	if floor := now.Add(-g.r.cfg.MaxRewind); gap.Before(floor) {
		gap = floor
	}
	return gap.Truncate(time.Second)
}

// inspect reads the webhook or target and the receiver's health.
func (g *Guardian) inspect(ctx context.Context, b *budget) (WatchState, error) {
	r := g.r
	st := WatchState{CheckedAt: r.cfg.Now().UTC(), State: "unknown", ReceiverHealthy: true, Ours: true, AutoEnable: r.cfg.WebhookAutoEnable}
	switch {
	case r.cfg.WebhookID != "":
		st.Kind, st.ID = KindWebhook, r.cfg.WebhookID
	case r.cfg.TargetID != 0:
		st.Kind, st.ID = KindTarget, strconv.FormatInt(r.cfg.TargetID, 10)
	default:
		return st, nil
	}
	g.counters(ctx, &st)
	g.receiverHealth(ctx, &st)
	var err error
	var failures []zendesk.TargetFailure
	if st.Kind == KindWebhook {
		err = g.readWebhook(ctx, b, &st)
	} else {
		failures, err = g.readTarget(ctx, b, &st)
	}
	if err != nil {
		if zendesk.KindOf(err) == zendesk.KindNotFound {
			err = notFound(st.Kind, st.ID, err)
		} else {
			err = fmt.Errorf("check %s %s: %w", st.Kind, st.ID, err)
		}
		st.Error = err.Error()
		return st, err
	}
	g.rejections(ctx, b, &st, failures)
	if r.cfg.PublicURL != "" {
		path := WebhookPath
		if st.Kind == KindTarget {
			path = TargetPath
		}
		st.ExpectedEndpoint = r.cfg.PublicURL + path
		st.Ours = sameEndpoint(st.Endpoint, st.ExpectedEndpoint)
	}
	return st, nil
}

// receiverHealth reads when the receiver last got an event and, for a
// webhook, its own count of requests refused for their signature (shown
// only: anyone can send those).
func (g *Guardian) receiverHealth(ctx context.Context, st *WatchState) {
	r := g.r
	if last, err := r.receiver.LastReceived(ctx); err == nil {
		st.LastReceived = last
	}
	if st.Kind != KindWebhook {
		return
	}
	if n, err := r.receiver.SignatureFailures(ctx); err == nil {
		st.LocalSignatureFailures = n
	}
}

// readWebhook reads the webhook's name, endpoint and status.
func (g *Guardian) readWebhook(ctx context.Context, b *budget, st *WatchState) error {
	r := g.r
	wh, err := call(ctx, r, b, false, func(ctx context.Context) (*zendesk.Webhook, error) { return r.zd.GetWebhook(ctx, st.ID) })
	if err != nil {
		return err
	}
	st.Name, st.Endpoint = wh.Name, redactURL(wh.Endpoint)
	st.State = "inactive"
	if strings.EqualFold(wh.Status, "active") {
		st.State = "active"
	}
	return nil
}

// readTarget reads the target's title, URL and active flag, and its recent
// failures and consecutive failures (unknown failures are logged, not an
// error).
func (g *Guardian) readTarget(ctx context.Context, b *budget, st *WatchState) ([]zendesk.TargetFailure, error) {
	r := g.r
	t, err := call(ctx, r, b, false, func(ctx context.Context) (*zendesk.Target, error) { return r.zd.GetTarget(ctx, r.cfg.TargetID) })
	if err != nil {
		return nil, err
	}
	st.Name, st.Endpoint = t.Title, redactURL(t.TargetURL)
	st.State = "inactive"
	if t.Active {
		st.State = "active"
	}
	fails, err := call(ctx, r, b, false, func(ctx context.Context) ([]zendesk.TargetFailure, error) { return r.zd.TargetFailures(ctx) })
	if err != nil {
		r.log.Warn().Err(err).Msg("read target failures")
		return nil, nil
	}
	st.ConsecutiveFailures = latestFailures(fails, t.Title, st.CheckedAt, st.LastReenable)
	return fails, nil
}

// latestFailures is the consecutive failure count of the target's most
// recent failure in the last hour and since the last re-enable.
func latestFailures(fs []zendesk.TargetFailure, title string, now, since time.Time) int {
	var latest *zendesk.TargetFailure
	for i := range fs {
		f := &fs[i]
		if title != "" && f.TargetName != "" && f.TargetName != title {
			continue
		}
		if !f.CreatedAt.IsZero() && (f.CreatedAt.Before(now.Add(-time.Hour)) || f.CreatedAt.Before(since)) {
			continue
		}
		if latest == nil || f.CreatedAt.After(latest.CreatedAt) ||
			(f.CreatedAt.Equal(latest.CreatedAt) && f.ConsecutiveFailureCount > latest.ConsecutiveFailureCount) {
			latest = f
		}
	}
	if latest == nil {
		return 0
	}
	return latest.ConsecutiveFailureCount
}

// redactURL drops credentials embedded in a URL (https://user:pass@host/…):
// endpoints are logged and shown in /v1/status.
func redactURL(s string) string {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return "(unreadable URL)"
	}
	if u.User != nil {
		u.User = url.User("redacted")
	}
	return u.String()
}

// sameEndpoint compares two URLs by scheme, host (case-insensitive, default
// ports dropped) and path (trailing slash ignored).
func sameEndpoint(a, b string) bool {
	ua, err1 := url.Parse(strings.TrimSpace(a))
	ub, err2 := url.Parse(strings.TrimSpace(b))
	if err1 != nil || err2 != nil {
		return false
	}
	host := func(u *url.URL) string {
		h := strings.ToLower(u.Hostname())
		p := u.Port()
		if p == "" || (u.Scheme == "https" && p == "443") || (u.Scheme == "http" && p == "80") {
			return h
		}
		return h + ":" + p
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && host(ua) == host(ub) &&
		strings.TrimRight(ua.Path, "/") == strings.TrimRight(ub.Path, "/")
}

func (g *Guardian) counters(ctx context.Context, st *WatchState) {
	v, err := g.r.rdb.HMGet(ctx, g.r.space.ReconcileGuardian(), "reenables", "last_reenable").Result()
	if err != nil {
		return
	}
	if s, ok := v[0].(string); ok {
		st.Reenables, _ = strconv.ParseInt(s, 10, 64)
	}
	if s, ok := v[1].(string); ok {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			st.LastReenable = time.Unix(n, 0).UTC()
		}
	}
}

// save records the check for /v1/status on any replica.
func (g *Guardian) save(st WatchState) {
	b, err := json.Marshal(st)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := g.r.rdb.HSet(ctx, g.r.space.ReconcileGuardian(), "state", b).Err(); err != nil {
		g.r.log.Warn().Err(err).Msg("save guardian state")
	}
}

// LastCheck returns the last check any replica recorded (ok false: none).
func (g *Guardian) LastCheck(ctx context.Context) (WatchState, bool, error) {
	b, err := g.r.rdb.HGet(ctx, g.r.space.ReconcileGuardian(), "state").Bytes()
	if errors.Is(err, redis.Nil) {
		return WatchState{}, false, nil
	}
	if err != nil {
		return WatchState{}, false, fmt.Errorf("read guardian state: %w", err)
	}
	var st WatchState
	if err := json.Unmarshal(b, &st); err != nil {
		return WatchState{}, false, fmt.Errorf("read guardian state: %w", err)
	}
	g.counters(ctx, &st)
	return st, true, nil
}

// redisReceiver reads the receiver's health from the keys inbound writes.
type redisReceiver struct {
	rdb   redis.UniversalClient
	space keys.Space
}

func (r redisReceiver) LastReceived(ctx context.Context) (time.Time, error) {
	v, err := r.rdb.Get(ctx, r.space.WebhookLastReceived()).Int64()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read last webhook received: %w", err)
	}
	return time.UnixMilli(v).UTC(), nil
}

func (r redisReceiver) SignatureFailures(ctx context.Context) (int, error) {
	v, err := r.rdb.HGet(ctx, r.space.WebhookSignatureFailures(), "run").Int()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read webhook signature failures: %w", err)
	}
	return v, nil
}

// inactiveLogEvery is how often an inactive webhook left off is logged
// again while it stays so.
const inactiveLogEvery = time.Hour

// fieldInactiveLoggedAt (of Space.ReconcileGuardian) is when the
// inactive webhook was last logged (unix ms); gone while it is active.
const fieldInactiveLoggedAt = "inactive_logged_at"

// notFoundError is Zendesk's 404 for the watched webhook or target, said
// plainly: the id is wrong (or it was deleted), and the setting to check.
type notFoundError struct {
	msg string
	err error
}

func (e *notFoundError) Error() string { return e.msg }
func (e *notFoundError) Unwrap() error { return e.err }

func notFound(kind, id string, err error) error {
	setting := "DESKRELAY_ZENDESK_WEBHOOK_ID"
	if kind == KindTarget {
		setting = "DESKRELAY_ZENDESK_TARGET_ID"
	}
	msg := fmt.Sprintf("%s %s not found in Zendesk: check %s", kind, id, setting)
	var ze *zendesk.Error
	if errors.As(err, &ze) && ze.RequestID != "" {
		msg += " (request " + ze.RequestID + ")"
	}
	return &notFoundError{msg: msg, err: err}
}
