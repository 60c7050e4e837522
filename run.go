package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
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
		{"accounts", "every configured Zendesk account with its state (--json for scripts)", cmdAccounts},
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
	switch {
	case len(args) == 0:
		usage(stderr)
		return exitCode(2)
	case args[0] == "-h" || args[0] == "--help" || (args[0] == "help" && len(args) == 1):
		usage(stdout)
		return nil
	case args[0] == "help":
		args = []string{args[1], "-h"}
	}
	name := args[0]
	for _, c := range commands() {
		if c.name == name {
			err := c.run(ctx, env, args[1:])
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			if isConfigError(err) {
				fmt.Fprintln(stderr, err)
				return exitCode(2)
			}
			return err
		}
	}
	fmt.Fprintf(stderr, "unknown command %q%s; run 'deskrelay help' for the list\n", name, hint(name))
	return exitCode(2)
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

// flagSet is a subcommand's flags and the settings it takes.
type flagSet struct {
	*flag.FlagSet
	env      *environment
	synopsis string
	envs     []string // the DESKRELAY_* settings the command uses
}

// newFlagSet returns a flag set for a subcommand that takes the settings
// envs: the non-secret ones also as flags.
func newFlagSet(env *environment, name, synopsis string, envs []string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // parse prints the help or the error itself
	return &flagSet{FlagSet: fs, env: env, synopsis: synopsis, envs: envs}
}

// settings registers the command's settings as flags; call the returned
// function after parse.
func (f *flagSet) settings() func() (values, error) {
	return bindSettings(f.FlagSet, f.env.getenv, f.envs)
}

// parse parses args. -h prints the help to stdout and returns
// flag.ErrHelp; a bad flag is named once on stderr, with a hint, and
// returns exit status 2.
func (f *flagSet) parse(args []string) error {
	err := f.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		f.help(f.env.stdout)
		return flag.ErrHelp
	}
	fmt.Fprintf(f.env.stderr, "%s\nrun 'deskrelay %s -h' for usage\n", flagProblem(err), f.Name())
	return exitCode(2)
}

// flagProblem rewrites the flag package's errors to name the flag first.
func flagProblem(err error) string {
	msg := err.Error()
	for _, r := range []struct{ prefix, problem string }{
		{"flag provided but not defined: -", "unknown flag"},
		{"flag needs an argument: -", "needs a value"},
	} {
		if name, ok := strings.CutPrefix(msg, r.prefix); ok {
			name = strings.TrimPrefix(name, "-")
			for _, s := range settings {
				if s.envOnly() && s.flagName() == name {
					return fmt.Sprintf("--%s: a secret is not a flag (ps shows flags); set %s or %s_FILE", name, s.env, s.env)
				}
			}
			return "--" + name + ": " + r.problem
		}
	}
	// invalid value "x" for flag -n: …, invalid boolean value "x" for -n: …
	for _, sep := range []string{" for flag -", " for -"} {
		if i := strings.Index(msg, sep); i >= 0 && strings.HasPrefix(msg, "invalid ") {
			name, rest, _ := strings.Cut(msg[i+len(sep):], ": ")
			return "--" + name + ": " + msg[:i] + " (" + rest + ")"
		}
	}
	return msg
}

// help prints the command's usage: its own flags with their defaults,
// then the settings it takes.
func (f *flagSet) help(w io.Writer) {
	fmt.Fprintf(w, "Usage: deskrelay %s\n", f.synopsis)
	var own []*flag.Flag
	f.VisitAll(func(fl *flag.Flag) {
		if !settingFlag(fl.Name) {
			own = append(own, fl)
		}
	})
	if len(own) > 0 {
		fmt.Fprintln(w, "\nFlags:")
		for _, fl := range own {
			fmt.Fprintf(w, "  --%s\n      %s%s\n", fl.Name, fl.Usage, defaultNote(fl.DefValue))
		}
	}
	sets := settingsFor(f.envs)
	if len(sets) == 0 {
		return
	}
	fmt.Fprintln(w, "\nSettings (a flag wins over its environment variable; secrets are environment only, or X_FILE=/path):")
	for _, s := range sets {
		name := "--" + s.flagName() + ", " + s.env
		if s.envOnly() {
			name = s.env + ", " + s.env + "_FILE"
		} else if s.fileable() {
			name += ", " + s.env + "_FILE"
		}
		fmt.Fprintf(w, "  %s\n      %s%s\n", name, s.help, defaultNote(s.def))
	}
}

func defaultNote(def string) string {
	if def == "" || def == "false" || def == "0" {
		return ""
	}
	return " (default " + def + ")"
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

// Which settings each command takes: serve all, the one-shot commands all
// but the daemon's HTTP side.
var (
	daemonOnly = []string{"DESKRELAY_LISTEN", "DESKRELAY_INGEST_TOKEN", "DESKRELAY_ADMIN_USER", "DESKRELAY_ADMIN_PASSWORD",
		"DESKRELAY_CONCURRENCY", "DESKRELAY_SHUTDOWN_TIMEOUT", "DESKRELAY_TARGET_USER", "DESKRELAY_TARGET_PASSWORD"}
	sendSettings        = []string{"DESKRELAY_LISTEN", "DESKRELAY_INGEST_TOKEN"}
	healthcheckSettings = []string{"DESKRELAY_LISTEN"}
)

func oneShotSettings() []string {
	var out []string
	for _, e := range allSettings() {
		if !slices.Contains(daemonOnly, e) {
			out = append(out, e)
		}
	}
	return out
}
