package main

import (
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/validate"
	"github.com/deskrelay/deskrelay/zendesk"
)

// config is every setting, typed and validated. Each package's own Config is
// filled from it in serve.go; nothing else reads the environment.
type config struct {
	listen string
	redis  asynq.RedisConnOpt
	// single is the account default of the DESKRELAY_ZENDESK_*, webhook and
	// target settings (accounts holds it when there is no accounts file).
	single            accountConfig
	ingestToken       string
	sinkURL           string
	sinkSecret        string
	sinkOutcomes      string
	adminUser         string
	adminPassword     string
	reconcileInterval time.Duration
	retryMaxDelay     time.Duration
	concurrency       int
	logFormat         string
	logLevel          string
	spoolDir          string
	publicURL         string
	autoReplay        bool
	webhookAutoEnable bool
	shutdownTimeout   time.Duration
	orderGapTimeout   time.Duration
	retention         time.Duration // DESKRELAY_RETENTION: relay.Config.Retention
	forwardPrivate    bool
	ops               opsSettings // viewer login, metrics address (opsettings.go)

	// accountsFile is DESKRELAY_ACCOUNTS_FILE; accounts are the Zendesk
	// accounts served: the file's, or the account default of the
	// DESKRELAY_ZENDESK_* settings (accountsconfig.go).
	accountsFile string
	accounts     []accountConfig

	// secrets are the values never to be printed.
	secrets []string

	// tuning holds knobs that are not settings: the demo and the end-to-end
	// tests shorten Zendesk's minute-scale rules with them.
	tuning tuning
}

// tuning shortens time-scale rules for the demo and tests; zero values keep
// the production defaults of each package.
type tuning struct {
	listener        net.Listener  // serve on this instead of listening on cfg.listen
	pollInterval    time.Duration // asynq's scheduled/retry polling
	reconcileLag    time.Duration // how far behind now the reconciler reads the export
	exportWindow    time.Duration // the window of the export's 10 requests/minute rule
	gateProbe       time.Duration // outage gate probe interval
	initialLookback time.Duration // how far back the first reconcile run starts
	logStart        bool          // log the start banner (off for the demo's quiet logs)
}

// oauthSettings is OAuth with a refresh token (client id, secret, refresh token).
type oauthSettings struct {
	clientID, clientSecret, refreshToken string
}

func (o oauthSettings) set() bool {
	return o.clientID != "" || o.clientSecret != "" || o.refreshToken != ""
}

// needs says which groups of settings a command requires.
type needs struct {
	zendesk bool // Zendesk URL and exactly one way of authenticating
	ingest  bool // DESKRELAY_INGEST_TOKEN
}

// parseConfig types and validates every setting, naming each problem's
// setting on its own line.
func parseConfig(v values, n needs) (*config, error) {
	var p problems
	c := &config{
		listen:        v["DESKRELAY_LISTEN"],
		ingestToken:   v["DESKRELAY_INGEST_TOKEN"],
		sinkSecret:    v["DESKRELAY_SINK_SECRET"],
		sinkOutcomes:  v["DESKRELAY_SINK_OUTCOMES"],
		adminUser:     v["DESKRELAY_ADMIN_USER"],
		adminPassword: v["DESKRELAY_ADMIN_PASSWORD"],
		logFormat:     v["DESKRELAY_LOG_FORMAT"],
		logLevel:      v["DESKRELAY_LOG_LEVEL"],
		spoolDir:      v["DESKRELAY_SPOOL_DIR"],
		secrets:       v.secretValues(),
	}
	c.redis = v.withRedisPassword(&p, v.redisOpt(&p))
	c.ops = v.opsSettings(&p)
	c.single = v.singleAccount(&p)
	c.concurrency = v.positiveInt(&p, "DESKRELAY_CONCURRENCY")
	c.reconcileInterval = v.duration(&p, "DESKRELAY_RECONCILE_INTERVAL", true)
	c.retryMaxDelay = v.duration(&p, "DESKRELAY_RETRY_MAX_DELAY", false)
	c.shutdownTimeout = v.duration(&p, "DESKRELAY_SHUTDOWN_TIMEOUT", false)
	c.orderGapTimeout = v.duration(&p, "DESKRELAY_ORDER_GAP_TIMEOUT", false)
	c.retention = v.duration(&p, "DESKRELAY_RETENTION", false)
	c.autoReplay = v.boolean(&p, "DESKRELAY_AUTO_REPLAY")
	c.webhookAutoEnable = v.boolean(&p, "DESKRELAY_WEBHOOK_AUTO_ENABLE")
	c.forwardPrivate = v.boolean(&p, "DESKRELAY_FORWARD_PRIVATE")
	c.sinkURL = strings.TrimRight(v["DESKRELAY_SINK_URL"], "/")
	c.publicURL = strings.TrimRight(v["DESKRELAY_PUBLIC_URL"], "/")

	switch strings.ToLower(c.logFormat) {
	case "auto", "json", "console":
	default:
		p.add(v.name("DESKRELAY_LOG_FORMAT"), "must be auto, json or console, got %q", c.logFormat)
	}
	switch strings.ToLower(c.logLevel) {
	case "debug", "info", "warn", "error":
	default:
		p.add(v.name("DESKRELAY_LOG_LEVEL"), "must be debug, info, warn or error, got %q", c.logLevel)
	}
	if n.ingest && c.ingestToken == "" {
		p.add(v.name("DESKRELAY_INGEST_TOKEN"), "required (the bearer token the platform sends to POST /v1/messages)")
	}
	c.checkPairs(&p, v.name)
	c.accountsFile = v["DESKRELAY_ACCOUNTS_FILE"]
	switch {
	case c.accountsFile != "":
		c.accounts = v.fileAccounts(&p, c.accountsFile)
		c.checkAccountsNeedSink(&p)
	case n.zendesk:
		c.checkZendeskAuth(&p)
		c.accounts = []accountConfig{c.single}
	default:
		c.accounts = []accountConfig{c.single}
	}
	c.checkParts(&p, v.name)
	return c, p.err()
}

