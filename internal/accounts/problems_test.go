package accounts_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/deskrelay/deskrelay/internal/validate"
)

// problemFiles are the secret files the problem cases may name.
var problemFiles = map[string]string{
	"token":  "s3cret-token\n",
	"spaced": "s3cret with-space\n",
	"blank":  " \n\t\n",
	"big":    strings.Repeat("x", 64<<10+1),
}

// account is a good account's fields, after its name.
const account = "\n    subdomain: acme\n    email: relay@acme.com\n    api_token_file: token\n"

func TestLoadProblems(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string // lines after "accounts file <path>: "; $DIR is the file's directory
	}{
		{"EmptyFile", "", []string{"the file is empty: want accounts: and a list of accounts"}},
		{"NotYAML", "accounts: [", []string{"not valid YAML: yaml: line 1: did not find expected node content"}},
		{"TwoDocuments", "accounts:\n  - name: acme" + account + "---\naccounts: []\n", []string{"want one YAML document, found more (---)"}},
		{"NotAMapping", "- name: acme\n", []string{"want a mapping with accounts: and a list of accounts"}},
		{"NoAccounts", "{}\n", []string{"accounts: required: a list of accounts"}},
		{"NullList", "accounts:\n", []string{"accounts: the list is empty: give at least one account"}},
		{"EmptyList", "accounts: []\n", []string{"accounts: the list is empty: give at least one account"}},
		{"ListIsAMapping", "accounts:\n  name: acme\n", []string{"accounts: must be a list of accounts (- name: …)"}},
		{"UnknownTopLevel", "defaults: {}\naccounts:\n  - name: acme" + account, []string{"defaults: unknown field (line 1): the file holds accounts: only"}},
		{"ItemNotAMapping", "accounts:\n  - acme\n", []string{"account #1 (line 2): must be a mapping of fields (name: …, subdomain: …)"}},
		{"NameMissing", "accounts:\n  - subdomain: acme\n    email: relay@acme.com\n    api_token_file: token\n", []string{"account #1 (line 2): name: required"}},
		{"NameBad", "accounts:\n  - name: Acme" + account, []string{"account #1 (line 2): name: " + validate.AccountName("Acme")}},
		{"NameEmpty", "accounts:\n  - name:" + account, []string{"account #1 (line 2): name: has no value: give one, or leave the field out"}},
		{"NameRepeated", "accounts:\n  - name: acme" + account + "  - name: acme" + account, []string{
			`account "acme" (line 6): name: "acme" is already the name of the account at line 2`}},
		{"UnknownField", "accounts:\n  - name: acme" + account + "    colour: red\n", []string{`account "acme": colour: unknown field`}},
		{"FieldTwice", "accounts:\n  - name: acme" + account + "    subdomain: acme2\n", []string{`account "acme": subdomain: given twice (lines 3 and 6)`}},
		{"InlineSecret", "accounts:\n  - name: acme\n    subdomain: acme\n    oauth_token: s3cret-inline\n", []string{
			`account "acme": oauth_token: a secret is read from a file only: give the file's path as oauth_token_file`,
			`account "acme": no credentials: give oauth_client_id + oauth_client_secret_file + oauth_refresh_token_file, oauth_token_file, or email + api_token_file`}},
		{"SecretFileMissing", "accounts:\n  - name: acme" + account + "    webhook_secret_file: /nonexistent/x\n", []string{
			`account "acme": webhook_secret_file: open /nonexistent/x: no such file or directory`}},
		{"SecretFileRelativeMissing", "accounts:\n  - name: acme\n    subdomain: acme\n    oauth_token_file: gone\n", []string{
			`account "acme": oauth_token_file: open $DIR/gone: no such file or directory`}},
		{"SecretFileEmpty", "accounts:\n  - name: acme\n    subdomain: acme\n    oauth_token_file: blank\n", []string{
			`account "acme": oauth_token_file: $DIR/blank is empty`}},
		{"SecretFileTooLarge", "accounts:\n  - name: acme\n    subdomain: acme\n    oauth_token_file: big\n", []string{
			`account "acme": oauth_token_file: $DIR/big is larger than 64 KiB: not a secret`}},
		{"SecretWithWhitespace", "accounts:\n  - name: acme\n    subdomain: acme\n    oauth_token_file: spaced\n", []string{
			`account "acme": oauth_token_file: must not contain whitespace`}},
		{"SubdomainAndURL", "accounts:\n  - name: acme" + account + "    url: https://acme.zendesk.com\n", []string{
			`account "acme": url: set either subdomain or url, not both`}},
		{"NoAddress", "accounts:\n  - name: acme\n    oauth_token_file: token\n", []string{`account "acme": subdomain: required (or url)`}},
		{"SubdomainBad", "accounts:\n  - name: acme\n    subdomain: acme.zendesk.com\n    oauth_token_file: token\n", []string{
			`account "acme": subdomain: ` + validate.Subdomain("acme.zendesk.com")}},
		{"URLBad", "accounts:\n  - name: acme\n    url: acme.zendesk.com\n    oauth_token_file: token\n", []string{
			`account "acme": url: must be an http:// or https:// URL`}},
		{"URLWithAPIPath", "accounts:\n  - name: acme\n    url: https://acme.zendesk.com/api/v2\n    oauth_token_file: token\n", []string{
			`account "acme": url: give the base URL without /api/v2`}},
		{"URLWithQueryOAuth", "accounts:\n  - name: acme\n    url: https://acme.zendesk.com/?x=1\n    oauth_client_id: c\n    oauth_client_secret_file: token\n    oauth_refresh_token_file: token\n", []string{
			`account "acme": url: must not contain a query or fragment`}},
		{"NoCredentials", "accounts:\n  - name: acme\n    subdomain: acme\n", []string{
			`account "acme": no credentials: give oauth_client_id + oauth_client_secret_file + oauth_refresh_token_file, oauth_token_file, or email + api_token_file`}},
		{"TwoWays", "accounts:\n  - name: acme" + account + "    oauth_token_file: token\n", []string{
			`account "acme": more than one way to authenticate: oauth_token_file, email + api_token_file; keep one`}},
		{"EmailWithoutToken", "accounts:\n  - name: acme\n    subdomain: acme\n    email: relay@acme.com\n", []string{
			`account "acme": api_token_file: required with email`}},
		{"EmailBad", "accounts:\n  - name: acme\n    subdomain: acme\n    email: relay\n    api_token_file: token\n", []string{
			`account "acme": email: not an email address`}},
		{"RefreshIncomplete", "accounts:\n  - name: acme\n    subdomain: acme\n    oauth_client_id: deskrelay\n", []string{
			`account "acme": oauth_client_secret_file: required with oauth_client_id and oauth_refresh_token_file`,
			`account "acme": oauth_refresh_token_file: required with oauth_client_id and oauth_client_secret_file`}},
		{"RefreshTokenWithWhitespace", "accounts:\n  - name: acme\n    subdomain: acme\n    oauth_client_id: deskrelay\n    oauth_client_secret_file: token\n    oauth_refresh_token_file: spaced\n", []string{
			`account "acme": oauth_refresh_token_file: must not contain whitespace`}},
		{"RateBad", "accounts:\n  - name: acme" + account + "    rate_limit: 0\n    update_rate_limit: 150%\n", []string{
			`account "acme": rate_limit: must be requests per minute (a positive whole number) or a share like 50%, got "0"`,
			`account "acme": update_rate_limit: a share must be 1% to 100% of Zendesk's limit, got "150%"`}},
		{"WebhookAndTarget", "accounts:\n  - name: acme" + account + "    webhook_id: 01H\n    target_id: 7\n", []string{
			`account "acme": target_id: set either webhook_id or target_id, not both`}},
		{"TargetIDBad", "accounts:\n  - name: acme" + account + "    target_id: seven\n", []string{
			`account "acme": target_id: must be a positive number, got "seven"`}},
		{"TargetUserAlone", "accounts:\n  - name: acme" + account + "    target_id: 7\n    target_user: zendesk\n", []string{
			`account "acme": target_password_file: required with target_user`}},
		{"ListForAString", "accounts:\n  - name: acme" + account + "    webhook_id: [a, b]\n", []string{
			`account "acme": webhook_id: must be a single value, not a list or a mapping`}},
		{"BadMerge", "accounts:\n  - name: acme" + account + "    <<: 3\n", []string{
			`account "acme": <<: merge a mapping (*anchor) or a list of them`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, dir, err := load(t, tt.yaml, problemFiles)
			prefix := "accounts file " + dir + "/accounts.yaml: "
			var want []string
			for _, w := range tt.want {
				want = append(want, prefix+strings.ReplaceAll(w, "$DIR", dir))
			}
			if got := lines(t, err); !slices.Equal(got, want) {
				t.Fatalf("lines =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			for _, s := range []string{"s3cret", "xxxx"} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("the error shows a secret (%q): %v", s, err)
				}
			}
		})
	}
}

