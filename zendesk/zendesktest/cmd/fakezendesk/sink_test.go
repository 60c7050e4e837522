package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

func TestSinkPrintsAndListsDeliveries(t *testing.T) {
	var out testutil.SyncBuffer
	hs := httptest.NewServer(handler(zendesktest.NewServer(t, zendesktest.Config{}), &sink{out: &out}))
	defer hs.Close()

	req, _ := http.NewRequest(http.MethodPost, hs.URL+"/_fake/sink", strings.NewReader(`{"type":"ticket.comment_added","id":"zd:comment:7"}`))
	req.Header.Set("webhook-id", "zd:comment:7")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /_fake/sink = %d, want 204", res.StatusCode)
	}
	if !strings.Contains(out.String(), `sink: webhook-id zd:comment:7: {"type":"ticket.comment_added"`) {
		t.Errorf("delivery not printed: %q", out.String())
	}

	res, err = http.Get(hs.URL + "/_fake/sink")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got []map[string]string
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil || len(got) != 1 || got[0]["id"] != "zd:comment:7" {
		t.Fatalf("GET /_fake/sink = %v (%v), want the one delivery", got, err)
	}
}
