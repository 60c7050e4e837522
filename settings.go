package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/redisconn"
	"github.com/deskrelay/deskrelay/internal/validate"
)

// setting is one DESKRELAY_* setting. Every setting is an environment
// variable and a flag (the variable's name in lower case with dashes, less
// the prefix); a flag overrides the variable. README.md's configuration table
// is checked against this list by TestREADMESettings.
type setting struct {
	env    string
	def    string
	help   string
	secret bool
}

func (s setting) flagName() string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(s.env, "DESKRELAY_")), "_", "-")
}

var settings = []setting{
	{env: "DESKRELAY_LISTEN", def: "127.0.0.1:8080", help: "HTTP address"},
	{env: "DESKRELAY_REDIS_URL", def: "redis://127.0.0.1:6379/0", help: "Redis; rediss:// for TLS; redis-sentinel://host1,host2?master=name; redis-cluster://host1:6379,host2:6379 (rediss-cluster:// for TLS); redis-socket://path", secret: true},
	{env: "DESKRELAY_ZENDESK_SUBDOMAIN", help: "acme for acme.zendesk.com"},
	{env: "DESKRELAY_ZENDESK_URL", help: "full base URL; overrides the subdomain (tests, sandboxes, proxies)"},
	{env: "DESKRELAY_ZENDESK_EMAIL", help: "API token auth: the agent's email"},
	{env: "DESKRELAY_ZENDESK_API_TOKEN", help: "API token auth (email/token:TOKEN); Zendesk retires API tokens on 2027-04-30", secret: true},
	{env: "DESKRELAY_ZENDESK_OAUTH_TOKEN", help: "a fixed OAuth access token (bearer)", secret: true},
	{env: "DESKRELAY_ZENDESK_OAUTH_CLIENT_ID", help: "OAuth with refresh: the OAuth client's identifier"},
	{env: "DESKRELAY_ZENDESK_OAUTH_CLIENT_SECRET", help: "OAuth with refresh: the OAuth client's secret", secret: true},
	{env: "DESKRELAY_ZENDESK_OAUTH_REFRESH_TOKEN", help: "OAuth with refresh: the first refresh token; rotated tokens live in Redis", secret: true},
	{env: "DESKRELAY_ZENDESK_RATE_LIMIT", def: "50%", help: "requests per minute deskrelay may use of the account's budget, shared by all replicas: a number, or a share of the limit Zendesk reports (until known: 100)"},
	{env: "DESKRELAY_ZENDESK_UPDATE_RATE_LIMIT", def: "70%", help: "ticket updates per minute deskrelay may use: a number, or a share of Zendesk's Update Ticket limit (100 a minute until reported, 300 with High Volume); agents' own updates spend it too"},
	{env: "DESKRELAY_ZENDESK_WEBHOOK_ID", help: "the webhook that calls deskrelay, watched and re-enabled"},
	{env: "DESKRELAY_ZENDESK_TARGET_ID", help: "the legacy target that calls deskrelay, watched and re-enabled"},
	{env: "DESKRELAY_WEBHOOK_SECRET", help: "the webhook's signing secret; read from Zendesk when unset and the webhook id is known", secret: true},
	{env: "DESKRELAY_INGEST_TOKEN", help: "bearer token the platform sends to POST /v1/messages; required", secret: true},
	{env: "DESKRELAY_SINK_URL", help: "the platform's endpoint for ticket events"},
	{env: "DESKRELAY_SINK_SECRET", help: "whsec_… secret to sign sink deliveries (Standard Webhooks)", secret: true},
	{env: "DESKRELAY_ADMIN_USER", help: "basic auth user for /monitoring/ and the admin API; without it those routes are off"},
	{env: "DESKRELAY_ADMIN_PASSWORD", help: "basic auth password for /monitoring/ and the admin API", secret: true},
	{env: "DESKRELAY_RECONCILE_INTERVAL", def: "5m", help: "how often the reconciler runs; 0 turns it off"},
	{env: "DESKRELAY_RETRY_MAX_DELAY", def: "1h", help: "cap of the exponential backoff"},
	{env: "DESKRELAY_CONCURRENCY", def: "20", help: "asynq workers"},
	{env: "DESKRELAY_LOG_FORMAT", def: "auto", help: "auto (console on a terminal, JSON otherwise), json, or console"},
	{env: "DESKRELAY_LOG_LEVEL", def: "info", help: "debug, info, warn or error"},
	{env: "DESKRELAY_SPOOL_DIR", def: "./spool", help: "where verified webhook events wait when Redis is unreachable"},
	{env: "DESKRELAY_PUBLIC_URL", help: "the URL Zendesk calls; the guardian re-enables only a webhook that points there"},
	{env: "DESKRELAY_AUTO_REPLAY", def: "false", help: "replay messages failed as unauthorized once the credentials work again"},
	{env: "DESKRELAY_SHUTDOWN_TIMEOUT", def: "30s", help: "how long SIGTERM waits for in-flight work"},
	{env: "DESKRELAY_ORDER_GAP_TIMEOUT", def: "5m", help: "how long a conversation waits for a missing sequence"},
	{env: "DESKRELAY_RETENTION", def: "720h", help: "how long a conversation, ticket or user mapping and a delivered message's record are kept after their last activity"},
	{env: "DESKRELAY_FORWARD_PRIVATE", def: "false", help: "also forward agents' private notes to the sink"},
	{env: "DESKRELAY_TARGET_USER", help: "basic auth user a legacy target must send (targets cannot sign)"},
	{env: "DESKRELAY_TARGET_PASSWORD", help: "basic auth password a legacy target must send", secret: true},
	{env: "DESKRELAY_SINK_OUTCOMES", def: "failed", help: "message outcome events to the sink: failed, delivered (failed and delivered) or none"},
	{env: "DESKRELAY_WEBHOOK_AUTO_ENABLE", def: "false", help: "re-activate an inactive webhook automatically (by default it is reported, backfilled, and `deskrelay webhook enable` re-activates it); a target is always re-activated"},
	{env: "DESKRELAY_VIEWER_USER", help: "read-only login for /monitoring/ and /v1/status (GET only)"},
	{env: "DESKRELAY_VIEWER_PASSWORD", help: "the read-only login's password", secret: true},
	{env: "DESKRELAY_METRICS_LISTEN", help: "serve /metrics on this address only (an internal interface), instead of the main listener"},
	{env: "DESKRELAY_ACCOUNTS_FILE", help: "a YAML file of several Zendesk accounts (README: Many accounts); when unset, the DESKRELAY_ZENDESK_* settings are the one account default"},
	{env: "DESKRELAY_REDIS_PASSWORD", help: "Redis's password, when DESKRELAY_REDIS_URL carries none (docker-compose.yml gives it as a file)", secret: true},
}

