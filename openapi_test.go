package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/api"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// The conformance check of api/openapi.json against the real handlers:
// every (route, status) that the daemon answers during this package's tests
// is recorded (observeResponse), and after the tests
//   - an answered (route, status) that the document does not list fails the
//     package, whatever tests ran;
//   - a documented (route, status) that no test produced fails it too, when
//     the whole package ran (no -run/-skip), unless notYetProduced names it.

// notYetProduced lists documented answers that no test can produce yet,
// each with the reason. Remove an entry when a test produces it: the check
// fails while an entry is stale.
var notYetProduced = map[string]string{
	// Only when Redis is unreachable AND the local spool cannot be written;
	// no test in package main breaks the spool (inbound's own tests do).
	"POST /v1/zendesk/target 503": "needs Redis down and an unwritable spool",
	// The same for an account named in the path; the webhook's 503 (waiting
	// for the secret) is produced on the path of the account default.
	"POST /v1/zendesk/target/{account} 503":  "needs Redis down and an unwritable spool",
	"POST /v1/zendesk/webhook/{account} 503": "needs a webhook id Zendesk does not answer for, or Redis down and an unwritable spool",
}

// routesExempt are routes.go patterns that are not part of the JSON API.
var routesExempt = map[string]string{
	"/":            "the catch-all 404 for unknown endpoints",
	"/monitoring/": "asynqmon's web UI (a subtree of HTML and its own JSON), behind admin auth",
}

var answered = struct {
	mu  sync.Mutex
	set map[string]bool // "METHOD /path status"
}{set: map[string]bool{}}

func recordAnswer(_, pattern string, status int) {
	if pattern == "" { // the mux's own 405 or redirect: no route matched
		return
	}
	answered.mu.Lock()
	defer answered.mu.Unlock()
	answered.set[pattern+" "+strconv.Itoa(status)] = true
}

// conformanceM runs the package's tests with answers recorded, then checks
// them against api/openapi.json.
type conformanceM struct{ m *testing.M }

func withOpenAPIConformance(m *testing.M) conformanceM { return conformanceM{m} }

func (c conformanceM) Run() int {
	observeResponse = recordAnswer
	code := c.m.Run()
	problems, notes := checkConformance()
	for _, n := range notes {
		fmt.Fprintln(os.Stderr, "openapi conformance:", n)
	}
	if len(problems) > 0 {
		fmt.Fprintln(os.Stderr, "FAIL: api/openapi.json does not match the handlers:")
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "  -", p)
		}
		if code == 0 {
			code = 1
		}
	}
	return code
}

