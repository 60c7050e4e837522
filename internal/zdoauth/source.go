package zdoauth

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/lease"
	"github.com/deskrelay/deskrelay/zendesk"
)

// AuthMode is State.AuthMode.
const AuthMode = "oauth-refresh"

// Source supplies Zendesk OAuth access tokens shared by all replicas through
// Redis. It implements zendesk.TokenSource. Safe for concurrent use.
type Source struct {
	cfg     Config
	rdb     redis.UniversalClient
	log     zerolog.Logger
	oc      oauth2.Config
	hc      *http.Client
	key     string // keys.OAuthToken
	lockKey string // keys.OAuthRefreshLock
	m       *metrics
	sf      singleflight.Group

	seedMu sync.Mutex
	seeded atomic.Bool

	earlyMu   sync.Mutex
	earlyNext time.Time // no early refresh before this (after a failed one)
}

var _ zendesk.TokenSource = (*Source)(nil)

// New returns a Source, or an error naming the missing or invalid setting.
// It does not touch Redis: the configured refresh token is applied by Init,
// or by the first Token or Refresh.
func New(cfg Config, rdb redis.UniversalClient, log zerolog.Logger) (*Source, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if rdb == nil {
		return nil, errors.New("zdoauth: a Redis client is required")
	}
	tokenURL, _ := cfg.tokenURL()
	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if hc.Transport == nil {
		hc.Transport = http.DefaultTransport
	}
	if !cfg.FormEncoded {
		hc.Transport = jsonTransport{next: hc.Transport}
	}
	return &Source{
		cfg: cfg,
		rdb: rdb,
		log: log,
		oc: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint:     oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams},
		},
		hc:      &hc,
		key:     keys.For(cfg.Account).OAuthToken(),
		lockKey: keys.For(cfg.Account).OAuthRefreshLock(),
		m:       newMetrics(cfg.Metrics, cfg.Account),
	}, nil
}

// Init applies the configured refresh token if it was never configured
// before (replacing the stored one and dropping the access token made with
// it). Token and Refresh call it on first use; main may call it at start to
// fail early when Redis is unreachable.
func (s *Source) Init(ctx context.Context) error {
	if s.seeded.Load() {
		return nil
	}
	s.seedMu.Lock()
	defer s.seedMu.Unlock()
	if s.seeded.Load() {
		return nil
	}
	now := s.cfg.Now()
	n, err := seedScript.Run(ctx, s.rdb, []string{s.key},
		"cfg:"+hash(s.cfg.RefreshToken), s.cfg.RefreshToken, unixMilli(now)).Int()
	if err != nil {
		return temporary("store configured refresh token: %s", oneLine(err.Error(), 200))
	}
	if n == 1 {
		s.log.Info().Msg("zendesk oauth: a newly configured refresh token replaces the stored one")
	}
	s.seeded.Store(true)
	return nil
}

// Token returns the current access token, refreshing it first when it has
// expired or is about to. It implements zendesk.TokenSource.
func (s *Source) Token(ctx context.Context) (string, error) {
	if err := s.Init(ctx); err != nil {
		return "", err
	}
	st, err := s.load(ctx)
	if err != nil {
		return "", temporary("read token: %s", oneLine(err.Error(), 200))
	}
	now := s.cfg.Now()
	s.observe(st)
	if !st.usable(now) {
		return s.refresh(ctx, st.access, true)
	}
	if !st.dueEarly(now, s.cfg.RefreshBefore) || !s.earlyAllowed(now) {
		return st.access, nil
	}
	tok, err := s.refresh(ctx, st.access, false)
	if err != nil {
		// Still valid: keep using it; the failure is logged, counted and in State.
		s.earlyMu.Lock()
		s.earlyNext = now.Add(s.cfg.RetryEarly)
		s.earlyMu.Unlock()
		return st.access, nil
	}
	return tok, nil
}

func (s *Source) earlyAllowed(now time.Time) bool {
	s.earlyMu.Lock()
	defer s.earlyMu.Unlock()
	return !now.Before(s.earlyNext)
}

// Refresh returns a newer access token than stale, which Zendesk rejected
// with 401: the stored one if another caller or replica already refreshed,
// otherwise a new one from the token endpoint. A rejected refresh token
// gives a *zendesk.Error of KindUnauthorized, anything else that fails
// KindTemporary (or KindRateLimited). It implements zendesk.TokenSource.
func (s *Source) Refresh(ctx context.Context, stale string) (string, error) {
	if err := s.Init(ctx); err != nil {
		return "", err
	}
	return s.refresh(ctx, stale, true)
}