// singleAccount is the account default of the DESKRELAY_ZENDESK_*, webhook
// and target settings.
func (v values) singleAccount(p *problems) accountConfig {
	a := accountConfig{
		name:            keys.DefaultAccount,
		webhookID:       v["DESKRELAY_ZENDESK_WEBHOOK_ID"],
		webhookSecret:   v["DESKRELAY_WEBHOOK_SECRET"],
		targetUser:      v["DESKRELAY_TARGET_USER"],
		targetPassword:  v["DESKRELAY_TARGET_PASSWORD"],
		targetID:        v.targetID(p),
		rateLimit:       v.rate(p, "DESKRELAY_ZENDESK_RATE_LIMIT"),
		updateRateLimit: v.rate(p, "DESKRELAY_ZENDESK_UPDATE_RATE_LIMIT"),
		fingerprint:     "settings",
		oauth: oauthSettings{
			clientID:     v["DESKRELAY_ZENDESK_OAUTH_CLIENT_ID"],
			clientSecret: v["DESKRELAY_ZENDESK_OAUTH_CLIENT_SECRET"],
			refreshToken: v["DESKRELAY_ZENDESK_OAUTH_REFRESH_TOKEN"],
		},
		zendesk: zendesk.Config{
			Subdomain:  strings.ToLower(v["DESKRELAY_ZENDESK_SUBDOMAIN"]),
			BaseURL:    v.httpURL(p, "DESKRELAY_ZENDESK_URL"),
			Email:      v["DESKRELAY_ZENDESK_EMAIL"],
			APIToken:   v["DESKRELAY_ZENDESK_API_TOKEN"],
			OAuthToken: v["DESKRELAY_ZENDESK_OAUTH_TOKEN"],
			UserAgent:  userAgent(),
		},
	}
	if a.zendesk.Subdomain != "" {
		if problem := validate.Subdomain(a.zendesk.Subdomain); problem != "" {
			p.add(v.name("DESKRELAY_ZENDESK_SUBDOMAIN"), "%s", problem)
		}
	}
	return a
}

// checkPairs reports settings that go together.
func (c *config) checkPairs(p *problems, name func(env string) string) {
	if (c.adminUser == "") != (c.adminPassword == "") {
		p.add(name("DESKRELAY_ADMIN_PASSWORD"), "DESKRELAY_ADMIN_USER and DESKRELAY_ADMIN_PASSWORD go together")
	}
	if (c.single.targetUser == "") != (c.single.targetPassword == "") {
		p.add(name("DESKRELAY_TARGET_PASSWORD"), "DESKRELAY_TARGET_USER and DESKRELAY_TARGET_PASSWORD go together")
	}
	if c.sinkURL == "" && (c.sinkSecret != "" || c.single.webhookSecret != "" || c.single.webhookID != "" || c.single.targetID != 0) {
		p.add(name("DESKRELAY_SINK_URL"), "required when DESKRELAY_SINK_SECRET, DESKRELAY_WEBHOOK_SECRET or a webhook/target id is set: Zendesk's updates need somewhere to go")
	}
}

