package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/deskrelay/deskrelay/internal/keys"
)

// accountFlag adds --account to a one-shot command; all: whether "all"
// (every account, one after the other) is allowed.
func accountFlag(fs *flag.FlagSet, all bool) *string {
	help := "the Zendesk account: a name from DESKRELAY_ACCOUNTS_FILE, or default for the DESKRELAY_ZENDESK_* settings"
	if all {
		help += "; all: every account, one after the other"
	}
	return fs.String("account", keys.DefaultAccount, help)
}

// pickAccounts resolves --account: the named account, or with all every
// one. An account that is not configured is a usage error naming the ones
// that are.
func pickAccounts(env *environment, p *parts, name string, all bool) ([]*account, error) {
	set := p.accountSet()
	if all && name == "all" {
		return set.list, nil
	}
	if a := set.get(name); a != nil {
		return []*account{a}, nil
	}
	fmt.Fprintf(env.stderr, "--account: %q is not a configured account (configured: %s)\n", name, strings.Join(set.names(), ", "))
	return nil, exitCode(2)
}

// eachAccount runs f for the accounts --account names (all: every one, each
// under a line naming it), stopping at the first error, which names the
// account.
func eachAccount(env *environment, p *parts, name string, f func(a *account) error) error {
	accts, err := pickAccounts(env, p, name, true)
	if err != nil {
		return err
	}
	for _, a := range accts {
		if len(accts) > 1 {
			fmt.Fprintf(env.stdout, "account %s\n", a.name())
		}
		if err := f(a); err != nil {
			return fmt.Errorf("account %s: %w", a.name(), err)
		}
	}
	return nil
}

// webhookSettingProblem says which setting names an account's webhook.
func webhookSettingProblem(name string) string {
	if name == keys.DefaultAccount {
		return "DESKRELAY_ZENDESK_WEBHOOK_ID: required (or DESKRELAY_ZENDESK_TARGET_ID)"
	}
	return fmt.Sprintf("account %q has no webhook_id or target_id in DESKRELAY_ACCOUNTS_FILE", name)
}

// cmdAccounts is `deskrelay accounts`: every configured account with its
// state, read from Redis. It exits 0 when it could read every account's
// state, whatever the states are.
func cmdAccounts(ctx context.Context, env *environment, args []string) error {
	var asJSON *bool
	p, _, _, rest, err := oneShot(ctx, env, "accounts", "accounts [--json]", args, needs{zendesk: true},
		func(fs *flag.FlagSet) { asJSON = fs.Bool("json", false, "print JSON (one object per account)") })
	if err != nil {
		return err
	}
	defer p.close()
	if len(rest) > 0 {
		fmt.Fprintf(env.stderr, "unexpected argument %q\nrun 'deskrelay accounts -h' for usage\n", rest[0])
		return exitCode(2)
	}
	states, failed := p.accountStates(ctx)
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(states); err != nil {
			return err
		}
	} else {
		printAccountStates(env, states)
	}
	if failed {
		return exitCode(1)
	}
	return nil
}

func printAccountStates(env *environment, states []accountState) {
	w := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ACCOUNT\tCREDENTIALS\tGATE\tBACKLOG\tFAILED\tWEBHOOK\tCHECKPOINT AGE\tPROBLEMS")
	for _, s := range states {
		age := "-"
		if s.CheckpointAgeSeconds >= 0 {
			age = (time.Duration(s.CheckpointAgeSeconds) * time.Second).String()
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", s.Name, s.Credentials, s.Gate, s.Backlog, s.Failed,
			orDash(s.Webhook), age, orDash(strings.Join(s.Errors, "; ")))
	}
	_ = w.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