// refresh replaces stale, collapsing concurrent callers of this process.
// With wait false (an early refresh) it gives up at once when another
// replica holds the lock.
func (s *Source) refresh(ctx context.Context, stale string, wait bool) (string, error) {
	key := "early:" + hash(stale)
	if wait {
		key = "wait:" + hash(stale)
	}
	ch := s.sf.DoChan(key, func() (any, error) {
		// Detached from the first caller: the others may still want the result.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.WaitTimeout+s.cfg.Timeout)
		defer cancel()
		if wait {
			return s.refreshWait(fctx, stale)
		}
		return s.refreshEarly(fctx, stale)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", temporary("wait for token refresh: %s", ctx.Err())
	}
}

// refreshEarly renews a still-valid token if no other replica is doing so.
func (s *Source) refreshEarly(ctx context.Context, stale string) (string, error) {
	owner, err := s.lock(ctx)
	if err != nil {
		return "", err
	}
	if owner == nil {
		return "", temporary("another replica is refreshing")
	}
	defer s.unlock(owner)
	return s.refreshLocked(ctx, stale)
}

// refreshWait returns a token newer than stale: it refreshes under the lock,
// or waits for the replica that holds it.
func (s *Source) refreshWait(ctx context.Context, stale string) (string, error) {
	deadline := time.Now().Add(s.cfg.WaitTimeout)
	seq0, waited := int64(-1), false
	for {
		st, err := s.load(ctx)
		if err != nil {
			return "", temporary("read token: %s", oneLine(err.Error(), 200))
		}
		if st.usable(s.cfg.Now()) && st.access != stale {
			return st.access, nil
		}
		if st.rejected != "" && st.rejected == s.mark(st.refresh) {
			return "", unauthorized(st.lastError)
		}
		if seq0 >= 0 && st.seq != seq0 {
			// Another replica's attempt ended without a usable new token.
			return "", temporary("another replica's token refresh failed: %s", st.lastError)
		}
		if seq0 < 0 {
			seq0 = st.seq
		}
		owner, err := s.lock(ctx)
		if err != nil {
			return "", err
		}
		if owner != nil {
			defer s.unlock(owner)
			return s.refreshLocked(ctx, stale)
		}
		if !waited {
			waited = true
			s.m.waits.Inc()
		}
		if time.Now().After(deadline) {
			return "", temporary("timed out after %s waiting for another replica's token refresh", s.cfg.WaitTimeout)
		}
		t := time.NewTimer(s.cfg.PollInterval)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return "", temporary("wait for another replica's token refresh: %s", ctx.Err())
		}
	}
}

