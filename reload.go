package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/deskrelay/deskrelay/reconcile"
)

// reloadState is what the last reload of DESKRELAY_ACCOUNTS_FILE did, for
// /v1/status.
type reloadState struct {
	mu   sync.Mutex
	last *reloadReport
}

// reloadReport is the outcome of one reload.
type reloadReport struct {
	At      time.Time `json:"at"`
	OK      bool      `json:"ok"`
	Errors  []string  `json:"errors,omitempty"` // the file's problems: the running accounts were kept
	Added   []string  `json:"added,omitempty"`
	Changed []string  `json:"changed,omitempty"`
	Removed []string  `json:"removed,omitempty"`
}

func (s *reloadState) set(r reloadReport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = &r
}

func (s *reloadState) get() *reloadReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// watchReload re-reads the accounts file on every SIGHUP until ctx ends
// (without one, a SIGHUP is logged and changes nothing: it never stops
// serve).
func (d *daemon) watchReload(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-hup:
			if d.cfg.accountsFile == "" {
				d.log.Info().Msg("SIGHUP: no DESKRELAY_ACCOUNTS_FILE to re-read; the settings are read at start only")
				continue
			}
			d.reloadAccounts(ctx)
		}
	}
}

// reloadAccounts reads DESKRELAY_ACCOUNTS_FILE again: accounts added or
// changed are wired (a changed one anew, with its Redis data), removed ones
// stop being served (their queued tasks wait until they come back), the
// others keep running untouched. A bad file changes nothing: its problems go
// to the log and /v1/status.
func (d *daemon) reloadAccounts(ctx context.Context) reloadReport {
	rep := reloadReport{At: time.Now().UTC()}
	fail := func(err error) reloadReport {
		rep.Errors = strings.Split(err.Error(), "\n")
		for _, line := range rep.Errors {
			d.log.Error().Str("problem", line).Msg("accounts file not reloaded: the running accounts are kept")
		}
		d.reload.set(rep)
		return rep
	}
	accts, err := loadAccounts(d.cfg.accountsFile)
	if err != nil {
		return fail(err)
	}
	next := *d.cfg
	next.accounts = accts
	var p problems
	next.checkAccountsNeedSink(&p)
	if err := p.err(); err != nil {
		return fail(err)
	}
	prev := d.accountSet()
	set, err := d.buildAccounts(ctx, &next, prev, d.log, d.metrics)
	if err != nil {
		return fail(err)
	}
	d.use(set)
	rep.OK = true
	rep.Added, rep.Changed, rep.Removed = compareSets(prev, set)
	for _, a := range prev.list {
		switch next := set.byName[a.name()]; {
		case next == nil:
			a.close() // removed: its metric series go with it
		case next != a:
			a.closeReplaced() // the new instance keeps the account's series
		}
	}
	d.setAuthModes()
	select {
	case d.reloaded <- struct{}{}:
	default:
	}
	d.log.Info().Strs("added", rep.Added).Strs("changed", rep.Changed).Strs("removed", rep.Removed).
		Int("accounts", len(set.list)).Msg("accounts file reloaded")
	d.reload.set(rep)
	return rep
}

// compareSets names the accounts next added to, changed in and removed
// from prev.
func compareSets(prev, next *accountSet) (added, changed, removed []string) {
	for _, a := range next.list {
		switch old := prev.get(a.name()); {
		case old == nil:
			added = append(added, a.name())
		case old != a:
			changed = append(changed, a.name())
		}
	}
	for _, a := range prev.list {
		if next.get(a.name()) == nil {
			removed = append(removed, a.name())
		}
	}
	slices.Sort(removed)
	return added, changed, removed
}

// runSchedule runs every account's reconcile schedule on one timer
// (reconcile.ScheduleAll), and again with the new accounts after a reload.
func (d *daemon) runSchedule(ctx context.Context) error {
	for {
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		rs := d.accountSet().reconcilers()
		go func() {
			if len(rs) == 0 { // no account (yet): wait for a reload
				<-sctx.Done()
				done <- sctx.Err()
				return
			}
			done <- reconcile.ScheduleAll(sctx, rs)
		}()
		stop := func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				d.log.Warn().Err(err).Msg("reconcile schedule")
			}
		}
		select {
		case <-ctx.Done():
			stop()
			return ctx.Err()
		case <-d.reloaded:
			stop() // and again with the new accounts
		case err := <-done:
			cancel()
			return err
		}
	}
}
