// Command fakezendesk serves the fake Zendesk of package zendesktest on a
// fixed address, for trying deskrelay by hand:
//
//	go run ./zendesk/zendesktest/cmd/fakezendesk -listen 127.0.0.1:8081 \
//	    -webhook-endpoint http://127.0.0.1:8080/v1/zendesk/webhook -webhook-secret s3cret
//
// It prints its URL and credentials and serves until SIGINT or SIGTERM. Agent
// actions are available over HTTP on the same address under /_fake/ (see
// -help), so a person can play the agent with curl.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fakezendesk:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fakezendesk", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		listen      = fs.String("listen", "127.0.0.1:8081", "address to serve on")
		email       = fs.String("email", zendesktest.DefaultEmail, "accepted API-token email")
		token       = fs.String("token", zendesktest.DefaultAPIToken, "accepted API token")
		oauthToken  = fs.String("oauth-token", "", "an accepted fixed OAuth bearer token")
		oauthClient = fs.String("oauth-client", "", "OAuth client id:secret for POST /oauth/tokens; a refresh token is printed")
		rateLimit   = fs.Int("rate-limit", 200, "requests per window per account")
		updateLimit = fs.Int("update-limit", 100, "Update Ticket requests per window")
		exportLimit = fs.Int("export-limit", 10, "incremental export requests per window")
		perTicket   = fs.Int("per-ticket-limit", 30, "updates per ticket per user per 10 minutes (-1: off)")
		window      = fs.Duration("window", time.Minute, "rate-limit window")
		exportLag   = fs.Duration("export-lag", 60*time.Second, "how much of the recent past the exports hide (0s: none)")
		hookURL     = fs.String("webhook-endpoint", "", "create a webhook calling this URL on agent actions")
		hookSecret  = fs.String("webhook-secret", "", "its signing secret (random when empty)")
		hookTrigger = fs.Bool("webhook-trigger", false, "make the webhook a trigger webhook (TriggerBody) instead of event subscriptions")
		targetURL   = fs.String("target-url", "", "create a legacy target calling this URL on agent actions")
		targetUser  = fs.String("target-user", "", "basic auth user of the target")
		targetPass  = fs.String("target-password", "", "basic auth password of the target")
		notifyAPI   = fs.Bool("notify-api-writes", false, "also notify webhooks of changes made through the API")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	lag := *exportLag
	if lag == 0 {
		lag = -1 // Config: negative means none
	}
	logger := log.New(stderr, "", log.LstdFlags)
	cfg := zendesktest.Config{
		Email: *email, APIToken: *token,
		RateLimit: *rateLimit, UpdateTicketLimit: *updateLimit, ExportLimit: *exportLimit, PerTicketUpdateLimit: *perTicket,
		Window: *window, ExportLag: lag, NotifyAPIWrites: *notifyAPI,
		Logf: logger.Printf,
	}
	if *oauthToken != "" {
		cfg.OAuthTokens = []string{*oauthToken}
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", *listen)
	if err != nil {
		return err
	}
	cfg.BaseURL = "http://" + ln.Addr().String()
	srv, err := zendesktest.Start(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	defer srv.Close()

	fmt.Fprintf(stdout, "fake Zendesk (upstream %s)\n", srv.URL())
	if *oauthClient != "" {
		id, secret, ok := strings.Cut(*oauthClient, ":")
		if !ok {
			return errors.New("-oauth-client: want id:secret")
		}
		srv.OAuthClient(id, secret)
		fmt.Fprintf(stdout, "  OAuth client %s, refresh token %s\n", id, srv.IssueRefreshToken())
	}
	if *hookURL != "" {
		var subs []string
		if !*hookTrigger {
			subs = []string{zendesktest.EventCommentAdded, zendesktest.EventStatusChanged}
		}
		id := srv.AddWebhook(*hookURL, *hookSecret, subs...)
		fmt.Fprintf(stdout, "  webhook %s → %s (secret %s)\n", id, *hookURL, srv.WebhookSecret(id))
	}
	if *targetURL != "" {
		fmt.Fprintf(stdout, "  target %d → %s\n", srv.AddTarget(*targetURL, *targetUser, *targetPass), *targetURL)
	}

	hs := &http.Server{Handler: handler(srv), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "listening on http://%s\n  DESKRELAY_ZENDESK_URL=http://%s DESKRELAY_ZENDESK_EMAIL=%s DESKRELAY_ZENDESK_API_TOKEN=%s\n",
		ln.Addr(), ln.Addr(), *email, *token)
	fmt.Fprintf(stdout, "  agent actions: POST /_fake/agent_comment?ticket_id=&body=&public=true  /_fake/status?ticket_id=&status=  /_fake/down  /_fake/up\n")
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return hs.Shutdown(shutdown)
}

// handler proxies the API to the fake and adds /_fake/ controls.
func handler(srv *zendesktest.Server) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_fake/agent_comment", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.FormValue("ticket_id"), 10, 64)
		cid := srv.AgentReply(id, r.FormValue("body"), r.FormValue("public") != "false", r.FormValue("status"))
		fmt.Fprintf(w, "{\"comment_id\":%d}\n", cid) //nolint:gosec // an integer, not a reflected string
	})
	mux.HandleFunc("POST /_fake/status", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.FormValue("ticket_id"), 10, 64)
		srv.SetStatus(id, r.FormValue("status"))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_fake/down", func(w http.ResponseWriter, _ *http.Request) { srv.Down(); w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("POST /_fake/up", func(w http.ResponseWriter, _ *http.Request) { srv.Up(); w.WriteHeader(http.StatusNoContent) })
	mux.Handle("/", srv)
	return mux
}