// envOnly reports whether the setting is a secret that is never a flag
// (ps shows flags): it is read from the environment, or from the file
// named by its _FILE variable.
func (s setting) envOnly() bool {
	for _, suffix := range []string{"_TOKEN", "_SECRET", "_PASSWORD"} {
		if strings.HasSuffix(s.env, suffix) {
			return true
		}
	}
	return false
}

// fileable reports whether the setting may also be given as a file
// (DESKRELAY_X_FILE=/path).
func (s setting) fileable() bool { return s.secret || s.envOnly() }

// settingsFor returns the settings named in envs, in the table's order.
func settingsFor(envs []string) []setting {
	var out []setting
	for _, s := range settings {
		for _, e := range envs {
			if s.env == e {
				out = append(out, s)
			}
		}
	}
	return out
}

// allSettings names every setting (serve uses them all).
func allSettings() []string {
	out := make([]string, len(settings))
	for i, s := range settings {
		out[i] = s.env
	}
	return out
}

// values holds every setting's resolved value: flag, else environment (or
// its _FILE), else default. A key "flag:"+env records that the flag set it.
type values map[string]string

// bindSettings registers a flag for each non-secret setting in envs on fs
// and returns a function that resolves their values after fs.Parse.
func bindSettings(fs *flag.FlagSet, getenv func(string) string, envs []string) func() (values, error) {
	sets := settingsFor(envs)
	flags := make(map[string]*string, len(sets))
	for _, s := range sets {
		if !s.envOnly() {
			flags[s.env] = fs.String(s.flagName(), s.def, s.help+" ("+s.env+")")
		}
	}
	return func() (values, error) {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		v := make(values, len(settings))
		for _, s := range settings {
			v[s.env] = s.def // the settings this command does not take
		}
		var p problems
		for _, s := range sets {
			switch {
			case set[s.flagName()] && flags[s.env] != nil:
				v[s.env] = *flags[s.env]
				v["flag:"+s.env] = "--" + s.flagName()
			default:
				v[s.env] = fromEnv(&p, s, getenv)
			}
		}
		return v, p.err()
	}
}

