package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name       string
		format     string
		level      string
		wantErr    string
		wantJSON   bool
		wantDebug  bool
		wantOutput string
	}{
		{name: "DefaultIsJSONAtInfo", wantJSON: true},
		{name: "ConsoleForPeople", format: "console", wantOutput: "INF"},
		{name: "DebugLevel", format: "json", level: "debug", wantJSON: true, wantDebug: true},
		{name: "UnknownFormat", format: "xml", wantErr: `unknown log format "xml"`},
		{name: "UnknownLevel", level: "loud", wantErr: `unknown log level "loud"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := New(&buf, tt.format, tt.level)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			log.Debug().Msg("debug line")
			log.Info().Str("message_id", "msg_1").Msg("info line")
			out := buf.String()
			if got := strings.Contains(out, "debug line"); got != tt.wantDebug {
				t.Errorf("debug line printed = %v, want %v:\n%s", got, tt.wantDebug, out)
			}
			if tt.wantJSON {
				last := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
				var m map[string]any
				if err := json.Unmarshal([]byte(last), &m); err != nil {
					t.Fatalf("not JSON: %q: %v", last, err)
				}
				if m["message_id"] != "msg_1" || m["level"] != "info" || m["time"] == nil {
					t.Errorf("JSON line lacks fields: %v", m)
				}
			}
			if tt.wantOutput != "" && !strings.Contains(out, tt.wantOutput) {
				t.Errorf("output %q lacks %q", out, tt.wantOutput)
			}
		})
	}
}

func TestAsynqAdapterLogsThroughZerolog(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "json", "debug")
	if err != nil {
		t.Fatal(err)
	}
	a := NewAsynq(log)
	a.Warn("queue ", "outbound", " is paused")
	a.Error("boom")
	var first map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(buf.String(), "\n", 2)[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first["component"] != "asynq" || first["level"] != "warn" || first["message"] != "queue outbound is paused" {
		t.Fatalf("asynq line = %v", first)
	}
	if !strings.Contains(buf.String(), `"level":"error"`) {
		t.Fatalf("error line missing: %s", buf.String())
	}
}
