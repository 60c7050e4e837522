package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/testutil"
)

// TestDemoTellsTheWholeStory runs `deskrelay demo --fast` end to end: it
// exits 0 only when nothing was lost, duplicated or echoed, its numbers
// agree with each other, and it leaves no working directory behind.
func TestDemoTellsTheWholeStory(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes about 12 s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out, errb testutil.SyncBuffer
	if err := run(ctx, []string{"demo", "--fast"}, envFrom(nil), &out, &errb); err != nil {
		t.Fatalf("demo failed: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	text := out.String()
	for _, want := range []string{
		"waiting 3s with Zendesk down",
		"waiting for the backlog to reach Zendesk",
		"waiting for the guardian to re-enable the target",
		"Zendesk deactivated the target",
		"the guardian re-enabled the target",
		"waiting for the reconciler to backfill",
		"(via reconcile)",
		"Nothing lost, nothing duplicated, nothing out of order.",
		`To look further, run "deskrelay demo --keep"`,
		"/monitoring/",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}

	t.Run("CountsComeFromWhatHappened", func(t *testing.T) {
		// What Zendesk held before the outage: the comments of step 1's tickets.
		inTickets := 0
		for _, m := range regexp.MustCompile(`Zendesk ticket #\d+ for \S+: ".*", (\d+) comment\(s\)`).FindAllStringSubmatch(text, -1) {
			inTickets += demoAtoi(t, m[1])
		}
		before := demoAtoi(t, demoFind(t, text, `(\d+) messages were delivered before the outage`))
		if before == 0 || before != inTickets {
			t.Errorf("the demo says %d messages were delivered before the outage; the tickets held %d", before, inTickets)
		}
		deliveredBefore := demoFind(t, text, `delivered so far: (\d+) of the \d+ messages from before the outage`)
		if demoAtoi(t, deliveredBefore) != before {
			t.Errorf("during the outage the demo counts %s delivered from before it, want %d", deliveredBefore, before)
		}
		if n := demoFind(t, text, `of outage, delivered so far: \d+ of the \d+ messages from before the outage, (\d+) of the \d+ sent during it`); n != "0" {
			t.Errorf("%s messages delivered while Zendesk was down", n)
		}
		during := demoAtoi(t, demoFind(t, text, `(\d+) messages accepted \(202\) while Zendesk is down`))
		if drained := demoAtoi(t, demoFind(t, text, `backlog of (\d+) drained`)); drained != during {
			t.Errorf("backlog of %d drained, but %d messages were accepted during the outage", drained, during)
		}
		if sent := demoAtoi(t, demoFind(t, text, `messages sent to deskrelay\s+(\d+)`)); sent != before+during {
			t.Errorf("summary: %d messages sent, want %d before + %d during the outage", sent, before, during)
		}
	})

	t.Run("WorkingDirectoryRemoved", func(t *testing.T) {
		dir := demoFind(t, text, `working directory (\S+)`)
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the working directory %s is still there without --keep (stat: %v)", dir, err)
		}
	})
}

func TestDemoTidy(t *testing.T) {
	tests := []struct {
		name     string
		keep     bool
		runErr   error
		wantKept bool
	}{
		{name: "RemovedAfterSuccess", wantKept: false},
		{name: "KeptWithKeep", keep: true, wantKept: true},
		{name: "KeptAfterFailure", runErr: exitCode(1), wantKept: true},
		{name: "RemovedAfterInterrupt", runErr: context.Canceled, wantKept: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "deskrelay-demo")
			if err := os.MkdirAll(filepath.Join(dir, "spool"), 0o700); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			d := &demo{env: &environment{stdout: &out, stderr: &errb}, keep: tt.keep, dir: dir, logPath: filepath.Join(dir, "deskrelay.log")}
			d.tidy(tt.runErr)
			_, err := os.Stat(dir)
			if kept := err == nil; kept != tt.wantKept {
				t.Errorf("kept = %v, want %v (stat: %v)", kept, tt.wantKept, err)
			}
			if said := strings.Contains(out.String()+errb.String(), dir); said != tt.wantKept {
				t.Errorf("says where the directory is = %v, want %v; output: %q", said, tt.wantKept, out.String()+errb.String())
			}
		})
	}
}

// demoFind returns the first group of re's first match in text, or fails.
func demoFind(t *testing.T, text, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("demo output has no line matching %q:\n%s", re, text)
	}
	return m[1]
}

func demoAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}