// fromEnv reads a setting from the environment: X, or the file X_FILE
// names (its trailing newline trimmed), or the default. Errors never show
// a file's content.
func fromEnv(p *problems, s setting, getenv func(string) string) string {
	val := strings.TrimSpace(getenv(s.env))
	file := ""
	if s.fileable() {
		file = strings.TrimSpace(getenv(s.env + "_FILE"))
	}
	switch {
	case val != "" && file != "":
		p.add(s.env, "set either %s or %s_FILE, not both", s.env, s.env)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			p.add(s.env+"_FILE", "cannot read the file: %v", errors.Unwrap(err))
			return ""
		}
		return strings.TrimRight(string(b), "\r\n")
	case val != "":
		return val
	}
	return s.def
}

// name is the name an operator wrote for env: its flag when the flag set
// it, else the environment variable.
func (v values) name(env string) string {
	if f := v["flag:"+env]; f != "" {
		return f
	}
	return env
}

// secretValues returns the non-empty values of secret settings, so that tests
// (and log redaction checks) can make sure none of them is ever printed.
func (v values) secretValues() []string {
	var out []string
	for _, s := range settings {
		if s.secret && v[s.env] != "" && v[s.env] != s.def {
			out = append(out, v[s.env])
		}
	}
	return out
}

// problems collects configuration errors, one line each, naming the setting.
type problems []string

func (p *problems) add(env, format string, args ...any) {
	*p = append(*p, env+": "+fmt.Sprintf(format, args...))
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &configError{lines: p}
}

// configError is a set of configuration problems, printed one per line.
type configError struct{ lines []string }

func (e *configError) Error() string { return strings.Join(e.lines, "\n") }

func isConfigError(err error) bool {
	var ce *configError
	return errors.As(err, &ce)
}

func (v values) duration(p *problems, env string, allowZero bool) time.Duration {
	d, err := time.ParseDuration(v[env])
	if v[env] == "0" {
		d, err = 0, nil
	}
	switch {
	case err != nil:
		p.add(v.name(env), "%q is not a duration (e.g. 30s, 5m, 1h)", v[env])
	case d < 0 || (d == 0 && !allowZero):
		p.add(v.name(env), "must be positive, got %s", v[env])
	}
	return d
}

func (v values) positiveInt(p *problems, env string) int {
	n, err := strconv.Atoi(v[env])
	if err != nil || n <= 0 {
		p.add(v.name(env), "must be a positive whole number, got %q", v[env])
	}
	return n
}

func (v values) rate(p *problems, env string) budget.Rate {
	r, err := budget.ParseRate(env, v[env])
	if err != nil {
		*p = append(*p, err.Error()) // ParseRate names env
	}
	return r
}

func (v values) boolean(p *problems, env string) bool {
	b, err := strconv.ParseBool(v[env])
	if err != nil {
		p.add(v.name(env), "must be true or false, got %q", v[env])
	}
	return b
}

