package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

func TestJSONLines(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "auto", "info") // a buffer is no terminal: JSON
	if err != nil {
		t.Fatal(err)
	}
	comp := log.With().Str("component", "relay").Logger()
	NewAsynq(log).Warn("queue ", "outbound", " is paused")
	NewRedis(log).Printf(context.Background(), "redis: %s:%d: dial failed\n", "pool.go", 770)
	comp.Info().Dur("retry_in_ms", 4*time.Second).Msg("retrying")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got %d:\n%s", len(lines), buf.String())
	}
	for _, l := range lines {
		if d, err := DuplicateKeys([]byte(l)); err != nil || len(d) > 0 {
			t.Errorf("duplicate keys %v (%v) in %s", d, err, l)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		ts, _ := m["time"].(string)
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || !strings.Contains(ts, ".") || len(ts[strings.Index(ts, ".")+1:]) < 4 {
			t.Errorf("time %q is not RFC 3339 with milliseconds (%v)", ts, err)
		}
		if time.Since(at) > time.Minute {
			t.Errorf("time %q is not now", ts)
		}
	}
	var last map[string]any
	_ = json.Unmarshal([]byte(lines[2]), &last)
	if last["retry_in_ms"] != 4000.0 {
		t.Errorf("retry_in_ms = %v, want 4000", last["retry_in_ms"])
	}
	if !strings.Contains(lines[1], `"component":"redis"`) || !strings.Contains(lines[1], `dial failed"`) {
		t.Errorf("go-redis line = %s", lines[1])
	}
}

func TestAutoFormat(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Fatal("a file is no terminal")
	}
	log, err := New(f, "", "info")
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Msg("to a file")
	raw, _ := os.ReadFile(f.Name())
	if !json.Valid(bytes.TrimSpace(raw)) || bytes.Contains(raw, []byte("\x1b[")) {
		t.Fatalf("auto wrote %q to a file, want JSON without colours", raw)
	}
	var con bytes.Buffer
	clog, _ := New(&con, "console", "info")
	clog.Info().Msg("for people")
	if strings.Contains(con.String(), "\x1b[") {
		t.Fatalf("console off a terminal has colours: %q", con.String())
	}
}