// refreshLocked runs the refresh grant while holding the lock.
func (s *Source) refreshLocked(ctx context.Context, stale string) (string, error) {
	st, err := s.load(ctx)
	if err != nil {
		return "", temporary("read token: %s", oneLine(err.Error(), 200))
	}
	if st.usable(s.cfg.Now()) && st.access != stale {
		return st.access, nil // refreshed just before we got the lock
	}
	if st.refresh == "" {
		// Only when the state was deleted under us: seed again next time.
		s.seeded.Store(false)
		return "", temporary("no refresh token stored")
	}
	if st.rejected != "" && st.rejected == s.mark(st.refresh) {
		return "", unauthorized(st.lastError)
	}

	secrets := []string{s.cfg.ClientSecret, s.cfg.RefreshToken, st.refresh, st.access, stale}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	rctx = context.WithValue(rctx, oauth2.HTTPClient, s.hc)
	tok, err := s.oc.TokenSource(rctx, &oauth2.Token{RefreshToken: st.refresh}).Token()
	now := s.cfg.Now()
	if err != nil {
		ze := s.classify(err, secrets)
		mark := ""
		if ze.Kind == zendesk.KindUnauthorized {
			mark = s.mark(st.refresh)
		}
		if _, ferr := failScript.Run(context.WithoutCancel(ctx), s.rdb, []string{s.key},
			st.refresh, ze.Message, unixMilli(now), mark).Result(); ferr != nil {
			s.log.Warn().Str("error", oneLine(ferr.Error(), 200)).Msg("zendesk oauth: could not record the failed refresh")
		}
		s.m.refreshes.WithLabelValues(outcome(ze)).Inc()
		ev := s.log.Warn()
		if ze.Kind == zendesk.KindUnauthorized {
			ev = s.log.Error()
		}
		ev.Int("zendesk_status", ze.Status).Str("kind", ze.Kind.String()).Str("error", ze.Message).
			Msg("zendesk oauth: token refresh failed")
		return "", ze
	}

	var expiry time.Time
	var expiresIn time.Duration
	switch {
	case tok.ExpiresIn > 0:
		expiresIn = time.Duration(tok.ExpiresIn) * time.Second
		expiry = now.Add(expiresIn)
	case !tok.Expiry.IsZero():
		expiry = tok.Expiry
	}
	newRefresh := tok.RefreshToken
	if newRefresh == "" {
		newRefresh = st.refresh // not rotated
	}
	n, err := saveScript.Run(context.WithoutCancel(ctx), s.rdb, []string{s.key},
		st.refresh, tok.AccessToken, unixMilli(expiry), strconv.FormatInt(int64(expiresIn/time.Second), 10),
		newRefresh, unixMilli(now)).Int()
	s.m.refreshes.WithLabelValues(outcomeOK).Inc()
	if !expiry.IsZero() {
		s.m.expiry.Set(float64(expiry.Unix()))
	}
	switch {
	case err != nil:
		// Zendesk has rotated the refresh token; losing it here means an
		// operator must configure a new one. Say so loudly.
		s.log.Error().Str("error", oneLine(err.Error(), 200)).
			Msg("zendesk oauth: refreshed, but could not store the new tokens in Redis; if this persists, configure a new OAuth refresh token")
	case n == 0:
		s.log.Info().Msg("zendesk oauth: refreshed, but the stored refresh token changed meanwhile (a new one was configured); keeping the stored state")
	default:
		ev := s.log.Info().Bool("rotated", newRefresh != st.refresh)
		if !expiry.IsZero() {
			ev = ev.Time("expires_at", expiry)
		}
		ev.Msg("zendesk oauth: access token refreshed")
	}
	return tok.AccessToken, nil
}

// lock takes the refresh lock; it is nil when another owner holds it.
func (s *Source) lock(ctx context.Context) (*lease.Lease, error) {
	l, err := lease.Acquire(ctx, s.rdb, s.lockKey, s.cfg.LockTTL)
	if err != nil {
		return nil, temporary("take refresh lock: %s", oneLine(err.Error(), 200))
	}
	return l, nil
}

func (s *Source) unlock(l *lease.Lease) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.Release(ctx); err != nil {
		s.log.Warn().Str("error", oneLine(err.Error(), 200)).Msg("zendesk oauth: could not release the refresh lock (it expires by itself)")
	}
}

func (s *Source) observe(st stored) {
	if !st.expiry.IsZero() {
		s.m.expiry.Set(float64(st.expiry.Unix()))
	}
}

// State is the OAuth part of GET /v1/status. It holds no token.
type State struct {
	// AuthMode is always "oauth-refresh".
	AuthMode string `json:"auth_mode"`
	// HasAccessToken: an access token is stored (it may have expired).
	HasAccessToken bool `json:"has_access_token"`
	// AccessTokenExpiresAt is when the stored access token expires; zero
	// when there is none or it does not expire.
	AccessTokenExpiresAt time.Time `json:"access_token_expires_at,omitzero"`
	// LastRefreshAt is when any replica last refreshed successfully.
	LastRefreshAt time.Time `json:"last_refresh_at,omitzero"`
	// LastRefreshError is the last failed refresh since the last success.
	LastRefreshError   string    `json:"last_refresh_error,omitempty"`
	LastRefreshErrorAt time.Time `json:"last_refresh_error_at,omitzero"`
	// Unauthorized: Zendesk rejected the stored refresh token with these
	// client credentials; configure a new refresh token (or client secret).
	Unauthorized bool `json:"unauthorized"`
}

// State reports the shared OAuth state for /v1/status.
func (s *Source) State(ctx context.Context) (State, error) {
	st, err := s.load(ctx)
	if err != nil {
		return State{AuthMode: AuthMode}, temporary("read token state: %s", oneLine(err.Error(), 200))
	}
	out := State{
		AuthMode:             AuthMode,
		HasAccessToken:       st.access != "",
		AccessTokenExpiresAt: st.expiry,
		LastRefreshAt:        st.refreshedAt,
		LastRefreshError:     st.lastError,
		LastRefreshErrorAt:   st.lastErrorAt,
		Unauthorized:         st.rejected != "" && st.rejected == s.mark(st.refresh),
	}
	if st.access == "" {
		out.AccessTokenExpiresAt = time.Time{}
	}
	return out, nil
}