// redisOpt parses DESKRELAY_REDIS_URL without ever echoing it (it may hold
// a password), with a connection pool for DESKRELAY_CONCURRENCY workers plus
// the intake (redisconn.PoolSize; a bad concurrency is reported by
// positiveInt).
func (v values) redisOpt(p *problems) asynq.RedisConnOpt {
	const env = "DESKRELAY_REDIS_URL"
	workers, _ := strconv.Atoi(v["DESKRELAY_CONCURRENCY"])
	opt, err := redisconn.Parse(v[env], redisconn.PoolSize(workers))
	if err != nil {
		p.add(v.name(env), "%s", err)
		return nil
	}
	return opt
}

// httpURL checks an http(s) URL setting.
func (v values) httpURL(p *problems, env string) string {
	raw := v[env]
	if raw == "" {
		return ""
	}
	if problem := validate.HTTPURL(raw); problem != "" {
		p.add(v.name(env), "%s", problem)
		return ""
	}
	return strings.TrimRight(raw, "/")
}

// fieldSettings maps each package's Config field (pkg.Field, as in
// validate.FieldError) to the setting that fills it. It is the only place
// where a package's field meets a DESKRELAY_* name.
var fieldSettings = map[string]string{
	"queues.MaxDelay":       "DESKRELAY_RETRY_MAX_DELAY",
	"relay.OrderGapTimeout": "DESKRELAY_ORDER_GAP_TIMEOUT",
	"relay.RateLimit":       "DESKRELAY_ZENDESK_RATE_LIMIT",
	"relay.AutoReplay":      "DESKRELAY_AUTO_REPLAY",
	"inbound.SinkURL":       "DESKRELAY_SINK_URL",
	"inbound.SinkSecret":    "DESKRELAY_SINK_SECRET",
	"inbound.WebhookSecret": "DESKRELAY_WEBHOOK_SECRET",
	"inbound.SpoolDir":      "DESKRELAY_SPOOL_DIR",
	"sink.Send":             "DESKRELAY_SINK_OUTCOMES",
	"reconcile.Interval":    "DESKRELAY_RECONCILE_INTERVAL",
	"reconcile.WebhookID":   "DESKRELAY_ZENDESK_WEBHOOK_ID",
	"reconcile.TargetID":    "DESKRELAY_ZENDESK_TARGET_ID",
	"reconcile.PublicURL":   "DESKRELAY_PUBLIC_URL",
	"zdoauth.BaseURL":       "DESKRELAY_ZENDESK_URL",
	"zdoauth.Subdomain":     "DESKRELAY_ZENDESK_SUBDOMAIN",
	"zdoauth.ClientID":      "DESKRELAY_ZENDESK_OAUTH_CLIENT_ID",
	"zdoauth.ClientSecret":  "DESKRELAY_ZENDESK_OAUTH_CLIENT_SECRET",
	"zdoauth.RefreshToken":  "DESKRELAY_ZENDESK_OAUTH_REFRESH_TOKEN",
	"zendesk.BaseURL":       "DESKRELAY_ZENDESK_URL",
	"zendesk.Subdomain":     "DESKRELAY_ZENDESK_SUBDOMAIN",
	"zendesk.Email":         "DESKRELAY_ZENDESK_EMAIL",
	"zendesk.APIToken":      "DESKRELAY_ZENDESK_API_TOKEN",
	"zendesk.OAuthToken":    "DESKRELAY_ZENDESK_OAUTH_TOKEN",
}

// addFields adds err's *validate.FieldError problems under the names the
// operator wrote (the setting, or its flag); it reports whether err held any.
func (p *problems) addFields(err error, name func(env string) string) bool {
	fields := validate.Fields(err)
	for _, fe := range fields {
		env, ok := fieldSettings[fe.Pkg+"."+fe.Field]
		if !ok {
			*p = append(*p, fe.Error())
			continue
		}
		p.add(name(env), "%s", fe.Problem)
	}
	return len(fields) > 0
}

// settingsError turns an error from building the parts into a settings
// error (exit status 2) naming the settings when it holds field errors.
func settingsError(err error) error {
	var p problems
	if p.addFields(err, func(env string) string { return env }) {
		return p.err()
	}
	return err
}