// wholePackageRan reports whether no -run or -skip filter left tests out.
func wholePackageRan() bool {
	for _, name := range []string{"test.run", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return true
}

func checkConformance() (problems, notes []string) {
	doc, err := loadOpenAPI()
	if err != nil {
		return []string{err.Error()}, nil
	}
	documented := doc.statuses()
	answered.mu.Lock()
	got := make(map[string]bool, len(answered.set))
	for k := range answered.set {
		got[k] = true
	}
	answered.mu.Unlock()

	for _, k := range sortedKeys(got) {
		pattern, _ := cutStatus(k)
		if _, exempt := routesExempt[pattern]; exempt {
			continue
		}
		if !documented[k] {
			problems = append(problems, "answered but undocumented: "+k)
		}
		if reason, ok := notYetProduced[k]; ok {
			problems = append(problems, fmt.Sprintf("now produced, remove it from notYetProduced: %s (%s)", k, reason))
		}
	}
	if !wholePackageRan() {
		return problems, append(notes, "only part of the package ran: documented answers that no test produced are not checked")
	}
	for _, k := range sortedKeys(documented) {
		if got[k] {
			continue
		}
		if reason, ok := notYetProduced[k]; ok {
			notes = append(notes, fmt.Sprintf("documented, not produced yet (allowed): %s: %s", k, reason))
			continue
		}
		problems = append(problems, "documented but no test produced it: "+k)
	}
	return problems, notes
}

func cutStatus(k string) (pattern, status string) {
	i := strings.LastIndexByte(k, ' ')
	return k[:i], k[i+1:]
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// openAPIDoc is the part of an OpenAPI 3.1 document the checks read.
type openAPIDoc struct {
	OpenAPI  string                                 `json:"openapi"`
	Paths    map[string]map[string]openAPIOperation `json:"paths"`
	Webhooks map[string]map[string]openAPIOperation `json:"webhooks"`
	Comps    map[string]map[string]json.RawMessage  `json:"components"`
	Raw      map[string]any                         `json:"-"` // the whole document, for $ref checks
}

type openAPIOperation struct {
	Responses map[string]json.RawMessage `json:"responses"`
	Security  []map[string][]string      `json:"security"`
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func loadOpenAPI() (*openAPIDoc, error) {
	var doc openAPIDoc
	if err := json.Unmarshal(api.OpenAPI, &doc); err != nil {
		return nil, fmt.Errorf("api/openapi.json is not JSON: %w", err)
	}
	if err := json.Unmarshal(api.OpenAPI, &doc.Raw); err != nil {
		return nil, fmt.Errorf("api/openapi.json is not a JSON object: %w", err)
	}
	return &doc, nil
}

// statuses returns every documented "METHOD /path status".
func (d *openAPIDoc) statuses() map[string]bool {
	out := map[string]bool{}
	for path, ops := range d.Paths {
		for method, op := range ops {
			if !slices.Contains(httpMethods, method) {
				continue
			}
			for code := range op.Responses {
				if _, err := strconv.Atoi(code); err == nil {
					out[strings.ToUpper(method)+" "+path+" "+code] = true
				}
			}
		}
	}
	return out
}

// operations returns every documented "METHOD /path".
func (d *openAPIDoc) operations() []string {
	var out []string
	for path, ops := range d.Paths {
		for method := range ops {
			if slices.Contains(httpMethods, method) {
				out = append(out, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(out)
	return out
}

// routedPatterns reads the ServeMux patterns registered in routes.go: the
// string literal first argument of every Handle and HandleFunc call.
func routedPatterns(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "routes.go", nil, 0)
	if err != nil {
		t.Fatalf("parse routes.go: %v", err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
			return true
		}
		lit, ok := call.Args[0].(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			t.Errorf("routes.go: a %s call whose pattern is not a string literal: the OpenAPI check cannot read it", sel.Sel.Name)
			return true
		}
		p, _ := strconv.Unquote(lit.Value)
		out = append(out, p)
		return true
	})
	slices.Sort(out)
	return slices.Compact(out)
}

func TestOpenAPIDocumentIsOpenAPI31(t *testing.T) {
	doc, err := loadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^3\.1\.\d+$`).MatchString(doc.OpenAPI) {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	if len(doc.Paths) == 0 {
		t.Fatal("no paths")
	}
	for _, hook := range []string{"ticket.comment_added", "ticket.status_changed", "message.failed", "message.delivered"} {
		if _, ok := doc.Webhooks[hook]["post"]; !ok {
			t.Errorf("webhooks lacks the sink delivery %s", hook)
		}
	}
	schemes := doc.Comps["securitySchemes"]
	for _, name := range []string{"ingestToken", "adminBasic", "targetBasic", "zendeskSignature"} {
		if _, ok := schemes[name]; !ok {
			t.Errorf("components.securitySchemes lacks %s", name)
		}
	}
	for op, o := range doc.Paths {
		for method, operation := range o {
			for _, req := range operation.Security {
				for name := range req {
					if _, ok := schemes[name]; !ok {
						t.Errorf("%s %s uses the undefined security scheme %s", method, op, name)
					}
				}
			}
		}
	}
	checkRefs(t, doc.Raw, doc.Raw)
}

// checkRefs fails for every local $ref that does not resolve.
func checkRefs(t *testing.T, root map[string]any, node any) {
	t.Helper()
	switch v := node.(type) {
	case map[string]any:
		if ref, ok := v["$ref"].(string); ok {
			if resolveRef(root, ref) == nil {
				t.Errorf("$ref %s does not resolve", ref)
			}
		}
		for _, child := range v {
			checkRefs(t, root, child)
		}
	case []any:
		for _, child := range v {
			checkRefs(t, root, child)
		}
	}
}

func resolveRef(root map[string]any, ref string) any {
	if !strings.HasPrefix(ref, "#/") {
		return nil
	}
	var cur any = root
	for _, part := range strings.Split(ref[2:], "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")]
	}
	return cur
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc, err := loadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	var routed []string
	for _, p := range routedPatterns(t) {
		if _, exempt := routesExempt[p]; exempt {
			continue
		}
		if !strings.Contains(p, " ") {
			t.Errorf("routes.go: pattern %q has no method: give it one, or exempt it in routesExempt with the reason", p)
			continue
		}
		routed = append(routed, p)
	}
	documented := doc.operations()
	for _, p := range routed {
		if !slices.Contains(documented, p) {
			t.Errorf("routes.go serves %s, which api/openapi.json does not document", p)
		}
	}
	for _, p := range documented {
		if !slices.Contains(routed, p) {
			t.Errorf("api/openapi.json documents %s, which routes.go does not serve", p)
		}
	}
}

// conformanceRequest is one request of TestOpenAPIAnswers and the status it
// must get.
type conformanceRequest struct {
	name, method, path string
	auth               func(*http.Request)
	contentType        string
	body               string
	header             map[string]string
	want               int
	code               string // the error code wanted, when set
}

// TestOpenAPIAnswers asks the daemon for every documented answer that needs
// no outage, and checks each status; the recorder then checks them against
// the document.
func TestOpenAPIAnswers(t *testing.T) {
	db := redistest.New(t)
	zd := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", APIToken: "zd-api-token-SECRET1"})
	env := daemonEnv(t, db.URL(), zd.URL())
	base, _, _ := startDaemon(t, env)
	testutil.WaitFor(t, 10*time.Second, func() bool {
		code, _ := getStatus(t, base+"/readyz")
		return code == http.StatusOK
	}, "readyz 200")

	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+env["DESKRELAY_INGEST_TOKEN"]) }
	admin := func(r *http.Request) { r.SetBasicAuth(env["DESKRELAY_ADMIN_USER"], env["DESKRELAY_ADMIN_PASSWORD"]) }
	target := func(r *http.Request) { r.SetBasicAuth(env["DESKRELAY_TARGET_USER"], env["DESKRELAY_TARGET_PASSWORD"]) }
	msg := `{"id":"msg_oa_1","conversation_id":"conv_oa","sequence":1,"author":{"email":"ann@example.com"},"body":"hello"}`
	huge := `{"id":"msg_oa_big","conversation_id":"conv_oa","author":{"email":"ann@example.com"},"body":"` + strings.Repeat("x", 1<<20) + `"}`
	ignored := `{"type":"zen:event-type:ticket.priority_changed","id":"evt_oa","detail":{"id":"1"}}`
	trigger := `{"ticket_id":"1","external_id":"conv_oa","status":"open","updated_at":"2026-11-24T10:00:00Z"}`
	secret := env["DESKRELAY_WEBHOOK_SECRET"]

	tests := []conformanceRequest{
		{name: "OpenAPI", method: "GET", path: "/v1/openapi.json", want: 200},
		{name: "Healthz", method: "GET", path: "/healthz", want: 200},
		{name: "Readyz", method: "GET", path: "/readyz", want: 200},
		{name: "Metrics", method: "GET", path: "/metrics", want: 200},
		{name: "StatusNoAuth", method: "GET", path: "/v1/status", want: 401},
		{name: "Status", method: "GET", path: "/v1/status", auth: admin, want: 200},

		{name: "MessageNoToken", method: "POST", path: "/v1/messages", contentType: "application/json", body: msg, want: 401},
		{name: "MessageNotJSON", method: "POST", path: "/v1/messages", auth: bearer, contentType: "text/plain", body: msg, want: 415},
		{name: "MessageMalformed", method: "POST", path: "/v1/messages", auth: bearer, contentType: "application/json", body: `{"id":`, want: 400},
		{name: "MessageTooLarge", method: "POST", path: "/v1/messages", auth: bearer, contentType: "application/json", body: huge, want: 413},
		{name: "MessageMissingField", method: "POST", path: "/v1/messages", auth: bearer, contentType: "application/json",
			body: `{"id":"msg_oa_2","author":{"email":"ann@example.com"},"body":"hi"}`, want: 422},
		{name: "MessageAccepted", method: "POST", path: "/v1/messages", auth: bearer, contentType: "application/json", body: msg, want: 202},
		{name: "MessageAgainSameContent", method: "POST", path: "/v1/messages", auth: bearer, contentType: "application/json", body: msg, want: 200},
		{name: "MessageAgainOtherContent", method: "POST", path: "/v1/messages", auth: bearer, contentType: "application/json",
			body: strings.Replace(msg, `"hello"`, `"something else"`, 1), want: 409},
		{name: "GetMessageNoToken", method: "GET", path: "/v1/messages/msg_oa_1", want: 401},
		{name: "GetMessage", method: "GET", path: "/v1/messages/msg_oa_1", auth: bearer, want: 200},
		{name: "GetMessageUnknown", method: "GET", path: "/v1/messages/msg_oa_nobody", auth: bearer, want: 404},
		{name: "GetMessageUnknownAccount", method: "GET", path: "/v1/messages/msg_oa_1?account=nobody", auth: bearer, want: 422},

		{name: "WebhookUnsigned", method: "POST", path: "/v1/zendesk/webhook", contentType: "application/json", body: ignored, want: 401},
		{name: "WebhookIgnoredType", method: "POST", path: "/v1/zendesk/webhook", contentType: "application/json", body: ignored,
			header: signed(secret, ignored), want: 200},
		{name: "WebhookUnreadable", method: "POST", path: "/v1/zendesk/webhook", contentType: "application/json", body: `["not an event"]`,
			header: signed(secret, `["not an event"]`), want: 400},
		{name: "WebhookTooLarge", method: "POST", path: "/v1/zendesk/webhook", contentType: "application/json", body: huge,
			header: signed(secret, huge), want: 413},

		{name: "TargetNoAuth", method: "POST", path: "/v1/zendesk/target", contentType: "application/json", body: trigger, want: 401},
		{name: "Target", method: "POST", path: "/v1/zendesk/target", auth: target, contentType: "application/json", body: trigger, want: 200},
		{name: "TargetUnreadable", method: "POST", path: "/v1/zendesk/target", auth: target, contentType: "application/json", body: `[1]`, want: 400},
		{name: "TargetTooLarge", method: "POST", path: "/v1/zendesk/target", auth: target, contentType: "application/json", body: huge, want: 413},
	}
	tests = append(tests, accountConformanceRequests(bearer, admin, target, secret)...)
	runConformance(t, base, tests)
	checkStatusSchema(t, base+"/v1/status", env["DESKRELAY_ADMIN_PASSWORD"], keys.DefaultAccount)
}

// accountConformanceRequests are the answers of the routes and fields that
// name an account, on a daemon serving only the account default.
func accountConformanceRequests(bearer, admin, target func(*http.Request), secret string) []conformanceRequest {
	msg := `{"id":"msg_oa_acct","account":"nobody","conversation_id":"conv_oa","author":{"email":"ann@example.com"},"body":"hello"}`
	ignored := `{"type":"zen:event-type:ticket.priority_changed","id":"evt_oa_acct","detail":{"id":"1"}}`
	trigger := `{"ticket_id":"1","external_id":"conv_oa","status":"open","updated_at":"2026-11-24T10:00:00Z"}`
	huge := `{"ticket_id":"1","external_id":"` + strings.Repeat("x", 1<<20) + `"}`
	return []conformanceRequest{
		{name: "StatusOfAccount", method: "GET", path: "/v1/status?account=default", auth: admin, want: 200},
		{name: "StatusUnknownAccount", method: "GET", path: "/v1/status?account=nobody", auth: admin, want: 404, code: "unknown_account"},
		{name: "MessageUnknownAccount", method: "POST", path: "/v1/messages", auth: bearer, contentType: "application/json", body: msg, want: 422, code: "unknown_account"},
		{name: "GetMessageOfAccount", method: "GET", path: "/v1/messages/msg_oa_1?account=default", auth: bearer, want: 200},

		{name: "AccountWebhookUnsigned", method: "POST", path: "/v1/zendesk/webhook/default", contentType: "application/json", body: ignored, want: 401},
		{name: "AccountWebhookIgnoredType", method: "POST", path: "/v1/zendesk/webhook/default", contentType: "application/json", body: ignored,
			header: signed(secret, ignored), want: 200},
		{name: "AccountWebhookUnreadable", method: "POST", path: "/v1/zendesk/webhook/default", contentType: "application/json", body: `["not an event"]`,
			header: signed(secret, `["not an event"]`), want: 400},
		{name: "AccountWebhookTooLarge", method: "POST", path: "/v1/zendesk/webhook/default", contentType: "application/json", body: huge,
			header: signed(secret, huge), want: 413},
		{name: "AccountWebhookUnknownAccount", method: "POST", path: "/v1/zendesk/webhook/nobody", contentType: "application/json", body: ignored,
			header: signed(secret, ignored), want: 404, code: "unknown_account"},

		{name: "AccountTargetNoAuth", method: "POST", path: "/v1/zendesk/target/default", contentType: "application/json", body: trigger, want: 401},
		{name: "AccountTarget", method: "POST", path: "/v1/zendesk/target/default", auth: target, contentType: "application/json", body: trigger, want: 200},
		{name: "AccountTargetUnreadable", method: "POST", path: "/v1/zendesk/target/default", auth: target, contentType: "application/json", body: `[1]`, want: 400},
		{name: "AccountTargetTooLarge", method: "POST", path: "/v1/zendesk/target/default", auth: target, contentType: "application/json", body: huge, want: 413},
		{name: "AccountTargetUnknownAccount", method: "POST", path: "/v1/zendesk/target/nobody", auth: target, contentType: "application/json", body: trigger,
			want: 404, code: "unknown_account"},
	}
}

// runConformance makes each request and checks its status (and error code).
func runConformance(t *testing.T, base string, tests []conformanceRequest) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := doRequest(t, base, tt)
			if code != tt.want {
				t.Fatalf("%s %s = %d, want %d: %s", tt.method, tt.path, code, tt.want, body)
			}
			if code >= 400 && !bytes.Contains(body, []byte(`"error":{"code":`)) {
				t.Errorf("%d without the error object: %s", code, body)
			}
			if tt.code != "" && !bytes.Contains(body, []byte(`"error":{"code":"`+tt.code+`"`)) {
				t.Errorf("%s %s: error code is not %s: %s", tt.method, tt.path, tt.code, body)
			}
		})
	}
}

// TestOpenAPIAnswersWithoutAccountDefault: a deployment whose accounts file
// has no account default answers 404 (unknown_account) on the paths without
// an account, 404 (target_off) for an account without a target login, and
// its /v1/status has the summary but no details unless asked for them.
func TestOpenAPIAnswersWithoutAccountDefault(t *testing.T) {
	db := redistest.New(t)
	zd := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", APIToken: "zd-api-token-SECRET1"})
	env := daemonEnv(t, db.URL(), zd.URL())
	for _, s := range singleAccountSettings {
		delete(env, s)
	}
	env["DESKRELAY_ACCOUNTS_FILE"] = writeOpenAPIAccounts(t, zd.URL())
	base, _, _ := startDaemon(t, env)

	secret := "acme-webhook-SECRET7"
	ignored := `{"type":"zen:event-type:ticket.priority_changed","id":"evt_oa_acme","detail":{"id":"1"}}`
	trigger := `{"ticket_id":"1","external_id":"conv_oa","status":"open","updated_at":"2026-11-24T10:00:00Z"}`
	target := func(r *http.Request) { r.SetBasicAuth("zendesk", "target-password-SECRET6") }
	runConformance(t, base, []conformanceRequest{
		{name: "WebhookNoAccountDefault", method: "POST", path: "/v1/zendesk/webhook", contentType: "application/json", body: ignored,
			header: signed(secret, ignored), want: 404, code: "unknown_account"},
		{name: "TargetNoAccountDefault", method: "POST", path: "/v1/zendesk/target", auth: target, contentType: "application/json", body: trigger,
			want: 404, code: "unknown_account"},
		{name: "AccountWebhook", method: "POST", path: "/v1/zendesk/webhook/acme", contentType: "application/json", body: ignored,
			header: signed(secret, ignored), want: 200},
		{name: "AccountTargetOff", method: "POST", path: "/v1/zendesk/target/acme", auth: target, contentType: "application/json", body: trigger,
			want: 404, code: "target_off"},
	})
	password := env["DESKRELAY_ADMIN_PASSWORD"]
	checkStatusSchema(t, base+"/v1/status", password, "")
	checkStatusSchema(t, base+"/v1/status?account=acme", password, "acme")
}

// writeOpenAPIAccounts writes an accounts file of one account, acme, with a
// webhook signing secret and no target login.
func writeOpenAPIAccounts(t *testing.T, zendeskURL string) string {
	t.Helper()
	dir := t.TempDir()
	for name, secret := range map[string]string{"acme_token": "zd-api-token-SECRET1", "acme_webhook": "acme-webhook-SECRET7"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "accounts.yaml")
	body := "accounts:\n  - name: acme\n    url: " + zendeskURL + "\n    email: agent@example.com\n    api_token_file: acme_token\n    webhook_secret_file: acme_webhook\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenAPIServedAsJSON(t *testing.T) {
	db := redistest.New(t)
	zd := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", APIToken: "zd-api-token-SECRET1"})
	base, _, _ := startDaemon(t, daemonEnv(t, db.URL(), zd.URL()))
	resp, err := http.Get(base + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /v1/openapi.json = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !bytes.Equal(body, api.OpenAPI) {
		t.Fatal("GET /v1/openapi.json does not serve api/openapi.json")
	}
}

// TestOpenAPIAnswersWhileRedisIsDown produces the 503s: readiness, and
// intake and lookup that cannot reach Redis.
func TestOpenAPIAnswersWhileRedisIsDown(t *testing.T) {
	db := redistest.New(t)
	sw := newRedisSwitch(t, db.Addr)
	zd := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", APIToken: "zd-api-token-SECRET1"})
	env := daemonEnv(t, fmt.Sprintf("redis://%s/%d", sw.addr(), db.DB), zd.URL())
	base, _, _ := startDaemon(t, env)
	testutil.WaitFor(t, 10*time.Second, func() bool {
		code, _ := getStatus(t, base+"/readyz")
		return code == http.StatusOK
	}, "readyz 200")
	sw.set(false)

	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+env["DESKRELAY_INGEST_TOKEN"]) }
	msg := `{"id":"msg_oa_down","conversation_id":"conv_oa_down","author":{"email":"ann@example.com"},"body":"hello"}`
	for _, tt := range []conformanceRequest{
		{name: "Readyz", method: "GET", path: "/readyz", want: 503},
		{name: "PostMessage", method: "POST", path: "/v1/messages", auth: bearer, contentType: "application/json", body: msg, want: 503},
		{name: "GetMessage", method: "GET", path: "/v1/messages/msg_oa_down", auth: bearer, want: 503},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := doRequest(t, base, tt)
			if code != tt.want || !bytes.Contains(body, []byte(`"error":{"code":`)) {
				t.Fatalf("%s %s with Redis down = %d %s, want %d with the error object", tt.method, tt.path, code, body, tt.want)
			}
		})
	}
	sw.set(true)
	testutil.WaitFor(t, 15*time.Second, func() bool {
		code, _ := getStatus(t, base+"/readyz")
		return code == http.StatusOK
	}, "readyz 200 once Redis is back")
}

// redisSwitch is a TCP proxy to Redis that a test can cut: the daemon then
// finds Redis unreachable, while the proxy keeps its port (killing a
// redis-server would free its port for another process to take).
type redisSwitch struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	up     bool
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func newRedisSwitch(t *testing.T, target string) *redisSwitch {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &redisSwitch{ln: ln, target: target, up: true, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *redisSwitch) addr() string { return s.ln.Addr().String() }

// set connects (up) or cuts (down) Redis; down also drops open connections.
func (s *redisSwitch) set(up bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.up = up
	if !up {
		for c := range s.conns {
			c.Close()
		}
	}
}

func (s *redisSwitch) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		up := s.up
		s.mu.Unlock()
		if !up {
			c.Close()
			continue
		}
		r, err := (&net.Dialer{}).DialContext(context.Background(), "tcp", s.target)
		if err != nil {
			c.Close()
			continue
		}
		s.mu.Lock()
		s.conns[c], s.conns[r] = true, true
		s.mu.Unlock()
		s.wg.Add(2)
		go s.pipe(c, r)
		go s.pipe(r, c)
	}
}

func (s *redisSwitch) pipe(dst, src net.Conn) {
	defer s.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	s.mu.Lock()
	delete(s.conns, dst)
	delete(s.conns, src)
	s.mu.Unlock()
}

func (s *redisSwitch) close() {
	s.ln.Close()
	s.set(false)
	s.wg.Wait()
}

// signed returns Zendesk's signature headers for body, stamped now.
func signed(secret, body string) map[string]string {
	ts := time.Now().UTC().Format(time.RFC3339)
	return map[string]string{
		zendesk.HeaderSignatureTimestamp: ts,
		zendesk.HeaderSignature:          zendesk.Sign(secret, ts, []byte(body)),
	}
}

func doRequest(t *testing.T, base string, tt conformanceRequest) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(tt.method, base+tt.path, strings.NewReader(tt.body))
	if err != nil {
		t.Fatal(err)
	}
	if tt.contentType != "" {
		req.Header.Set("Content-Type", tt.contentType)
	}
	for k, v := range tt.header {
		req.Header.Set(k, v)
	}
	if tt.auth != nil {
		tt.auth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", tt.method, tt.path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}
