package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/reconcile"
	"github.com/deskrelay/deskrelay/relay"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// goDuration is a Go time.Duration printed as a string ("5m0s", "1.5s").
var goDuration = regexp.MustCompile(`^-?([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`)

// durationWord names a duration; a key with one must end in _seconds.
var durationWord = regexp.MustCompile(`(^|_)(interval|window|duration|wait|timeout|delay|age|latency|ttl|elapsed|backoff|period)(_|$)`)

// checkJSONConventions walks a JSON document and reports every field that
// breaks the convention of the README's "Status JSON": durations are
// numbers of seconds in fields named *_seconds; times are RFC 3339 strings
// in fields named *_at, since, until or time.
func checkJSONConventions(path string, v any) []string {
	var bad []string
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			bad = append(bad, checkField(path+"."+k, k, val)...)
			bad = append(bad, checkJSONConventions(path+"."+k, val)...)
		}
	case []any:
		for i, val := range x {
			bad = append(bad, checkJSONConventions(fmt.Sprintf("%s[%d]", path, i), val)...)
		}
	case string:
		if goDuration.MatchString(x) {
			bad = append(bad, fmt.Sprintf("%s = %q: a Go duration string (want a number in a *_seconds field)", path, x))
		}
	}
	return bad
}

func checkField(path, key string, val any) []string {
	num, isNum := val.(float64)
	str, isStr := val.(string)
	switch {
	case strings.HasSuffix(key, "_seconds"):
		if !isNum {
			return []string{fmt.Sprintf("%s = %v: a *_seconds field must be a number", path, val)}
		}
	case strings.HasSuffix(key, "_ns") || strings.HasSuffix(key, "_ms") || strings.HasSuffix(key, "_nanos"):
		return []string{fmt.Sprintf("%s: durations are in seconds, in a *_seconds field", path)}
	case durationWord.MatchString(key) && isNum:
		return []string{fmt.Sprintf("%s = %v: a duration without its unit (name it %s_seconds, in seconds)", path, num, key)}
	case isTimeKey(key) && isNum:
		return []string{fmt.Sprintf("%s = %v: a time as a number (want an RFC 3339 string)", path, num)}
	case isTimeKey(key) && isStr:
		if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
			return []string{fmt.Sprintf("%s = %q: not an RFC 3339 time", path, str)}
		}
	}
	return nil
}

func isTimeKey(k string) bool {
	return strings.HasSuffix(k, "_at") || slices.Contains([]string{"time", "since", "until"}, k) ||
		strings.HasSuffix(k, "_since") || strings.HasSuffix(k, "_until")
}

func TestJSONConventionsChecker(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want int // problems found
	}{
		{name: "Conventional", doc: `{"interval_seconds": 300, "checked_at": "2026-12-02T14:00:00Z", "window": {"since": "2026-12-02T14:00:00Z"}, "failure_ratio": 0.2}`},
		{name: "GoDurationString", doc: `{"interval": "5m0s"}`, want: 1},
		{name: "Nanoseconds", doc: `{"last_run": {"duration": 1500000000}}`, want: 1},
		{name: "MillisecondsField", doc: `{"retry_in_ms": 15}`, want: 1},
		{name: "SecondsAsString", doc: `{"age_seconds": "12"}`, want: 1},
		{name: "UnixTime", doc: `{"paused_until": 1764684000}`, want: 1},
		{name: "TimeNotRFC3339", doc: `{"checked_at": "Dec 2 14:00"}`, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(tt.doc), &v); err != nil {
				t.Fatal(err)
			}
			if got := checkJSONConventions("", v); len(got) != tt.want {
				t.Errorf("problems = %q, want %d", got, tt.want)
			}
		})
	}
}

// TestStatusJSONFollowsOneConvention reads a real /v1/status (with the
// reconciler's last run and the guardian's webhook check in it) and a real
// `deskrelay webhook status --json`, and fails on any duration or time that
// does not follow the README's "Status JSON" convention.
func TestStatusJSONFollowsOneConvention(t *testing.T) {
	db := redistest.New(t)
	zd := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", APIToken: "zd-api-token-SECRET1"})
	env := daemonEnv(t, db.URL(), zd.URL())
	env["DESKRELAY_ZENDESK_WEBHOOK_ID"] = zd.AddWebhook("http://127.0.0.1:1/v1/zendesk/webhook", "webhook-secret-SECRET3")
	env["DESKRELAY_RECONCILE_INTERVAL"] = "1m"
	base, _, _ := startDaemon(t, env)

	var doc map[string]any
	testutil.WaitFor(t, 15*time.Second, func() bool {
		doc = adminGet(t, base+"/v1/status", env["DESKRELAY_ADMIN_PASSWORD"])
		rec, _ := doc["reconcile"].(map[string]any)
		return rec["last_run"] != nil && rec["webhook"] != nil
	}, "/v1/status with the reconciler's last run and webhook check")
	for _, p := range checkJSONConventions("/v1/status", doc) {
		t.Error(p)
	}
	rec := doc["reconcile"].(map[string]any)
	if rec["interval_seconds"] != 60.0 {
		t.Errorf("/v1/status reconcile.interval_seconds = %v, want 60", rec["interval_seconds"])
	}

	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"webhook", "status", "--json"}, envFrom(env), &out, &errb); err != nil {
		t.Fatalf("webhook status --json: %v\n%s", err, errb.String())
	}
	var st any
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("webhook status --json is not JSON: %v\n%s", err, out.String())
	}
	for _, p := range checkJSONConventions("webhook status", st) {
		t.Error(p)
	}
	if w := st.(map[string]any)["breaker"].(map[string]any)["window_seconds"]; w != 300.0 {
		t.Errorf("webhook status breaker.window_seconds = %v, want 300", w)
	}

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`deskrelay_outbound_oldest_pending_age_seconds{account="default"} 0`, `deskrelay_outbound_credentials_unauthorized{account="default"} 0`, `deskrelay_outbound_backlog{account="default"} 0`, "deskrelay_reconcile_interval_seconds 60"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// adminGet GETs url as admin and returns its JSON object; anything but a
// 200 with one fails the test.
func adminGet(t *testing.T, url, password string) map[string]any {
	t.Helper()
	code, raw := adminGetRaw(t, url, password)
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil || code != http.StatusOK {
		t.Fatalf("GET %s = %d %s (%v)", url, code, raw, err)
	}
	return doc
}

