package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/redisconn"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// clusterSink is the platform's sink: it verifies each delivery's signature
// and counts the deliveries of each event id.
type clusterSink struct {
	wh  *standardwebhooks.Webhook
	mu  sync.Mutex
	ids map[string]int
	bad int
}

func (s *clusterSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.wh.Verify(b, r.Header); err != nil {
		s.bad++
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.ids[r.Header.Get("webhook-id")]++
	w.WriteHeader(http.StatusNoContent)
}

func (s *clusterSink) count(id string) (n, bad int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id], s.bad
}

// clusterRun is deskrelay serving on a Redis Cluster, with the fake Zendesk
// and a sink.
type clusterRun struct {
	cluster *redistest.Cluster
	zd      *zendesktest.Server
	sink    *clusterSink
	env     map[string]string
	base    string
	bearer  string
	ticket  int64 // the ticket of the conversation the first message opened
}

// TestClusterEndToEnd: with DESKRELAY_REDIS_URL=redis-cluster://…, serve
// delivers a message to Zendesk exactly once, a signed Zendesk webhook's
// event to the sink, and `deskrelay reconcile` backfills an event the
// webhooks dropped; asynq's Inspector and asynqmon read the queues.
func TestClusterEndToEnd(t *testing.T) {
	c := redistest.StartCluster(t)
	// The fake's clock runs two minutes behind, so that an agent's reply
	// is old enough for the export (which hides the last minute) while its
	// webhook's signature is still recent (five minutes' skew allowed).
	zd := zendesktest.NewServer(t, zendesktest.Config{
		Email: "agent@example.com", APIToken: "zd-api-token-SECRET1", ExportLag: -1,
		Now: func() time.Time { return time.Now().Add(-2 * time.Minute) },
	})
	env := daemonEnv(t, c.URL(), zd.URL())
	wh, err := standardwebhooks.NewWebhook(env["DESKRELAY_SINK_SECRET"])
	if err != nil {
		t.Fatal(err)
	}
	sink := &clusterSink{wh: wh, ids: map[string]int{}}
	sinkSrv := httptest.NewServer(sink)
	t.Cleanup(sinkSrv.Close)
	env["DESKRELAY_SINK_URL"] = sinkSrv.URL + "/events"
	base, logs, stop := startDaemon(t, env)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("deskrelay's log:\n%s", logs.String())
		}
	})
	r := &clusterRun{cluster: c, zd: zd, sink: sink, env: env, base: base, bearer: "Bearer " + env["DESKRELAY_INGEST_TOKEN"]}

	if !t.Run("MessageDeliveredOnce", r.messageDeliveredOnce) {
		t.FailNow() // the rest needs the conversation's ticket
	}
	t.Run("WebhookEventToSink", r.webhookEventToSink)
	t.Run("ReconcileBackfills", r.reconcileBackfills)
	t.Run("InspectorAndAsynqmon", r.inspectorAndAsynqmon)
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	assertNoSecrets(t, env, logs.String())
}

func (r *clusterRun) messageDeliveredOnce(t *testing.T) {
	msg := `{"id":"msg_cluster_1","conversation_id":"conv_cluster","sequence":1,"author":{"name":"Ann","email":"ann@example.com"},"body":"The app crashes on Save"}`
	if code, body := doJSON(t, http.MethodPost, r.base+"/v1/messages", r.bearer, msg); code != http.StatusAccepted {
		t.Fatalf("post: %d %v", code, body)
	}
	testutil.WaitFor(t, 30*time.Second, func() bool {
		_, st := doJSON(t, http.MethodGet, r.base+"/v1/messages/msg_cluster_1", r.bearer, "")
		return st["status"] == "delivered"
	}, "the message delivered")
	if code, _ := doJSON(t, http.MethodPost, r.base+"/v1/messages", r.bearer, msg); code != http.StatusOK {
		t.Fatalf("the same message again = %d, want 200", code)
	}
	follow := `{"id":"msg_cluster_2","conversation_id":"conv_cluster","sequence":2,"author":{"name":"Ann","email":"ann@example.com"},"body":"Still crashing"}`
	if code, body := doJSON(t, http.MethodPost, r.base+"/v1/messages", r.bearer, follow); code != http.StatusAccepted {
		t.Fatalf("post the second: %d %v", code, body)
	}
	testutil.WaitFor(t, 30*time.Second, func() bool {
		_, st := doJSON(t, http.MethodGet, r.base+"/v1/messages/msg_cluster_2", r.bearer, "")
		return st["status"] == "delivered"
	}, "the second message delivered")
	tickets := r.zd.TicketsByExternalID("conv_cluster")
	if len(tickets) != 1 {
		t.Fatalf("tickets for conv_cluster = %d, want 1", len(tickets))
	}
	r.ticket = tickets[0].ID
	if n := len(r.zd.Comments(r.ticket)); n != 2 {
		t.Fatalf("comments on the ticket = %d, want 2 (each message once)", n)
	}
}

