package inbound

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/sink"
	"github.com/deskrelay/deskrelay/internal/tickets"
	"github.com/deskrelay/deskrelay/internal/validate"
	"github.com/deskrelay/deskrelay/zendesk"
)

// Account is one Zendesk account's part of the inbound path: where its
// webhook and target come in (/v1/zendesk/webhook/{Name},
// /v1/zendesk/target/{Name}; the default account's also without a name),
// how they are checked, and what its events are published and resolved
// with. All its Redis keys are keys.For(Name)'s.
type Account struct {
	// Name is the account's name (validate.AccountName); "" is
	// keys.DefaultAccount.
	Name string
	// WebhookSecret is Zendesk's signing secret for the account's webhook.
	// Empty: Run reads it from Zendesk when WebhookID is set (the webhook
	// is answered 503 until then); without either the account's webhook
	// receiver is off and answers 404 (its target still works: it has no
	// signature).
	WebhookSecret string
	// WebhookID is the Zendesk webhook that calls deskrelay for the
	// account: its signing secret is read from Zendesk when WebhookSecret is
	// empty, and again on RefreshSecret.
	WebhookID string
	// TargetUser and TargetPassword are the basic-auth login of the
	// account's legacy target; without a user its target answers 404.
	TargetUser     string
	TargetPassword string
	// Zendesk reads comments named by trigger bodies. May be nil when only
	// the event-subscription envelope is used: trigger comments are then
	// dropped with a warning.
	Zendesk *zendesk.Client
	// Secrets reads the webhook's signing secret (WebhookID). Default
	// Zendesk when set.
	Secrets SecretReader
	// Limiter, when set, is asked before every Zendesk API call the
	// trigger path makes (the account's budget: budget.New with the
	// account's Space).
	Limiter RateLimiter
	// Tickets is the account's record of managed tickets. Default
	// Deps.Tickets in the account's space.
	Tickets *tickets.Tickets
	// Publisher publishes the account's events; default one built from
	// Redis, Tickets and the Config in the account's space. Pass the same
	// Publisher to the account's reconciler (or get it with
	// Receiver.Publisher).
	Publisher *sink.Publisher
}

// same reports whether b configures the account exactly as a does, so
// that SetAccounts keeps the account's state.
func (a Account) same(b Account) bool {
	return a.Name == b.Name && a.WebhookSecret == b.WebhookSecret && a.WebhookID == b.WebhookID &&
		a.TargetUser == b.TargetUser && a.TargetPassword == b.TargetPassword && a.Zendesk == b.Zendesk &&
		sameAny(a.Secrets, b.Secrets) && sameAny(a.Limiter, b.Limiter) && a.Tickets == b.Tickets && a.Publisher == b.Publisher
}

// sameAny compares two interface values; values that cannot be compared
// are different.
func sameAny(a, b any) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}

// validateAccounts checks every account, reporting each problem as a
// *validate.FieldError naming the account.
func validateAccounts(specs []Account) error {
	var errs []error
	seen := make(map[string]bool, len(specs))
	for _, s := range specs {
		name := cmp.Or(s.Name, keys.DefaultAccount)
		field := "Accounts[" + name + "]"
		if problem := validate.AccountName(name); problem != "" {
			errs = append(errs, validate.Errorf("inbound", "Accounts", "%s", problem))
			continue
		}
		if seen[name] {
			errs = append(errs, validate.Errorf("inbound", field, "the account is given twice"))
		}
		seen[name] = true
		if s.TargetUser != "" && s.TargetPassword == "" {
			errs = append(errs, validate.Errorf("inbound", field+".TargetPassword", "required with a target user"))
		}
		if s.Publisher != nil && s.Publisher.Space().Account() != name {
			errs = append(errs, validate.Errorf("inbound", field+".Publisher", "publishes account %q's events", s.Publisher.Space().Account()))
		}
	}
	return errors.Join(errs...)
}

// account is one account's part at run time: cheap (no goroutine unless
// it reads its signing secret), replaced whole when its settings change.
type account struct {
	r       *Receiver
	spec    Account
	space   keys.Space
	pub     *sink.Publisher
	secrets SecretReader
	users   *events.AuthorCache
	log     zerolog.Logger
	sec     secretState

	stopReader context.CancelFunc // the secret reader's; guarded by r.setMu

	lastSeenWrite atomic.Int64 // unix nanos of the last WebhookLastReceived write
	busyReceived  atomic.Bool
	busyReread    atomic.Bool // a re-read of the signing secret after a failed verification

	sigMu       sync.Mutex
	sigRun      int64   // this process's current run, for logging
	sigOps      []int64 // signature-state changes not yet written (0 clear, n add)
	sigDirty    bool    // Redis may hold a run that a good signature must clear
	sigFlushing atomic.Bool
}

func (a *account) name() string { return a.space.Account() }

