package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// command is one deskrelay subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *environment, args []string) error
}

// environment is what every command gets from run: the process's outside world.
type environment struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
}

func commands() []command {
	return []command{
		{"serve", "run the daemon: HTTP API, webhook receiver, workers, reconciler, asynqmon, metrics", cmdServe},
		{"reconcile", "one-shot backfill after an outage: --since TIME [--until TIME] [--dry-run]", cmdReconcile},
		{"replay", "put failed messages (or sink deliveries) back into delivery, in conversation order", cmdReplay},
		{"discard", "drop failed messages (or sink deliveries) for good, after a human decided", cmdDiscard},
		{"webhook", "status | enable: show or re-activate the Zendesk webhook or target", cmdWebhook},
		{"demo", "the whole story in one process: embedded Redis, a Zendesk sandbox, an outage and the catch-up", cmdDemo},
		{"send", "post one message to a running daemon (for trying things)", cmdSend},
		{"version", "print version, commit and Go version", cmdVersion},
		{"healthcheck", "probe a running daemon's /healthz (for container health checks)", cmdHealthcheck},
	}
}

// run is deskrelay's whole program; main only adds signals and the exit code.
// End-to-end tests call it directly with a fake getenv.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	env := &environment{getenv: getenv, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return exitCode(2)
		}
		return nil
	}
	name := args[0]
	for _, c := range commands() {
		if c.name == name {
			err := c.run(ctx, env, args[1:])
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
	}
	return fmt.Errorf("unknown command %q%s; run 'deskrelay help' for the list", name, hint(name))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "deskrelay relays messages between a messaging platform and Zendesk, exactly once and in order.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: deskrelay <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'deskrelay <command> -h' for a command's flags. Every setting is also an environment variable (DESKRELAY_…).")
}

// hint suggests the closest command name for a typo.
func hint(name string) string {
	best, bestD := "", 3
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	sort.Strings(names)
	for _, n := range names {
		if d := levenshtein(strings.ToLower(name), n); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// exitCode is an error that only carries a process exit status; its message
// has already been printed.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func exitStatus(err error) int {
	var ec exitCode
	if errors.As(err, &ec) {
		return int(ec)
	}
	return 1
}

// newFlagSet returns a flag set for a subcommand whose -h prints its usage
// to stdout: the command's own flags first, then the settings it takes.
func newFlagSet(env *environment, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		w := env.stdout
		fmt.Fprintf(w, "Usage: deskrelay %s\n", synopsis)
		var own, sets []*flag.Flag
		fs.VisitAll(func(f *flag.Flag) {
			if settingFlag(f.Name) {
				sets = append(sets, f)
			} else {
				own = append(own, f)
			}
		})
		if len(own) > 0 {
			fmt.Fprintln(w, "\nFlags:")
			for _, f := range own {
				def := ""
				if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
					def = " (default " + f.DefValue + ")"
				}
				fmt.Fprintf(w, "  -%s\n      %s%s\n", f.Name, f.Usage, def)
			}
		}
		if len(sets) > 0 {
			fmt.Fprintln(w, "\nSettings (each a flag or its environment variable; the flag wins):")
			for _, f := range sets {
				fmt.Fprintf(w, "  -%s\n      %s\n", f.Name, f.Usage)
			}
		}
	}
	return fs
}

// settingFlag reports whether a flag name is one of the DESKRELAY_* settings.
func settingFlag(name string) bool {
	for _, s := range settings {
		if s.flagName() == name {
			return true
		}
	}
	return false
}
