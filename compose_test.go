package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestComposeFile checks what docker-compose.yml must set (issue 13.5):
// Redis with a password from a secret file and a maxmemory (noeviction does
// nothing without one), every deskrelay secret as a file, every other
// setting passable, the port on loopback only, and the build's version.
// `docker-compose config -q` (CI) checks that the file is valid.
func TestComposeFile(t *testing.T) {
	raw, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	y := string(raw)
	// Comments say what is not done; only the configuration counts.
	y = regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(y, "")

	musts := []struct{ what, re string }{
		{"Redis requires the password of the redis_password secret", `requirepass "\$\$\(cat /run/secrets/redis_password\)"`},
		{"Redis has a maxmemory", `--maxmemory \$\{REDIS_MAXMEMORY:-\d+[kmg]b\}`},
		{"Redis never evicts", `--maxmemory-policy noeviction`},
		{"Redis keeps every acknowledged write", `--appendonly yes --appendfsync always`},
		{"the Redis health check authenticates", `REDISCLI_AUTH=.*/run/secrets/redis_password`},
		{"deskrelay reads the Redis password from the secret", `DESKRELAY_REDIS_PASSWORD_FILE: /run/secrets/redis_password`},
		{"the port is published on loopback by default", `(?m)^\s*- "\$\{DESKRELAY_PUBLISH:-127\.0\.0\.1:8080\}:8080"`},
		{"/metrics on its own address", `DESKRELAY_METRICS_LISTEN: \$\{DESKRELAY_METRICS_LISTEN:-0\.0\.0\.0:9090\}`},
		{"the build gets its version", `VERSION: \$\{DESKRELAY_VERSION:-dev\}`},
		{"the build gets its commit", `COMMIT: \$\{DESKRELAY_COMMIT:-unknown\}`},
		{"the spool on a volume", `spool:/var/lib/deskrelay/spool`},
	}
	for _, m := range musts {
		if !regexp.MustCompile(m.re).MatchString(y) {
			t.Errorf("docker-compose.yml: %s: no match for %s", m.what, m.re)
		}
	}
	nots := []struct{ what, re string }{
		{"a port published on every interface", `(?m)^\s*- "?(0\.0\.0\.0:)?\d+:\d+"?\s*$`},
		{"the metrics port published", `(?m)^\s*- "?[^"\n]*:9090"?\s*$`},
		{"a password in the Redis URL", `redis://[^@\s]*:[^@\s]*@`},
	}
	for _, n := range nots {
		if m := regexp.MustCompile(n.re).FindString(y); m != "" {
			t.Errorf("docker-compose.yml: %s: %q", n.what, strings.TrimSpace(m))
		}
	}
	checkComposeSettings(t, y)
}

// checkComposeSettings: every secret setting is a DESKRELAY_X_FILE naming a
// declared secret file, never a plain value; every other setting can be
// passed.
func checkComposeSettings(t *testing.T, y string) {
	t.Helper()
	for _, s := range settings {
		plain := regexp.MustCompile(`(?m)^\s+` + s.env + `:`).MatchString(y)
		if !s.secret || s.env == "DESKRELAY_REDIS_URL" { // the URL carries no password here
			if !plain {
				t.Errorf("docker-compose.yml cannot pass %s", s.env)
			}
			continue
		}
		if plain {
			t.Errorf("docker-compose.yml passes the secret %s as a plain value; use %s_FILE", s.env, s.env)
		}
		m := regexp.MustCompile(`(?m)^\s+` + s.env + `_FILE: /run/secrets/([a-z_]+)\s*$`).FindStringSubmatch(y)
		if m == nil {
			t.Errorf("docker-compose.yml lacks %s_FILE: /run/secrets/…", s.env)
			continue
		}
		name := m[1]
		if !regexp.MustCompile(`(?m)^  ` + name + `:\n    file: \./secrets/` + name + `\s*$`).MatchString(y) {
			t.Errorf("docker-compose.yml: secret %s (for %s) is not declared as file ./secrets/%s", name, s.env, name)
		}
		if !regexp.MustCompile(`(?m)^      - ` + name + `\s*$`).MatchString(y) {
			t.Errorf("docker-compose.yml: the deskrelay service does not mount the secret %s", name)
		}
	}
}