// newAccount builds spec's account; prev is the account of the same name
// it replaces (nil: none), whose signing secret read from Zendesk it keeps
// when the webhook is the same.
func (r *Receiver) newAccount(spec Account, prev *account) *account {
	sp := keys.For(spec.Name)
	a := &account{r: r, spec: spec, space: sp, secrets: spec.Secrets, pub: spec.Publisher,
		log: r.log.With().Str("account", spec.Name).Logger()}
	if a.secrets == nil && spec.Zendesk != nil {
		a.secrets = spec.Zendesk
	}
	if a.pub == nil {
		tk := spec.Tickets
		if tk == nil {
			tk = r.tickets
		}
		a.pub = sink.NewPublisher(r.rdb, tk, sink.PublisherConfig{
			Space:           sp,
			ForwardPrivate:  r.cfg.ForwardPrivate,
			LedgerRetention: r.cfg.LedgerRetention,
			TaskTimeout:     r.cfg.TaskTimeout,
			Now:             r.cfg.Now,
			Asynq:           r.client,
			Inspector:       r.insp,
		})
	}
	if spec.Zendesk != nil {
		a.users = events.NewAuthorCache(10*time.Minute, 10000, r.cfg.Now)
	}
	a.sigDirty = true // clear a run left by an earlier process on the first good signature
	a.initSecret(prev)
	return a
}

// SetAccounts makes specs the accounts the Receiver serves, at once for
// every request and task that starts afterwards: an account not given any
// more is removed (its paths answer 404; its tasks wait, retried, until it
// is given again), a new one added, a changed one replaced. An account
// given exactly as before keeps its state. Safe to call while requests
// arrive; nothing changes when it returns an error (a *validate.FieldError
// per problem). "Exactly as before" compares the pointers too (Zendesk,
// Limiter, Tickets, Publisher): give an unchanged account the same ones.
func (r *Receiver) SetAccounts(specs []Account) error {
	if err := validateAccounts(specs); err != nil {
		return err
	}
	r.setMu.Lock()
	defer r.setMu.Unlock()
	old := r.accountMap()
	next := make(map[string]*account, len(specs))
	var added []*account
	for _, spec := range specs {
		spec.Name = cmp.Or(spec.Name, keys.DefaultAccount)
		if a := old[spec.Name]; a != nil && a.spec.same(spec) {
			next[spec.Name] = a
			continue
		}
		a := r.newAccount(spec, old[spec.Name])
		next[spec.Name] = a
		added = append(added, a)
	}
	r.accounts.Store(&next)
	if len(added) > 0 || len(next) != len(old) {
		r.log.Info().Int("accounts", len(next)).Int("new_or_changed", len(added)).Msg("inbound accounts set")
	}
	for name, a := range old {
		if next[name] == a {
			continue
		}
		if a.stopReader != nil {
			a.stopReader()
		}
		if next[name] == nil {
			r.m.forget(name)
			r.log.Info().Str("account", name).Msg("account removed from the inbound path")
		}
	}
	for _, a := range added {
		a.setStateMetric(a.status().State)
		r.startReader(a)
		if _, state := a.signingSecret(); state != ReceiverWaiting && r.runCtx != nil {
			r.spawn(a.publishState)
		}
	}
	return nil
}

// startReader starts a's secret reader when a waits for its signing secret
// and Run runs (r.setMu held).
func (r *Receiver) startReader(a *account) {
	if _, state := a.signingSecret(); state != ReceiverWaiting || r.runCtx == nil || a.stopReader != nil {
		return
	}
	ctx, cancel := context.WithCancel(r.runCtx)
	a.stopReader = cancel
	r.readers.Add(1)
	go func() {
		defer r.readers.Done()
		defer cancel()
		a.awaitSecret(ctx)
	}()
}

// accountMap is the current accounts (never changed: SetAccounts replaces it).
func (r *Receiver) accountMap() map[string]*account { return *r.accounts.Load() }

// lookup returns the account named name ("": the default), or nil.
func (r *Receiver) lookup(name string) *account {
	return r.accountMap()[events.AccountOf(name)]
}

// ErrUnknownAccount says an account is not configured.
var ErrUnknownAccount = errors.New("account not configured")

// find is lookup with an error naming the account.
func (r *Receiver) find(name string) (*account, error) {
	if a := r.lookup(name); a != nil {
		return a, nil
	}
	return nil, fmt.Errorf("inbound: %q: %w", events.AccountOf(name), ErrUnknownAccount)
}

// Accounts lists the names of the accounts served, sorted.
func (r *Receiver) Accounts() []string {
	m := r.accountMap()
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Publisher returns the Publisher of the account ("": the default), nil
// when it is not configured. Share it with the account's reconciler.
func (r *Receiver) Publisher(account string) *sink.Publisher {
	pub, _ := r.publisherOf(account)
	return pub
}

func (r *Receiver) publisherOf(account string) (*sink.Publisher, bool) {
	if a := r.lookup(account); a != nil {
		return a.pub, true
	}
	return nil, false
}

// ReceiverStatus reports whether the account's webhook receiver ("": the
// default account's) takes webhooks, and why not. An account not
// configured is off (its path answers 404), with LastError saying so.
func (r *Receiver) ReceiverStatus(account string) ReceiverStatus {
	a := r.lookup(account)
	if a == nil {
		return ReceiverStatus{State: ReceiverOff, LastError: "account " + events.AccountOf(account) + " is not configured"}
	}
	return a.status()
}

// RefreshSecret reads the account's webhook signing secret from Zendesk
// again (the guardian calls it when Zendesk's record shows calls failing
// verification), at most once a minute: sooner it returns
// ErrRefreshTooSoon. Without a webhook id there is nothing to read and it
// returns nil; an account not configured is ErrUnknownAccount.
func (r *Receiver) RefreshSecret(ctx context.Context, account string) error {
	a, err := r.find(account)
	if err != nil {
		return err
	}
	return a.refreshSecret(ctx)
}