func (r *clusterRun) webhookEventToSink(t *testing.T) {
	r.zd.AddWebhook(r.base+"/v1/zendesk/webhook", r.env["DESKRELAY_WEBHOOK_SECRET"], zendesktest.EventCommentAdded)
	cid := r.zd.AgentComment(r.ticket, "Try turning it off and on", true)
	id := "zd:comment:" + itoa(cid)
	testutil.WaitFor(t, 30*time.Second, func() bool { n, _ := r.sink.count(id); return n > 0 }, "the agent's reply at the sink")
	if n, bad := r.sink.count(id); n != 1 || bad != 0 {
		t.Fatalf("event %s delivered %d times (%d badly signed), want once", id, n, bad)
	}
}

func (r *clusterRun) reconcileBackfills(t *testing.T) {
	r.zd.DropWebhooks(true)
	cid := r.zd.AgentComment(r.ticket, "Fixed in 2.1", true)
	id := "zd:comment:" + itoa(cid)
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"reconcile", "--since", "1h"}, envFrom(r.env), &out, &errb); err != nil {
		t.Fatalf("reconcile: %v\n%s\n%s", err, out.String(), errb.String())
	}
	testutil.WaitFor(t, 30*time.Second, func() bool { n, _ := r.sink.count(id); return n > 0 }, "the dropped reply backfilled at the sink")
	time.Sleep(200 * time.Millisecond) // a second delivery would come now
	if n, _ := r.sink.count(id); n != 1 {
		t.Fatalf("backfilled event delivered %d times, want once", n)
	}
	if !strings.Contains(out.String(), "already delivered") {
		t.Errorf("the run should find the webhook's event already delivered:\n%s", out.String())
	}
	assertNoSecrets(t, r.env, out.String()+errb.String())
}

// inspectorAndAsynqmon: asynq's Inspector and the /monitoring UI's API read
// the queues, servers and Redis of the cluster.
func (r *clusterRun) inspectorAndAsynqmon(t *testing.T) {
	opt, err := redisconn.Parse(r.cluster.URL(), 0)
	if err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	qs, err := insp.Queues()
	if err != nil || len(qs) == 0 {
		t.Fatalf("Inspector.Queues = %v, %v", qs, err)
	}
	info, err := insp.GetQueueInfo(queues.Outbound)
	if err != nil || info.Processed < 2 {
		t.Fatalf("Inspector.GetQueueInfo(outbound) = %+v, %v; want 2 processed", info, err)
	}
	if _, err := insp.History(queues.Outbound, 2); err != nil {
		t.Errorf("Inspector.History: %v", err)
	}
	if srv, err := insp.Servers(); err != nil || len(srv) == 0 {
		t.Errorf("Inspector.Servers = %d, %v; want the running server", len(srv), err)
	}
	if nodes, err := insp.ClusterNodes(queues.Outbound); err != nil || len(nodes) == 0 {
		t.Errorf("Inspector.ClusterNodes = %v, %v", nodes, err)
	}
	for _, path := range []string{"/monitoring/api/queues", "/monitoring/api/queues/" + queues.Outbound + "/completed_tasks",
		"/monitoring/api/servers", "/monitoring/api/redis_info", "/monitoring/api/queue_stats"} {
		code, body := adminGetRaw(t, r.base+path, r.env["DESKRELAY_ADMIN_PASSWORD"])
		if code != http.StatusOK || !json.Valid(body) {
			t.Errorf("GET %s = %d %.300s", path, code, body)
		}
	}
}

func adminGetRaw(t *testing.T, url, password string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("admin", password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