// targetID parses DESKRELAY_ZENDESK_TARGET_ID.
func (v values) targetID(p *problems) int64 {
	const env = "DESKRELAY_ZENDESK_TARGET_ID"
	if v[env] == "" {
		return 0
	}
	id, err := strconv.ParseInt(v[env], 10, 64)
	if err != nil || id <= 0 {
		p.add(v.name(env), "must be a positive number, got %q", v[env])
		return 0
	}
	return id
}

// checkParts lets each package validate its own Config fields, once, and
// reports their problems under the settings' names.
func (c *config) checkParts(p *problems, name func(env string) string) {
	p.addFields(c.relayConfig().Validate(), name)
	p.addFields(queues.Policy{MaxDelay: c.retryMaxDelay}.Validate(), name)
	if c.sinkURL != "" || c.sinkSecret != "" {
		// Without a sink URL, parseConfig has said why one is needed.
		for _, fe := range validate.Fields(c.inboundConfig(true).Validate()) {
			if c.sinkURL != "" || fe.Field != "SinkURL" {
				p.addFields(fe, name)
			}
		}
	}
	p.addFields(c.reconcileConfig().Validate(), name)
	p.addFields(c.outcomesConfig().Validate(), name)
}

// checkZendeskAuth requires a Zendesk address and exactly one way of
// authenticating, naming the conflict or the missing piece.
func (c *config) checkZendeskAuth(p *problems) {
	z := c.single.zendesk
	if z.BaseURL == "" && z.Subdomain == "" {
		p.add("DESKRELAY_ZENDESK_SUBDOMAIN", "required (or DESKRELAY_ZENDESK_URL)")
	}
	var ways []string
	if z.Email != "" || z.APIToken != "" {
		ways = append(ways, "API token (DESKRELAY_ZENDESK_EMAIL + DESKRELAY_ZENDESK_API_TOKEN)")
		if z.Email == "" {
			p.add("DESKRELAY_ZENDESK_EMAIL", "required with DESKRELAY_ZENDESK_API_TOKEN")
		}
		if z.APIToken == "" {
			p.add("DESKRELAY_ZENDESK_API_TOKEN", "required with DESKRELAY_ZENDESK_EMAIL")
		}
	}
	if z.OAuthToken != "" {
		ways = append(ways, "fixed OAuth token (DESKRELAY_ZENDESK_OAUTH_TOKEN)")
	}
	if c.single.oauth.set() {
		ways = append(ways, "OAuth with refresh (DESKRELAY_ZENDESK_OAUTH_CLIENT_ID + _CLIENT_SECRET + _REFRESH_TOKEN)")
		if c.single.oauth.clientID == "" {
			p.add("DESKRELAY_ZENDESK_OAUTH_CLIENT_ID", "required for OAuth with refresh")
		}
		if c.single.oauth.clientSecret == "" {
			p.add("DESKRELAY_ZENDESK_OAUTH_CLIENT_SECRET", "required for OAuth with refresh")
		}
		if c.single.oauth.refreshToken == "" {
			p.add("DESKRELAY_ZENDESK_OAUTH_REFRESH_TOKEN", "required for OAuth with refresh")
		}
	}
	switch len(ways) {
	case 0:
		p.add("DESKRELAY_ZENDESK_OAUTH_CLIENT_ID", "no Zendesk credentials: set OAuth with refresh (DESKRELAY_ZENDESK_OAUTH_CLIENT_ID, _CLIENT_SECRET, _REFRESH_TOKEN), DESKRELAY_ZENDESK_OAUTH_TOKEN, or DESKRELAY_ZENDESK_EMAIL + DESKRELAY_ZENDESK_API_TOKEN")
	case 1:
	default:
		p.add("DESKRELAY_ZENDESK_API_TOKEN", "more than one way of authenticating is set: %s; keep one", strings.Join(ways, ", "))
	}
}

// apiTokenAccounts names the accounts that use the retiring API-token auth.
func (c *config) apiTokenAccounts() []string {
	var out []string
	for _, a := range c.accounts {
		if a.zendesk.APIToken != "" {
			out = append(out, a.name)
		}
	}
	return out
}

// apiTokenRetirement is the day Zendesk's API tokens stop working.
var apiTokenRetirement = time.Date(2027, 4, 30, 0, 0, 0, 0, time.UTC)