// TestLoadReportsEveryProblem: a file with problems in several accounts
// yields all of them, in the file's order, each naming its account.
func TestLoadReportsEveryProblem(t *testing.T) {
	_, dir, err := load(t, `accounts:
  - name: acme
    subdomain: acme
    oauth_client_id: deskrelay
    oauth_client_secret_file: missing
    oauth_refresh_token_file: token
    rate_limit: lots
  - name: Bad_Name
    url: https://x.example.com
    oauth_token_file: token
    api_token: s3cret-inline
  - name: globex
    subdomain: globex
    email: relay@globex.com
    api_token_file: token
  - name: acme
    subdomain: acme2
    oauth_token_file: blank
`, problemFiles)
	p := "accounts file " + dir + "/accounts.yaml: "
	want := []string{
		p + `account "acme": oauth_client_secret_file: open ` + dir + `/missing: no such file or directory`,
		p + `account "acme": rate_limit: must be requests per minute (a positive whole number) or a share like 50%, got "lots"`,
		p + `account #2 (line 8): api_token: a secret is read from a file only: give the file's path as api_token_file`,
		p + `account #2 (line 8): name: ` + validate.AccountName("Bad_Name"),
		p + `account "acme" (line 16): oauth_token_file: ` + dir + `/blank is empty`,
		p + `account "acme" (line 16): name: "acme" is already the name of the account at line 2`,
	}
	if got := lines(t, err); !slices.Equal(got, want) {
		t.Fatalf("lines =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("the error shows a secret: %v", err)
	}
}
