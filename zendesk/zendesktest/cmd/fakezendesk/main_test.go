package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

func TestRunServesUntilCancelled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	var out testutil.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", addr, "-email", "a@b.c", "-token", "tok"}, &out, io.Discard)
	}()

	deadline := time.Now().Add(5 * time.Second)
	var res *http.Response
	for {
		req, _ := http.NewRequest("GET", "http://"+addr+"/api/v2/users/me.json", nil)
		req.SetBasicAuth("a@b.c/token", "tok")
		res, err = http.DefaultClient.Do(req)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("never served: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("users/me = %d", res.StatusCode)
	}
	if !strings.Contains(out.String(), "DESKRELAY_ZENDESK_URL=http://"+addr) {
		t.Errorf("output %q does not name the URL", out.String())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func TestHelpListsFlagsAndControls(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"-h"}, &out, &errOut); err != nil {
		t.Fatalf("run -h = %v, want nil (exit 0)", err)
	}
	for _, want := range []string{"-listen", "-webhook-endpoint", "-rate-limit", "/_fake/agent_comment", "/_fake/status",
		"/_fake/down", "/_fake/up", "/_fake/script_invocations"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h output lacks %q:\n%s", want, out.String())
		}
	}
	if errOut.Len() != 0 {
		t.Errorf("-h wrote to stderr: %q", errOut.String())
	}
}

func TestUnknownFlagFails(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"-no-such-flag"}, &out, &errOut)
	if err == nil || !strings.Contains(errOut.String(), "-listen") {
		t.Fatalf("run -no-such-flag = %v, stderr %q; want an error and the usage on stderr", err, errOut.String())
	}
}
