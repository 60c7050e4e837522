package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeAccountsFile writes an accounts file with two accounts (secrets in
// files beside it) and returns its path.
func writeAccountsFile(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	for name, secret := range map[string]string{"acme_token": "tok-acme-secret\n", "globex_token": "tok-globex-secret"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "accounts.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const twoAccounts = `accounts:
  - name: acme
    subdomain: acme
    email: relay@acme.example
    api_token_file: acme_token
  - name: globex
    url: https://globex.example
    oauth_token_file: globex_token
    rate_limit: 400
`

func defaultValues() values {
	v := values{}
	for _, s := range settings {
		v[s.env] = s.def
	}
	return v
}

func TestAccountsFileSetsTheAccounts(t *testing.T) {
	v := defaultValues()
	v["DESKRELAY_ACCOUNTS_FILE"] = writeAccountsFile(t, twoAccounts)
	cfg, err := parseConfig(v, needs{zendesk: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.accountNames(), ","); got != "acme,globex" {
		t.Fatalf("accounts %s, want acme,globex", got)
	}
	acme, _ := cfg.account("acme")
	if acme.zendesk.APIToken != "tok-acme-secret" || acme.zendesk.Subdomain != "acme" {
		t.Fatalf("acme: %+v", acme.zendesk)
	}
	if _, ok := cfg.account("default"); ok {
		t.Fatal("a file without an account default has no account default")
	}
}

func TestWithoutAccountsFileTheSettingsAreTheAccountDefault(t *testing.T) {
	v := defaultValues()
	v["DESKRELAY_ZENDESK_SUBDOMAIN"] = "acme"
	v["DESKRELAY_ZENDESK_OAUTH_TOKEN"] = "t"
	cfg, err := parseConfig(v, needs{zendesk: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.accountNames(), ","); got != "default" {
		t.Fatalf("accounts %s, want default", got)
	}
}

func TestAccountsFileAndSingleAccountSettingsAreExclusive(t *testing.T) {
	v := defaultValues()
	v["DESKRELAY_ACCOUNTS_FILE"] = writeAccountsFile(t, twoAccounts)
	v["DESKRELAY_ZENDESK_SUBDOMAIN"] = "acme"
	v["DESKRELAY_ZENDESK_RATE_LIMIT"] = "300"
	_, err := parseConfig(v, needs{zendesk: true})
	if err == nil {
		t.Fatal("both the file and DESKRELAY_ZENDESK_* accepted")
	}
	for _, want := range []string{"DESKRELAY_ZENDESK_SUBDOMAIN: set together with DESKRELAY_ACCOUNTS_FILE", "DESKRELAY_ZENDESK_RATE_LIMIT: set together"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestBadAccountsFileNamesEachProblemOnItsOwnLine(t *testing.T) {
	v := defaultValues()
	v["DESKRELAY_ACCOUNTS_FILE"] = writeAccountsFile(t, `accounts:
  - name: acme
    subdomain: acme
    email: relay@acme.example
    api_token: inline-secret
  - name: globex
    oauth_token_file: missing_file
`)
	_, err := parseConfig(v, needs{zendesk: true})
	if err == nil || !isConfigError(err) {
		t.Fatalf("bad file: %v, want a settings error", err)
	}
	lines := strings.Split(err.Error(), "\n")
	var acme, globex int
	for _, l := range lines {
		switch {
		case strings.Contains(l, `account "acme"`) && strings.Contains(l, "api_token"):
			acme++
		case strings.Contains(l, `account "globex"`):
			globex++
		}
	}
	if acme == 0 || globex < 2 { // globex: no subdomain/url, an unreadable oauth_token_file
		t.Fatalf("want a line for acme's api_token and two for globex:\n%v", err)
	}
	if strings.Contains(err.Error(), "inline-secret") {
		t.Fatal("the error shows a secret")
	}
}

func TestAccountsWithAWebhookNeedTheSink(t *testing.T) {
	v := defaultValues()
	v["DESKRELAY_ACCOUNTS_FILE"] = writeAccountsFile(t, twoAccounts+"    webhook_id: 01HWEBHOOK\n")
	_, err := parseConfig(v, needs{zendesk: true})
	if err == nil || !strings.Contains(err.Error(), `DESKRELAY_SINK_URL: required: account "globex" has a webhook`) {
		t.Fatalf("err = %v", err)
	}
}
