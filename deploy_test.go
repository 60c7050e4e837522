package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// deployFiles are the monitoring files shipped under deploy/.
var deployFiles = []string{"deploy/prometheus/alerts.yml", "deploy/prometheus/alerts_test.yml", "deploy/grafana/deskrelay.json"}

var metricName = regexp.MustCompile(`deskrelay_[a-z0-9_]*[a-z0-9]`)

// registeredNames returns every "deskrelay_…" string literal in the
// module's non-test Go sources: the names the code registers.
func registeredNames(t *testing.T) map[string]bool {
	t.Helper()
	lit := regexp.MustCompile(`"(deskrelay_[a-z0-9_]+)"`)
	names := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "deploy") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range lit.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read the Go sources: %v", err)
	}
	return names
}

// TestDeployMetricsExist: every metric the alerting rules and the Grafana
// dashboard use is one deskrelay registers (a renamed metric would silently
// empty a panel or never fire an alert).
func TestDeployMetricsExist(t *testing.T) {
	known := registeredNames(t)
	for _, f := range deployFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		used := slices.Compact(slices.Sorted(slices.Values(metricName.FindAllString(string(b), -1))))
		if len(used) < 10 {
			t.Errorf("%s uses only %d deskrelay metrics: %v", f, len(used), used)
		}
		for _, name := range used {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
			if !known[name] && !known[base] {
				t.Errorf("%s uses %s, which no Go source registers", f, name)
			}
		}
	}
}

// TestGrafanaDashboard: the dashboard is JSON, its datasource is a
// variable, and every panel queries through it.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("deploy/grafana/deskrelay.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title      string `json:"title"`
		Templating struct {
			List []struct {
				Name, Type, Query any
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title      string `json:"title"`
			Type       string `json:"type"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr       string `json:"expr"`
				Datasource struct {
					UID string `json:"uid"`
				} `json:"datasource"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("deploy/grafana/deskrelay.json is not JSON: %v", err)
	}
	if !slices.ContainsFunc(d.Templating.List, func(v struct{ Name, Type, Query any }) bool {
		return v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus"
	}) {
		t.Errorf("the dashboard has no Prometheus datasource variable named datasource")
	}
	graphs := 0
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		graphs++
		if p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: datasource %q with %d queries, want ${datasource} and at least one", p.Title, p.Datasource.UID, len(p.Targets))
		}
		for _, q := range p.Targets {
			if q.Datasource.UID != "${datasource}" || !metricName.MatchString(q.Expr) {
				t.Errorf("panel %q: query %q on %q, want a deskrelay metric on ${datasource}", p.Title, q.Expr, q.Datasource.UID)
			}
		}
	}
	if graphs < 15 {
		t.Errorf("the dashboard has %d panels, want the runbook's figures (at least 15)", graphs)
	}
}

// perAccountMetrics are series that carry the label account (one deployment
// serves many Zendesk accounts): the dashboard filters them by $account.
var perAccountMetrics = []string{
	"deskrelay_outbound_backlog", "deskrelay_outbound_oldest_pending_age_seconds", "deskrelay_outbound_failed_messages",
	"deskrelay_outbound_credentials_unauthorized", "deskrelay_outbound_gate_closed", "deskrelay_outbound_deliveries_total",
	"deskrelay_zendesk_auth_mode", "deskrelay_webhook_active", "deskrelay_webhook_failure_ratio",
	"deskrelay_webhook_recent_requests", "deskrelay_webhook_signature_rejections",
	"deskrelay_reconcile_checkpoint_age_seconds", "deskrelay_inbound_sink_deliveries_total",
}

// TestGrafanaDashboardPerAccount: the dashboard has an account variable
// read from a per-account series, and every query of a per-account series
// is filtered by it.
func TestGrafanaDashboardPerAccount(t *testing.T) {
	b, err := os.ReadFile("deploy/grafana/deskrelay.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Templating struct {
			List []struct{ Name, Definition string } `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(d.Templating.List, func(v struct{ Name, Definition string }) bool { return v.Name == "account" })
	if i < 0 || !strings.HasPrefix(d.Templating.List[i].Definition, "label_values(deskrelay_") || !strings.HasSuffix(d.Templating.List[i].Definition, ", account)") {
		t.Fatalf("the dashboard has no variable account = label_values(<a deskrelay series>, account)")
	}
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			for _, m := range metricName.FindAllString(q.Expr, -1) {
				if slices.Contains(perAccountMetrics, m) && !strings.Contains(q.Expr, m+`{job=~"$job", account=~"$account"`) {
					t.Errorf("panel %q: %s is not filtered by account=~\"$account\": %s", p.Title, m, q.Expr)
				}
			}
		}
	}
}
