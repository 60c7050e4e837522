//go:build browser

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/tools/browsercheck"
)

// TestBrowserMonitoringUI drives a real Chromium (`make browser-check`):
// deskrelay serve with a fake Zendesk, the admin logs in to /monitoring/
// with basic auth, sees the three queues, and pauses and resumes the
// outbound queue with the UI's own buttons; asynq's Inspector confirms each
// step. The cross-site guard must not get in the UI's way. Then the viewer
// login sees the queues in the read-only UI. Screenshots go
// to BROWSERCHECK_OUT (default bin/browsercheck).
func TestBrowserMonitoringUI(t *testing.T) {
	chromedriver, err1 := exec.LookPath("chromedriver")
	chromium, err2 := exec.LookPath("chromium")
	if err1 != nil || err2 != nil {
		t.Fatalf("the browser check needs chromedriver and chromium (apt-get install chromium chromium-driver): %v %v", err1, err2)
	}
	out := os.Getenv("BROWSERCHECK_OUT")
	if out == "" {
		out = filepath.Join("bin", "browsercheck")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}

	db := redistest.New(t)
	env := daemonEnv(t, db.URL(), newTestZendesk(t))
	env["DESKRELAY_PUBLIC_URL"] = "https://relay.example.com"
	env["DESKRELAY_VIEWER_USER"] = "viewer"
	env["DESKRELAY_VIEWER_PASSWORD"] = "viewer-password-SECRET7"
	base, _, _ := startDaemon(t, env)
	knowOutbound(t, base, env)
	knowQueues(t, db.AsynqOpt(), queues.Inbound, queues.Reconcile)
	insp := asynq.NewInspector(db.AsynqOpt())
	t.Cleanup(func() { _ = insp.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	wd, err := browsercheck.Start(ctx, chromedriver, chromium)
	if err != nil {
		t.Fatal(err)
	}
	defer wd.Close()
	if err := wd.BasicAuth(ctx, "admin", env["DESKRELAY_ADMIN_PASSWORD"]); err != nil {
		t.Fatal(err)
	}
	if err := wd.Navigate(ctx, base+"/monitoring/"); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, wd, "the three queues on the dashboard", queues.Outbound, queues.Inbound, queues.Reconcile)
	shot(t, ctx, wd, filepath.Join(out, "1-dashboard.png"))

	pressQueueButton(t, ctx, wd, queues.Outbound)
	testutil.WaitFor(t, 10*time.Second, func() bool { return queuePaused(t, insp, queues.Outbound) }, "outbound paused from the UI")
	waitText(t, ctx, wd, "the queue shown paused", "paused")
	shot(t, ctx, wd, filepath.Join(out, "2-paused.png"))

	pressQueueButton(t, ctx, wd, queues.Outbound)
	testutil.WaitFor(t, 10*time.Second, func() bool { return !queuePaused(t, insp, queues.Outbound) }, "outbound resumed from the UI")
	shot(t, ctx, wd, filepath.Join(out, "3-resumed.png"))

	// The viewer sees the same queues in asynqmon's read-only UI: no actions.
	if err := wd.BasicAuth(ctx, "viewer", env["DESKRELAY_VIEWER_PASSWORD"]); err != nil {
		t.Fatal(err)
	}
	if err := wd.Navigate(ctx, base+"/monitoring/"); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, wd, "the three queues for the viewer", queues.Outbound, queues.Inbound, queues.Reconcile)
	if text, _ := wd.Text(ctx); strings.Contains(text, "Actions") {
		t.Errorf("the viewer's queue table has an Actions column")
	}
	shot(t, ctx, wd, filepath.Join(out, "4-viewer.png"))
}

// knowQueues makes asynq list the queues (it lists a queue once a task went
// through it) with a task scheduled far ahead, which no worker will run.
func knowQueues(t *testing.T, opt asynq.RedisConnOpt, names ...string) {
	t.Helper()
	c := asynq.NewClient(opt)
	defer c.Close()
	for _, q := range names {
		if _, err := c.Enqueue(asynq.NewTask("browsercheck:placeholder", nil), asynq.Queue(q), asynq.ProcessIn(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
}

// pressQueueButton hovers over the queue's row actions (the buttons show on
// hover) and presses the first: Pause, or Resume on a paused queue.
func pressQueueButton(t *testing.T, ctx context.Context, wd *browsercheck.Driver, queue string) {
	t.Helper()
	row := "//tr[th//a[normalize-space()='" + queue + "']]"
	cell, err := wd.Find(ctx, row+"/td[last()]")
	if err != nil {
		t.Fatalf("the %s row's actions: %v", queue, err)
	}
	if err := wd.Hover(ctx, cell); err != nil {
		t.Fatal(err)
	}
	var btn string
	testutil.WaitFor(t, 5*time.Second, func() bool {
		btn, err = wd.Find(ctx, row+"/td[last()]//button")
		return err == nil
	}, "the "+queue+" row's buttons after hovering")
	if err := wd.Click(ctx, btn); err != nil {
		t.Fatal(err)
	}
}

func waitText(t *testing.T, ctx context.Context, wd *browsercheck.Driver, what string, wants ...string) {
	t.Helper()
	var text string
	testutil.WaitFor(t, 20*time.Second, func() bool {
		text, _ = wd.Text(ctx)
		for _, w := range wants {
			if !strings.Contains(text, w) {
				return false
			}
		}
		return true
	}, what)
}

func shot(t *testing.T, ctx context.Context, wd *browsercheck.Driver, path string) {
	t.Helper()
	if err := wd.Screenshot(ctx, path); err != nil {
		t.Errorf("screenshot %s: %v", path, err)
		return
	}
	t.Logf("screenshot: %s", path)
}
