// Command fakezendesk serves the fake Zendesk of package zendesktest on a
// fixed address, for trying deskrelay by hand:
//
//	go run ./zendesk/zendesktest/cmd/fakezendesk -listen 127.0.0.1:8081 \
//	    -webhook-endpoint http://127.0.0.1:8080/v1/zendesk/webhook -webhook-secret s3cret
//
// It prints its URL and credentials and serves until SIGINT or SIGTERM. Agent
// actions and scripted failures are available over HTTP on the same address
// under /_fake/ (fakezendesk -h lists them), so a person can play the agent
// with curl.
package main

import (
	"cmp"
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

// options are the command's flags.
type options struct {
	listen, email, token, oauthToken, oauthClient  string
	rateLimit, updateLimit, exportLimit, perTicket int
	window, exportLag                              time.Duration
	hookURL, hookSecret                            string
	hookTrigger                                    bool
	targetURL, targetUser, targetPass              string
	notifyAPI                                      bool
}

func newFlags(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("fakezendesk", flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8081", "address to serve on")
	fs.StringVar(&o.email, "email", zendesktest.DefaultEmail, "accepted API-token email")
	fs.StringVar(&o.token, "token", zendesktest.DefaultAPIToken, "accepted API token")
	fs.StringVar(&o.oauthToken, "oauth-token", "", "an accepted fixed OAuth bearer token")
	fs.StringVar(&o.oauthClient, "oauth-client", "", "OAuth client id:secret for POST /oauth/tokens; a refresh token is printed")
	fs.IntVar(&o.rateLimit, "rate-limit", 200, "requests per window per account")
	fs.IntVar(&o.updateLimit, "update-limit", 100, "Update Ticket requests per window")
	fs.IntVar(&o.exportLimit, "export-limit", 10, "incremental export requests per window")
	fs.IntVar(&o.perTicket, "per-ticket-limit", 30, "updates per ticket per user per 10 minutes (-1: off)")
	fs.DurationVar(&o.window, "window", time.Minute, "rate-limit window")
	fs.DurationVar(&o.exportLag, "export-lag", 60*time.Second, "how much of the recent past the exports hide (0s: none)")
	fs.StringVar(&o.hookURL, "webhook-endpoint", "", "create a webhook calling this URL on agent actions")
	fs.StringVar(&o.hookSecret, "webhook-secret", "", "its signing secret (random when empty)")
	fs.BoolVar(&o.hookTrigger, "webhook-trigger", false, "make the webhook a trigger webhook (TriggerBody) instead of event subscriptions")
	fs.StringVar(&o.targetURL, "target-url", "", "create a legacy target calling this URL on agent actions")
	fs.StringVar(&o.targetUser, "target-user", "", "basic auth user of the target")
	fs.StringVar(&o.targetPass, "target-password", "", "basic auth password of the target")
	fs.BoolVar(&o.notifyAPI, "notify-api-writes", false, "also notify webhooks of changes made through the API")
	fs.Usage = func() {} // run prints the usage itself, to stdout for -h
	return fs
}

// usage lists the flags and the control endpoints.
func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: fakezendesk [flags]\n\nServes a fake Zendesk (package zendesktest) until SIGINT or SIGTERM.\n\nFlags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintf(w, "\nControl endpoints (on the same address):\n")
	for _, c := range controls {
		fmt.Fprintf(w, "  POST %s\n\t%s\n", c.usage, c.help)
	}
	fmt.Fprint(w, sinkUsage)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := newFlags(&o)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout, fs)
			return nil
		}
		usage(stderr, fs)
		return err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", o.listen)
	if err != nil {
		return err
	}
	srv, err := start(o, ln, stdout, log.New(stderr, "", log.LstdFlags))
	if err != nil {
		ln.Close()
		return err
	}
	defer srv.Close()

	hs := &http.Server{Handler: handler(srv, &sink{out: stdout}), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "listening on http://%s\n  DESKRELAY_ZENDESK_URL=http://%s DESKRELAY_ZENDESK_EMAIL=%s DESKRELAY_ZENDESK_API_TOKEN=%s\n",
		ln.Addr(), ln.Addr(), o.email, o.token)
	fmt.Fprintf(stdout, "  controls: fakezendesk -h lists them\n")
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

