package zdoauth

import (
	"cmp"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deskrelay/deskrelay/internal/validate"
)

// Defaults for Config.
const (
	DefaultAccount       = "default"
	DefaultTimeout       = 10 * time.Second
	DefaultRefreshBefore = 5 * time.Minute
	DefaultLockTTL       = 30 * time.Second
	DefaultWaitTimeout   = 20 * time.Second
	DefaultPollInterval  = 50 * time.Millisecond
	DefaultRetryEarly    = 30 * time.Second
)

// Config configures a Source. Package main fills it from the settings;
// errors are *validate.FieldError naming the field.
type Config struct {
	// BaseURL is the Zendesk account's base URL, e.g. https://acme.zendesk.com
	// tokens are refreshed at BaseURL + "/oauth/tokens". When empty it is
	// built from Subdomain.
	BaseURL string
	// Subdomain is "acme" for acme.zendesk.com; used when BaseURL is empty.
	Subdomain string
	// ClientID is the OAuth client's unique identifier. Required.
	ClientID string
	// ClientSecret is the OAuth client's secret. Required.
	ClientSecret string
	// RefreshToken is the configured refresh token. Required. It is used only if it
	// was never configured before; afterwards the rotated one in Redis is.
	RefreshToken string
	// Account names the Zendesk account in Redis keys. Default "default".
	Account string
	// HTTPClient sends the token requests (tests). Optional; redirects are
	// not followed.
	HTTPClient *http.Client
	// FormEncoded sends the token request form-encoded, as RFC 6749 says,
	// instead of the JSON body Zendesk's API reference documents. Default
	// false (JSON).
	FormEncoded bool
	// Timeout bounds one token request. Default 10s.
	Timeout time.Duration
	// RefreshBefore: an access token is renewed this long before it expires
	// (at most a quarter of its lifetime before). Default 5m.
	RefreshBefore time.Duration
	// LockTTL bounds how long a replica may hold the refresh lock (if it dies
	// holding it, others take over after this). Must exceed Timeout.
	// Default 30s.
	LockTTL time.Duration
	// WaitTimeout bounds how long a caller waits for another replica's
	// refresh before giving up with a temporary error. Default 20s.
	WaitTimeout time.Duration
	// PollInterval is how often a waiting caller looks for the new token.
	// Default 50ms.
	PollInterval time.Duration
	// RetryEarly is how long a replica waits before trying an early
	// (before expiry) refresh again after one failed. Default 30s.
	RetryEarly time.Duration
	// Now is the clock for expiries. Default time.Now.
	Now func() time.Time
	// Metrics registers the package's metrics when set.
	Metrics prometheus.Registerer
}

func (c Config) withDefaults() Config {
	c.Account = cmp.Or(c.Account, DefaultAccount)
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	c.RefreshBefore = cmp.Or(c.RefreshBefore, DefaultRefreshBefore)
	c.LockTTL = cmp.Or(c.LockTTL, DefaultLockTTL)
	c.WaitTimeout = cmp.Or(c.WaitTimeout, DefaultWaitTimeout)
	c.PollInterval = cmp.Or(c.PollInterval, DefaultPollInterval)
	c.RetryEarly = cmp.Or(c.RetryEarly, DefaultRetryEarly)
	if c.Now == nil {
		c.Now = time.Now
	}
	c.BaseURL = strings.TrimSpace(c.BaseURL)
	c.Subdomain = strings.ToLower(strings.TrimSpace(c.Subdomain))
	return c
}

// tokenURL returns BaseURL + "/oauth/tokens". Errors never echo the value.
func (c Config) tokenURL() (string, error) {
	if c.BaseURL == "" {
		if c.Subdomain == "" {
			return "", validate.Errorf("zdoauth", "Subdomain", "required (or BaseURL) for OAuth")
		}
		if problem := validate.Subdomain(c.Subdomain); problem != "" {
			return "", validate.Errorf("zdoauth", "Subdomain", "%s", problem)
		}
		return "https://" + c.Subdomain + ".zendesk.com/oauth/tokens", nil
	}
	if problem := validate.HTTPURL(c.BaseURL); problem != "" {
		return "", validate.Errorf("zdoauth", "BaseURL", "%s", problem)
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", validate.Errorf("zdoauth", "BaseURL", "must not contain a query or fragment")
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/oauth/tokens"
	u.RawPath = ""
	return u.String(), nil
}

// Validate checks c (after its defaults), reporting each bad field as a
// *validate.FieldError.
func (c Config) Validate() error { return c.withDefaults().validate() }

func (c Config) validate() error {
	if _, err := c.tokenURL(); err != nil {
		return err
	}
	for _, s := range []struct{ name, v string }{
		{"ClientID", c.ClientID},
		{"ClientSecret", c.ClientSecret},
		{"RefreshToken", c.RefreshToken},
	} {
		switch {
		case s.v == "":
			return validate.Errorf("zdoauth", s.name, "required for OAuth with refresh tokens")
		case strings.ContainsAny(s.v, " \t\r\n"):
			return validate.Errorf("zdoauth", s.name, "must not contain whitespace")
		}
	}
	switch {
	case strings.ContainsAny(c.Account, " \t\r\n:{}"):
		return validate.Errorf("zdoauth", "Account", "no whitespace, colons or braces")
	case c.Timeout < 0, c.RefreshBefore < 0, c.WaitTimeout < 0, c.PollInterval < 0, c.RetryEarly < 0:
		return validate.Errorf("zdoauth", "Timeout", "durations must not be negative")
	case c.LockTTL <= c.Timeout:
		return validate.Errorf("zdoauth", "LockTTL", "must exceed Timeout")
	}
	return nil
}
