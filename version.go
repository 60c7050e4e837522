package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by -ldflags "-X main.version=… -X main.commit=…" (the Makefile and
// the Dockerfile do); the build info's vcs.revision wins over commit when
// the binary was built inside a git checkout.
var (
	version = ""
	commit  = ""
)

func buildVersion() (ver, rev, goVersion string) {
	ver, rev = version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if ver == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			ver = bi.Main.Version
		}
		rev = vcsRevision(bi.Settings, rev)
	}
	if ver == "" {
		ver = "dev"
	}
	if rev == "" {
		rev = "unknown"
	}
	return ver, rev, runtime.Version()
}

// userAgent names deskrelay and its version on every Zendesk request.
func userAgent() string {
	v, _, _ := buildVersion()
	return "deskrelay/" + v
}

func cmdVersion(_ context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "version", "version", nil)
	if err := fs.parse(args); err != nil {
		return err
	}
	v, c, g := buildVersion()
	fmt.Fprintf(env.stdout, "deskrelay %s (commit %s, %s)\n", v, c, g)
	return nil
}

// vcsRevision is the build info's vcs.revision (12 characters, -dirty when
// modified), else fallback.
func vcsRevision(settings []debug.BuildSetting, fallback string) string {
	rev, dirty := "", false
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return fallback
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}
