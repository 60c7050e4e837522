package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestDemoTellsTheWholeStory runs `deskrelay demo --fast` end to end: it
// exits 0 only when nothing was lost, duplicated or echoed.
func TestDemoTellsTheWholeStory(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes about 15 s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"demo", "--fast"}, envFrom(nil), &out, &errb); err != nil {
		t.Fatalf("demo failed: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	for _, want := range []string{
		"Zendesk deactivated the target",
		"the guardian re-enabled the target",
		"(via reconcile)",
		"Nothing lost, nothing duplicated, nothing out of order.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