// TestWebhookStatusSaysItPlainly: a webhook id Zendesk does not know is
// named with the setting to check, and the text shows the failure ratio
// with Zendesk's thresholds.
func TestWebhookStatusSaysItPlainly(t *testing.T) {
	t.Run("UnknownWebhookNamesTheSetting", func(t *testing.T) {
		env, _ := opsEnv(t)
		env["DESKRELAY_ZENDESK_WEBHOOK_ID"] = "01HXNOTAWEBHOOK000000000000"
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{"webhook", "status"}, envFrom(env), &out, &errb)
		want := "webhook 01HXNOTAWEBHOOK000000000000 not found in Zendesk: check DESKRELAY_ZENDESK_WEBHOOK_ID"
		if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "Webhook not found") {
			t.Fatalf("webhook status of an unknown id: %v, want %q", err, want)
		}
	})
	t.Run("BreakerRatioWithZendeskThresholds", func(t *testing.T) {
		var out bytes.Buffer
		printWatchState(&environment{stdout: &out}, reconcile.WatchState{Kind: reconcile.KindWebhook, ID: "01H", State: "active", ReceiverHealthy: true,
			Breaker: &reconcile.BreakerState{WindowSeconds: 300, Requests: 60, Failed: 12, FailureRatio: 0.2}})
		want := "12 of 60 calls failed in the last 5 min (20%); Zendesk's breaker trips at 70% of at least 100 calls, or over 1000 errors, in 5 min"
		if !strings.Contains(out.String(), "breaker ") || !strings.Contains(out.String(), want) {
			t.Fatalf("webhook status text:\n%s\nwant a breaker line %q", out.String(), want)
		}
	})
}

// fakeOutbound is an outboundState with fixed answers.
type fakeOutbound struct {
	oldest       time.Time
	pending      bool
	unauthorized bool
	err          error
}

func (f fakeOutbound) Summary(context.Context) (relay.Summary, error) {
	s := relay.Summary{Credentials: relay.CredentialsOK, Gate: relay.GateOpen}
	if f.pending {
		s.Oldest, s.Backlog = f.oldest, 1
	}
	if f.unauthorized {
		s.Credentials = relay.CredentialsUnauthorized
	}
	return s, f.err
}

// TestOutboundGauges: the queue collector reports the age of the oldest
// undelivered outbound message (0 when there is none) and the credentials'
// state, and leaves them out of a scrape when Redis cannot be read (never a
// false 0).
func TestOutboundGauges(t *testing.T) {
	db := redistest.New(t)
	insp := asynq.NewInspector(db.AsynqOpt())
	t.Cleanup(func() { _ = insp.Close() })
	now := time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)
	const age, unauth = "deskrelay_outbound_oldest_pending_age_seconds", "deskrelay_outbound_credentials_unauthorized"
	tests := []struct {
		name     string
		outbound fakeOutbound
		want     map[string][]float64
	}{
		{name: "AgeOfTheOldest", outbound: fakeOutbound{oldest: now.Add(-90 * time.Second), pending: true},
			want: map[string][]float64{age: {90}, unauth: {0}}},
		{name: "ZeroWhenNone", outbound: fakeOutbound{}, want: map[string][]float64{age: {0}, unauth: {0}}},
		{name: "Unauthorized", outbound: fakeOutbound{unauthorized: true}, want: map[string][]float64{age: {0}, unauth: {1}}},
		{name: "AbsentOnError", outbound: fakeOutbound{err: errors.New("redis down")}, want: map[string][]float64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newQueueCollector(insp, func() map[string]outboundState { return map[string]outboundState{"default": tt.outbound} }, zerolog.Nop())
			c.now = func() time.Time { return now }
			reg := prometheus.NewRegistry()
			reg.MustRegister(c)
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]float64{}
			for _, mf := range mfs {
				if mf.GetName() == age || mf.GetName() == unauth {
					for _, m := range mf.GetMetric() {
						got[mf.GetName()] = append(got[mf.GetName()], m.GetGauge().GetValue())
					}
				}
			}
			if !maps.EqualFunc(got, tt.want, slices.Equal) {
				t.Errorf("gauges = %v, want %v", got, tt.want)
			}
		})
	}
}
