package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIContract pins help, errors and exit codes: 0 success, 1 the
// command ran and failed, 2 usage or settings errors; errors on stderr.
func TestCLIContract(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secretFile, []byte("s3cret-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantCode   int
		wantOut    []string
		wantErr    []string
		notOut     []string
		notErr     []string
		maxErrLine int
	}{
		{name: "NoCommandUsageOnStderr", args: nil, wantCode: 2, wantErr: []string{"Usage: deskrelay <command>"}, notOut: []string{"Usage"}},
		{name: "UnknownCommandIsUsageError", args: []string{"bogus"}, wantCode: 2, wantErr: []string{`unknown command "bogus"`}},
		{name: "HelpCommandPrintsItsHelp", args: []string{"help", "serve"}, wantOut: []string{"Usage: deskrelay serve", "--listen", "default 127.0.0.1:8080"}},
		{name: "ServeHelpShowsDefaults", args: []string{"serve", "-h"}, wantOut: []string{"--listen", "default 127.0.0.1:8080", "DESKRELAY_INGEST_TOKEN_FILE"}, notOut: []string{"--ingest-token"}},
		{name: "SendHelpOnlyItsSettings", args: []string{"send", "-h"}, wantOut: []string{"--conversation", "DESKRELAY_INGEST_TOKEN"}, notOut: []string{"RECONCILE_INTERVAL", "SINK_URL"}},
		{name: "HealthcheckHelpOnlyListen", args: []string{"healthcheck", "-h"}, wantOut: []string{"--listen"}, notOut: []string{"REDIS_URL", "INGEST_TOKEN"}},
		{name: "WebhookHelpListsJSON", args: []string{"webhook", "-h"}, wantOut: []string{"--json"}},
		{name: "UnknownFlagOnceWithHint", args: []string{"serve", "--bogus"}, wantCode: 2, wantErr: []string{"--bogus: ", "run 'deskrelay serve -h' for usage"}, maxErrLine: 2},
		{name: "FlagErrorNamesTheFlag", args: []string{"serve", "--concurrency", "0"}, env: map[string]string{"DESKRELAY_INGEST_TOKEN": "x"}, wantCode: 2, wantErr: []string{"--concurrency: must be a positive whole number"}},
		{name: "BadBoolNamesTheFlag", args: []string{"demo", "--fast=maybe"}, wantCode: 2, wantErr: []string{"--fast: invalid boolean value", "run 'deskrelay demo -h' for usage"}, maxErrLine: 2},
		{name: "BadIntNamesTheFlag", args: []string{"send", "--sequence", "x"}, wantCode: 2, wantErr: []string{"--sequence: invalid value"}, maxErrLine: 2},
		{name: "SendBadAccountNamesTheFlag", args: []string{"send", "--conversation", "c", "--body", "b", "--email", "a@b.c", "--account", "Acme_Corp"},
			env: map[string]string{"DESKRELAY_INGEST_TOKEN": "x"}, wantCode: 2, wantErr: []string{`--account: "Acme_Corp" is not an account name`}},
		{name: "ReplayUnknownAccountNamesTheConfiguredOnes", args: []string{"replay", "--account", "nope"},
			env:      map[string]string{"DESKRELAY_ZENDESK_SUBDOMAIN": "acme", "DESKRELAY_ZENDESK_OAUTH_TOKEN": "t", "DESKRELAY_REDIS_URL": "redis://127.0.0.1:1/0"},
			wantCode: 2, wantErr: []string{`--account: "nope" is not a configured account (configured: default)`}},
		{name: "FlagWithoutValue", args: []string{"serve", "--listen"}, wantCode: 2, wantErr: []string{"--listen: needs a value"}, maxErrLine: 2},
		{name: "PackageFieldErrorNamesTheSetting", args: []string{"serve"}, env: map[string]string{"DESKRELAY_SINK_URL": "https://sink.example.com", "DESKRELAY_SINK_SECRET": "whsec_%%%"},
			wantCode: 2, wantErr: []string{"DESKRELAY_SINK_SECRET: the part after whsec_ is not base64"}, notErr: []string{"inbound: SinkSecret"}},
		{name: "PackageFieldErrorNamesTheFlag", args: []string{"serve", "--public-url", "ftp://relay.example.com"},
			wantCode: 2, wantErr: []string{"--public-url: must be an http:// or https:// URL"}, notErr: []string{"reconcile: PublicURL"}},
		{name: "SecretIsNoFlag", args: []string{"serve", "--ingest-token", "x"}, wantCode: 2, wantErr: []string{"--ingest-token: ", "DESKRELAY_INGEST_TOKEN"}},
		{name: "SecretAndFileBoth", args: []string{"send", "--conversation", "c", "--body", "b", "--email", "a@b.c"},
			env: map[string]string{"DESKRELAY_INGEST_TOKEN": "x", "DESKRELAY_INGEST_TOKEN_FILE": secretFile}, wantCode: 2,
			wantErr: []string{"DESKRELAY_INGEST_TOKEN", "DESKRELAY_INGEST_TOKEN_FILE"}},
		{name: "SecretFileUnreadable", args: []string{"send", "--conversation", "c", "--body", "b", "--email", "a@b.c"},
			env: map[string]string{"DESKRELAY_INGEST_TOKEN_FILE": "/nonexistent/token"}, wantCode: 2,
			wantErr: []string{"DESKRELAY_INGEST_TOKEN_FILE: "}},
		{name: "SecretFileIsRead", args: []string{"send", "--conversation", "c", "--body", "b", "--email", "a@b.c", "--server", "http://127.0.0.1:1"},
			env: map[string]string{"DESKRELAY_INGEST_TOKEN_FILE": secretFile}, wantCode: 1, notErr: []string{"s3cret", "INGEST_TOKEN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tt.args, envFrom(tt.env), &out, &errb)
			if got := exitCodeOf(err); got != tt.wantCode {
				t.Fatalf("exit status = %d (%v), want %d; stderr:\n%s", got, err, tt.wantCode, errb.String())
			}
			stderr := errb.String()
			if err != nil {
				if _, ok := err.(exitCode); !ok { //nolint:errorlint // main prints what is not an exitCode
					stderr += "deskrelay: " + err.Error() + "\n"
				}
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tt.notOut {
				if strings.Contains(out.String(), w) {
					t.Errorf("stdout has %q:\n%s", w, out.String())
				}
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			for _, w := range tt.notErr {
				if strings.Contains(stderr, w) {
					t.Errorf("stderr has %q:\n%s", w, stderr)
				}
			}
			if n := strings.Count(strings.TrimSpace(stderr), "\n") + 1; tt.maxErrLine > 0 && n > tt.maxErrLine {
				t.Errorf("stderr has %d lines, want at most %d:\n%s", n, tt.maxErrLine, stderr)
			}
		})
	}
}

func exitCodeOf(err error) int {
	if err == nil {
		return 0
	}
	return exitStatus(err)
}

// TestFieldSettingsNameKnownSettings keeps the field-to-setting map honest.
func TestFieldSettingsNameKnownSettings(t *testing.T) {
	known := map[string]bool{}
	for _, s := range settings {
		known[s.env] = true
	}
	for field, env := range fieldSettings {
		if !known[env] {
			t.Errorf("fieldSettings maps %s to %s, which is no setting", field, env)
		}
	}
}
