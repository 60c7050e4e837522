// Command deskrelay is a sidecar daemon that keeps conversations between a
// customer-messaging platform and Zendesk in sync: messages reach Zendesk
// exactly once and in order, Zendesk's updates reach the platform, and after
// an outage it catches up by itself. See README.md and docs/ARCHITECTURE.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		var ec exitCode
		if !errors.As(err, &ec) {
			fmt.Fprintln(os.Stderr, "deskrelay:", err)
		}
		os.Exit(exitStatus(err))
	}
}
