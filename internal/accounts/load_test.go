package accounts_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deskrelay/deskrelay/internal/accounts"
	"github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// writeFiles writes files (name → content) into dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// load writes yaml as accounts.yaml next to files in a new directory and
// loads it; relative secret paths are relative to that directory.
func load(t *testing.T, yaml string, files map[string]string) (f *accounts.File, dir string, err error) {
	t.Helper()
	dir = t.TempDir()
	writeFiles(t, dir, files)
	writeFiles(t, dir, map[string]string{"accounts.yaml": yaml})
	f, err = accounts.Load(filepath.Join(dir, "accounts.yaml"))
	return f, dir, err
}

// lines returns err's lines (an *accounts.Error's), failing otherwise.
func lines(t *testing.T, err error) []string {
	t.Helper()
	var ae *accounts.Error
	if !errors.As(err, &ae) {
		t.Fatalf("Load error = %v (%T), want *accounts.Error", err, err)
	}
	if got := strings.Join(ae.Lines(), "\n"); got != err.Error() {
		t.Fatalf("Error() = %q, want the lines %q", err.Error(), got)
	}
	return ae.Lines()
}

const goodFile = `accounts:
  - name: acme
    subdomain: ACME
    oauth_client_id: deskrelay
    oauth_client_secret_file: acme_secret
    oauth_refresh_token_file: acme_refresh
    rate_limit: 400
    update_rate_limit: "50%"
    webhook_id: 01HXYZ
    webhook_secret_file: acme_webhook
  - name: globex
    url: https://globex.example.com/
    email: relay@globex.com
    api_token_file: globex_token
  - name: initech
    url: http://127.0.0.1:9000
    oauth_token_file: initech_token
    target_id: 42
    target_user: zendesk
    target_password_file: initech_password
`

var goodSecrets = map[string]string{
	"acme_secret":      "  acme-client-secret\n",
	"acme_refresh":     "acme-refresh-token\r\n",
	"acme_webhook":     "\tacme-webhook-secret \n\n",
	"globex_token":     "globex-api-token\n",
	"initech_token":    "initech-oauth-token",
	"initech_password": "initech-target-password\n",
}

func TestLoadGoodFile(t *testing.T) {
	f, dir, err := load(t, goodFile, goodSecrets)
	if err != nil {
		t.Fatal(err)
	}
	want := []accounts.Account{{
		Name: "acme", Subdomain: "acme",
		OAuthClientID: "deskrelay", OAuthClientSecret: "acme-client-secret", OAuthRefreshToken: "acme-refresh-token",
		RateLimit: budget.PerMinute(400), UpdateRateLimit: budget.Share(50),
		WebhookID: "01HXYZ", WebhookSecret: "acme-webhook-secret",
	}, {
		Name: "globex", URL: "https://globex.example.com", Email: "relay@globex.com", APIToken: "globex-api-token",
		RateLimit: budget.Share(50), UpdateRateLimit: budget.Share(70),
	}, {
		Name: "initech", URL: "http://127.0.0.1:9000", OAuthToken: "initech-oauth-token",
		RateLimit: budget.Share(50), UpdateRateLimit: budget.Share(70),
		TargetID: 42, TargetUser: "zendesk", TargetPassword: "initech-target-password",
	}}
	if !slices.Equal(f.Accounts, want) {
		t.Fatalf("Accounts =\n%#v\nwant\n%#v", fields(f.Accounts), fields(want))
	}
	if f.Path != filepath.Join(dir, "accounts.yaml") || !slices.Equal(f.Names(), []string{"acme", "globex", "initech"}) {
		t.Fatalf("Path %q, Names %v", f.Path, f.Names())
	}
	for i, auth := range []string{accounts.AuthOAuthRefresh, accounts.AuthAPIToken, accounts.AuthOAuthToken} {
		if got := f.Accounts[i].Auth(); got != auth {
			t.Errorf("%s: Auth() = %q, want %q", f.Accounts[i].Name, got, auth)
		}
	}
	if got := f.Accounts[0].BaseURL(); got != "https://acme.zendesk.com" {
		t.Errorf("BaseURL() = %q", got)
	}
}

// fields shows accounts with their secrets, for a failing test's message.
func fields(as []accounts.Account) []map[string]any {
	var out []map[string]any
	for _, a := range as {
		out = append(out, map[string]any{"name": a.Name, "subdomain": a.Subdomain, "url": a.URL, "email": a.Email,
			"api": a.APIToken, "oauth": a.OAuthToken, "client": a.OAuthClientID, "csecret": a.OAuthClientSecret,
			"refresh": a.OAuthRefreshToken, "rate": a.RateLimit.String(), "upd": a.UpdateRateLimit.String(),
			"webhook": a.WebhookID, "wsecret": a.WebhookSecret, "target": a.TargetID, "tuser": a.TargetUser, "tpass": a.TargetPassword})
	}
	return out
}

// TestExampleFile loads docs/accounts.example.yaml, its /run/secrets/
// paths moved to a test directory, so that the documented example works.
func TestExampleFile(t *testing.T) {
	raw, err := os.ReadFile("../../docs/accounts.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	text := strings.ReplaceAll(string(raw), "/run/secrets/", dir+"/")
	secrets := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if _, after, ok := strings.Cut(line, dir+"/"); ok {
			name := strings.Fields(after)[0]
			secrets[name] = "secret-of-" + name + "\n"
		}
	}
	if len(secrets) != 6 {
		t.Fatalf("the example names %d secret files, want 6: %v", len(secrets), secrets)
	}
	writeFiles(t, dir, secrets)
	writeFiles(t, dir, map[string]string{"accounts.yaml": text})
	f, err := accounts.Load(filepath.Join(dir, "accounts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Names(); !slices.Equal(got, []string{"acme", "globex", "initech"}) {
		t.Fatalf("Names = %v", got)
	}
	acme := f.Accounts[0]
	if acme.OAuthRefreshToken != "secret-of-acme_refresh_token" || acme.RateLimit != budget.PerMinute(400) ||
		acme.UpdateRateLimit != budget.Share(50) || acme.WebhookSecret != "secret-of-acme_webhook_secret" {
		t.Fatalf("acme = %v", fields(f.Accounts[:1]))
	}
	if in := f.Accounts[2]; in.TargetID != 360001234567 || in.TargetPassword != "secret-of-initech_target_password" {
		t.Fatalf("initech = %v", fields(f.Accounts[2:]))
	}
}

func TestMergeKeys(t *testing.T) {
	f, _, err := load(t, `accounts:
  - &acme
    name: acme
    subdomain: acme
    email: relay@acme.com
    api_token_file: token
    rate_limit: 30%
  - <<: *acme
    name: acme-eu
    subdomain: acme-eu
`, map[string]string{"token": "t0ken"})
	if err != nil {
		t.Fatal(err)
	}
	eu := f.Accounts[1]
	if eu.Name != "acme-eu" || eu.Subdomain != "acme-eu" || eu.APIToken != "t0ken" || eu.RateLimit != budget.Share(30) {
		t.Fatalf("acme-eu = %v", fields(f.Accounts[1:]))
	}
}

func TestLoadUnreadableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.yaml")
	_, err := accounts.Load(path)
	want := []string{"accounts file " + path + ": cannot read the file: no such file or directory"}
	if got := lines(t, err); !slices.Equal(got, want) {
		t.Fatalf("lines =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
