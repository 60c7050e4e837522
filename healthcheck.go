package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// cmdHealthcheck probes the local daemon's /healthz; for container health
// checks in images without a shell or curl.
func cmdHealthcheck(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "healthcheck", "healthcheck [flags]", healthcheckSettings)
	resolve := fs.settings()
	if err := fs.parse(args); err != nil {
		return err
	}
	v, err := resolve()
	if err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(v["DESKRELAY_LISTEN"])
	if err != nil {
		var p problems
		p.add(v.name("DESKRELAY_LISTEN"), "%v", err)
		return p.err()
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthz: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz: %s", resp.Status)
	}
	fmt.Fprintln(env.stdout, "ok")
	return nil
}
