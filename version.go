package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by -ldflags "-X main.version=… -X main.commit=…"; otherwise read from
// the build info.
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
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && rev == "" {
				rev = s.Value
				if len(rev) > 12 {
					rev = rev[:12]
				}
			}
			if s.Key == "vcs.modified" && s.Value == "true" && rev != "" {
				rev += "-dirty"
			}
		}
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
