package main

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
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
	{env: "DESKRELAY_REDIS_URL", def: "redis://127.0.0.1:6379/0", help: "Redis; rediss:// for TLS; redis-sentinel://host1,host2?master=name; redis-socket://path", secret: true},
	{env: "DESKRELAY_ZENDESK_SUBDOMAIN", help: "acme for acme.zendesk.com"},
	{env: "DESKRELAY_ZENDESK_URL", help: "full base URL; overrides the subdomain (tests, sandboxes, proxies)"},
	{env: "DESKRELAY_ZENDESK_EMAIL", help: "API token auth: the agent's email"},
	{env: "DESKRELAY_ZENDESK_API_TOKEN", help: "API token auth (email/token:TOKEN); Zendesk retires API tokens on 2027-04-30", secret: true},
	{env: "DESKRELAY_ZENDESK_OAUTH_TOKEN", help: "a fixed OAuth access token (bearer)", secret: true},
	{env: "DESKRELAY_ZENDESK_OAUTH_CLIENT_ID", help: "OAuth with refresh: the OAuth client's identifier"},
	{env: "DESKRELAY_ZENDESK_OAUTH_CLIENT_SECRET", help: "OAuth with refresh: the OAuth client's secret", secret: true},
	{env: "DESKRELAY_ZENDESK_OAUTH_REFRESH_TOKEN", help: "OAuth with refresh: the first refresh token; rotated tokens live in Redis", secret: true},
	{env: "DESKRELAY_ZENDESK_RATE_LIMIT", def: "200", help: "requests per minute deskrelay may use of the account's budget, shared by all replicas"},
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
	{env: "DESKRELAY_LOG_FORMAT", def: "json", help: "json, or console for people"},
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
}

// values holds every setting's resolved value: flag, else environment, else default.
type values map[string]string

// bindSettings registers a flag for every setting on fs and returns a
// function that resolves the values after fs.Parse.
func bindSettings(fs *flag.FlagSet, getenv func(string) string) func() values {
	flags := make(map[string]*string, len(settings))
	for _, s := range settings {
		usage := s.help + " (" + s.env + ")"
		flags[s.env] = fs.String(s.flagName(), "", usage)
	}
	return func() values {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		v := make(values, len(settings))
		for _, s := range settings {
			switch {
			case set[s.flagName()]:
				v[s.env] = *flags[s.env]
			case strings.TrimSpace(getenv(s.env)) != "":
				v[s.env] = strings.TrimSpace(getenv(s.env))
			default:
				v[s.env] = s.def
			}
		}
		return v
	}
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
		p.add(env, "%q is not a duration (e.g. 30s, 5m, 1h)", v[env])
	case d < 0 || (d == 0 && !allowZero):
		p.add(env, "must be positive, got %s", v[env])
	}
	return d
}

func (v values) positiveInt(p *problems, env string) int {
	n, err := strconv.Atoi(v[env])
	if err != nil || n <= 0 {
		p.add(env, "must be a positive whole number, got %q", v[env])
	}
	return n
}

func (v values) boolean(p *problems, env string) bool {
	b, err := strconv.ParseBool(v[env])
	if err != nil {
		p.add(env, "must be true or false, got %q", v[env])
	}
	return b
}

// redisOpt parses DESKRELAY_REDIS_URL without ever echoing it (it may hold a password).
func (v values) redisOpt(p *problems) asynq.RedisConnOpt {
	const env = "DESKRELAY_REDIS_URL"
	raw := v[env]
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		p.add(env, "not a valid URL (want redis://host:port/db, rediss://…, redis-sentinel://…, redis-socket://…)")
		return nil
	}
	opt, err := asynq.ParseRedisURI(raw)
	if err != nil {
		p.add(env, "unsupported scheme %q or malformed URL (want redis, rediss, redis-sentinel or redis-socket)", u.Scheme)
		return nil
	}
	return opt
}

var subdomainRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// httpURL checks an http(s) URL setting.
func (v values) httpURL(p *problems, env string) string {
	raw := v[env]
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.add(env, "must be an http:// or https:// URL")
		return ""
	}
	if u.User != nil {
		p.add(env, "must not carry credentials in the URL")
		return ""
	}
	return strings.TrimRight(raw, "/")
}