// start starts the fake with the options and creates the webhook, target
// and OAuth client they ask for, printing what it made.
func start(o options, ln net.Listener, stdout io.Writer, logger *log.Logger) (*zendesktest.Server, error) {
	lag := o.exportLag
	if lag == 0 {
		lag = -1 // Config: negative means none
	}
	cfg := zendesktest.Config{
		Email: o.email, APIToken: o.token,
		RateLimit: o.rateLimit, UpdateTicketLimit: o.updateLimit, ExportLimit: o.exportLimit, PerTicketUpdateLimit: o.perTicket,
		Window: o.window, ExportLag: lag, NotifyAPIWrites: o.notifyAPI,
		Logf:    logger.Printf,
		BaseURL: "http://" + ln.Addr().String(),
	}
	if o.oauthToken != "" {
		cfg.OAuthTokens = []string{o.oauthToken}
	}
	srv, err := zendesktest.Start(cfg)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "fake Zendesk (upstream %s)\n", srv.URL())
	if o.oauthClient != "" {
		id, secret, ok := strings.Cut(o.oauthClient, ":")
		if !ok {
			srv.Close()
			return nil, errors.New("-oauth-client: want id:secret")
		}
		srv.OAuthClient(id, secret)
		fmt.Fprintf(stdout, "  OAuth client %s, refresh token %s\n", id, srv.IssueRefreshToken())
	}
	if o.hookURL != "" {
		var subs []string
		if !o.hookTrigger {
			subs = []string{zendesktest.EventCommentAdded, zendesktest.EventStatusChanged}
		}
		id := srv.AddWebhook(o.hookURL, o.hookSecret, subs...)
		fmt.Fprintf(stdout, "  webhook %s → %s (secret %s)\n", id, o.hookURL, srv.WebhookSecret(id))
	}
	if o.targetURL != "" {
		fmt.Fprintf(stdout, "  target %d → %s\n", srv.AddTarget(o.targetURL, o.targetUser, o.targetPass), o.targetURL)
	}
	return srv, nil
}

// control is one endpoint under /_fake/ that plays the agent or Zendesk.
type control struct {
	path, usage, help string
	fn                func(srv *zendesktest.Server, w http.ResponseWriter, r *http.Request)
}

// controls lists every control endpoint; handler serves them and -h lists them.
var controls = []control{
	{"/_fake/agent_comment", "/_fake/agent_comment?ticket_id=&body=&public=true&status=",
		"an agent's comment (and status); webhooks are called before it answers {\"comment_id\"}",
		func(srv *zendesktest.Server, w http.ResponseWriter, r *http.Request) {
			id, _ := strconv.ParseInt(r.FormValue("ticket_id"), 10, 64)
			cid := srv.AgentReply(id, r.FormValue("body"), r.FormValue("public") != "false", r.FormValue("status"))
			fmt.Fprintf(w, "{\"comment_id\":%d}\n", cid) //nolint:gosec // an integer, not a reflected string
		}},
	{"/_fake/status", "/_fake/status?ticket_id=&status=", "an agent's status change (closed included)",
		func(srv *zendesktest.Server, w http.ResponseWriter, r *http.Request) {
			id, _ := strconv.ParseInt(r.FormValue("ticket_id"), 10, 64)
			srv.SetStatus(id, r.FormValue("status"))
			w.WriteHeader(http.StatusNoContent)
		}},
	{"/_fake/down", "/_fake/down", "Zendesk is down: every API call answers 503 with the incident page",
		func(srv *zendesktest.Server, w http.ResponseWriter, _ *http.Request) {
			srv.Down()
			w.WriteHeader(http.StatusNoContent)
		}},
	{"/_fake/up", "/_fake/up", "Zendesk is back",
		func(srv *zendesktest.Server, w http.ResponseWriter, _ *http.Request) {
			srv.Up()
			w.WriteHeader(http.StatusNoContent)
		}},
	{"/_fake/script_invocations", "/_fake/script_invocations?n=1&status=terminated&status_code=403",
		"the next n webhook invocations end with that status (terminated, throttled, failed, …) without reaching the endpoint",
		func(srv *zendesktest.Server, w http.ResponseWriter, r *http.Request) {
			n, err := strconv.Atoi(r.FormValue("n"))
			code, cerr := strconv.Atoi(cmp.Or(r.FormValue("status_code"), "0"))
			if err != nil || cerr != nil || n < 1 || r.FormValue("status") == "" {
				http.Error(w, "want n>=1, status and a numeric status_code", http.StatusBadRequest)
				return
			}
			srv.ScriptInvocations(n, r.FormValue("status"), code)
			w.WriteHeader(http.StatusNoContent)
		}},
}

// handler proxies the API to the fake and adds the /_fake/ controls and sink.
func handler(srv *zendesktest.Server, sk *sink) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_fake/sink", sk.receive)
	mux.HandleFunc("GET /_fake/sink", sk.list)
	for _, c := range controls {
		mux.HandleFunc("POST "+c.path, func(w http.ResponseWriter, r *http.Request) { c.fn(srv, w, r) })
	}
	mux.Handle("/", srv)
	return mux
}
