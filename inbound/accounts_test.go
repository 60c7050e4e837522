package inbound_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/inbound"
	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/internal/tickets"
	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

const acmeSecret = "acme-signing-secret"

var acme = keys.For("acme")

// acmeAccount is the account acme: its own signing secret and target login.
func acmeAccount(zc *zendesk.Client) inbound.Account {
	return inbound.Account{Name: "acme", WebhookSecret: acmeSecret, TargetUser: "acme-zendesk", TargetPassword: "acme-password", Zendesk: zc}
}

// managedTicketIn is managedTicket in the record tk (an account's).
func managedTicketIn(t *testing.T, zd *zendesktest.Server, tk *tickets.Tickets, conv string) int64 {
	t.Helper()
	id := zd.CreateTicket(zendesk.NewTicket{
		Subject: "The app crashes", Comment: zendesk.CommentInput{Body: "The app crashes when …", Public: true},
		Requester: &zendesk.Requester{Name: "Ann Lee", Email: "ann@example.com"}, ExternalID: conv, Tags: []string{"deskrelay"},
	})
	ctx := context.Background()
	if err := tk.Link(ctx, conv, id); err != nil {
		t.Fatal(err)
	}
	for _, c := range zd.Comments(id) {
		if err := tk.RememberOwnComment(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func newZendesk(t *testing.T) (*zendesktest.Server, *zendesk.Client) {
	t.Helper()
	zd := zendesktest.NewServer(t, zendesktest.Config{})
	zc, err := zendesk.New(zendesk.Config{BaseURL: zd.URL(), Email: zd.Email(), APIToken: zd.APIToken()})
	if err != nil {
		t.Fatal(err)
	}
	return zd, zc
}

// TestTwoAccountsSameCommentID: two Zendesk accounts (a fake each) whose
// agents write comments with the same id: each account's trigger webhook
// comes in on its own path, its comment is read from its own Zendesk, and
// the sink gets two events with ids of their own, each naming its account.
func TestTwoAccountsSameCommentID(t *testing.T) {
	zdDef, zcDef := newZendesk(t)
	zdAcme, zcAcme := newZendesk(t)
	h := newHarness(t, harnessOptions{zendesk: zcDef, accounts: []inbound.Account{acmeAccount(zcAcme)}})
	zdDef.AddWebhook(h.api.URL+"/v1/zendesk/webhook", webhookSecret)
	zdAcme.AddWebhook(h.api.URL+"/v1/zendesk/webhook/acme", acmeSecret)
	tDef := managedTicketIn(t, zdDef, h.tickets, "conv_1")
	tAcme := managedTicketIn(t, zdAcme, h.tickets.WithSpace(acme), "conv_1")
	cDef := zdDef.AgentComment(tDef, "from default's agent", true)
	cAcme := zdAcme.AgentComment(tAcme, "from acme's agent", true)
	if cDef != cAcme {
		t.Fatalf("the fakes gave comment ids %d and %d: the test needs the same id", cDef, cAcme)
	}
	testutil.WaitFor(t, 15*time.Second, func() bool { return len(h.sink.events()) >= 2 }, "both comments at the sink")
	h.idle(10 * time.Second)
	got := map[string]string{}
	for _, ev := range h.sink.events() {
		got[ev.ID] = ev.Account
		if ev.Account == "acme" && ev.Comment.Body != "from acme's agent" {
			t.Errorf("acme's event holds %q", ev.Comment.Body)
		}
	}
	want := map[string]string{fmt.Sprintf("zd:comment:%d", cDef): "default", fmt.Sprintf("zd:acme:comment:%d", cAcme): "acme"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("sink got %v (id: account), want %v", got, want)
	}
	for _, k := range []string{keys.Default.EventLedger(fmt.Sprintf("zd:comment:%d", cDef)), acme.EventLedger(fmt.Sprintf("zd:acme:comment:%d", cAcme))} {
		if n, _ := h.rdb.Exists(context.Background(), k).Result(); n != 1 {
			t.Errorf("ledger %s missing", k)
		}
	}
}

// TestAccountPaths: a webhook signed with one account's secret fails on
// another's path (counted there); an account not configured is 404; each
// target checks its own account's login.
func TestAccountPaths(t *testing.T) {
	h := newHarness(t, harnessOptions{noWorkers: true, accounts: []inbound.Account{acmeAccount(nil)}})
	h.link("conv_1", 1001)
	body := statusBody(1001, "PENDING", time.Now())
	if r := h.postTo("/v1/zendesk/webhook/acme", body, webhookSecret, time.Now(), ""); r.Status != http.StatusUnauthorized {
		t.Fatalf("default's signature on acme's path: %d %s, want 401", r.Status, r.Body)
	}
	for _, path := range []string{"/v1/zendesk/webhook/acme", "/v1/zendesk/webhook", "/v1/zendesk/webhook/default"} {
		secret := map[bool]string{true: acmeSecret, false: webhookSecret}[strings.HasSuffix(path, "acme")]
		if r := h.postTo(path, body, secret, time.Now(), ""); r.Status != http.StatusOK {
			t.Fatalf("%s with its secret: %d %s, want 200", path, r.Status, r.Body)
		}
	}
	for _, path := range []string{"/v1/zendesk/webhook/nope", "/v1/zendesk/target/nope"} {
		if r := h.postTo(path, body, webhookSecret, time.Now(), ""); r.Status != http.StatusNotFound || !strings.Contains(r.Body, "unknown_account") {
			t.Fatalf("%s: %d %s, want 404 unknown_account", path, r.Status, r.Body)
		}
	}
	ctx := context.Background()
	sfAcme, err := inbound.ReadSignatureFailures(ctx, h.rdb, acme)
	if err != nil {
		t.Fatal(err)
	}
	sfDef, err := inbound.ReadSignatureFailures(ctx, h.rdb, keys.Default)
	if err != nil {
		t.Fatal(err)
	}
	// the good signature after the bad one ends acme's run; the status
	// says so per account
	if sfAcme.Run != 0 || sfDef.Run != 0 {
		t.Errorf("signature failure runs acme %d, default %d; want both ended", sfAcme.Run, sfDef.Run)
	}
	testutil.WaitFor(t, 5*time.Second, func() bool {
		st, err := h.recv.AccountStatus(ctx, "acme")
		return err == nil && st.ReceiverOn && !st.LastWebhookAt.IsZero()
	}, "acme's last webhook to be recorded")

	for _, tc := range []struct {
		path, user, password string
		want                 int
	}{
		{"/v1/zendesk/target/acme", "acme-zendesk", "acme-password", http.StatusOK},
		{"/v1/zendesk/target/acme", targetUser, targetPassword, http.StatusUnauthorized},
		{"/v1/zendesk/target", "acme-zendesk", "acme-password", http.StatusUnauthorized},
		{"/v1/zendesk/target", targetUser, targetPassword, http.StatusOK},
	} {
		req, _ := http.NewRequest(http.MethodPost, h.api.URL+tc.path, strings.NewReader(string(triggerBody(1001, "Open", time.Now(), 5, true, 9))))
		req.SetBasicAuth(tc.user, tc.password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s as %s: %d, want %d", tc.path, tc.user, resp.StatusCode, tc.want)
		}
	}
}

// TestNoDefaultAccount: without a default account the paths without an
// account are 404.
func TestNoDefaultAccount(t *testing.T) {
	h := newHarness(t, harnessOptions{noWorkers: true, accounts: []inbound.Account{acmeAccount(nil)}})
	if err := h.recv.SetAccounts([]inbound.Account{acmeAccount(nil)}); err != nil {
		t.Fatal(err)
	}
	if r := h.post(statusBody(1001, "PENDING", time.Now()), webhookSecret, time.Now(), ""); r.Status != http.StatusNotFound {
		t.Fatalf("/v1/zendesk/webhook without a default account: %d %s, want 404", r.Status, r.Body)
	}
}

// TestAccountsChangeAtRuntime: removing an account makes its path 404
// while the others keep working, adding one works without a restart, and
// SetAccounts is safe while requests arrive.
func TestAccountsChangeAtRuntime(t *testing.T) {
	h := newHarness(t, harnessOptions{accounts: []inbound.Account{acmeAccount(nil)}})
	h.link("conv_1", 1001)
	def := h.accts[0]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the default account's webhooks keep coming meanwhile
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if r := h.post(statusBody(1001, "PENDING", time.Now()), webhookSecret, time.Now(), ""); r.Status != http.StatusOK {
				t.Errorf("default's webhook during SetAccounts: %d %s", r.Status, r.Body)
				return
			}
		}
	}()
	beta := inbound.Account{Name: "beta", WebhookSecret: "beta-secret"}
	for range 20 {
		if err := h.recv.SetAccounts([]inbound.Account{def, beta}); err != nil {
			t.Fatal(err)
		}
		if err := h.recv.SetAccounts([]inbound.Account{def, acmeAccount(nil)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.recv.SetAccounts([]inbound.Account{def, beta}); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if r := h.postTo("/v1/zendesk/webhook/acme", statusBody(1001, "PENDING", time.Now()), acmeSecret, time.Now(), ""); r.Status != http.StatusNotFound {
		t.Fatalf("removed acme: %d %s, want 404", r.Status, r.Body)
	}
	if got := h.recv.Accounts(); strings.Join(got, ",") != "beta,default" {
		t.Fatalf("Accounts() = %v", got)
	}
	if got := gauge(t, h, "deskrelay_webhook_receiver_state", "acme", "on"); got != -1 {
		t.Errorf("the removed account's receiver state is still exported: %v", got)
	}
	if got := gauge(t, h, "deskrelay_webhook_receiver_state", "beta", "on"); got != 1 {
		t.Errorf("beta's receiver state on = %v, want 1", got)
	}
	if err := h.tickets.WithSpace(keys.For("beta")).Link(context.Background(), "conv_b", 1001); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	if r := h.postTo("/v1/zendesk/webhook/beta", statusBody(1001, "SOLVED", at), "beta-secret", time.Now(), ""); r.Status != http.StatusOK {
		t.Fatalf("added beta: %d %s, want 200", r.Status, r.Body)
	}
	want := events.AccountEventID("beta", events.StatusEventID(1001, "solved", at))
	testutil.WaitFor(t, 15*time.Second, func() bool {
		for _, ev := range h.sink.events() {
			if ev.ID == want && ev.Account == "beta" && ev.ConversationID == "conv_b" {
				return true
			}
		}
		return false
	}, "beta's event at the sink")
	if st := h.recv.ReceiverStatus("acme"); st.State != inbound.ReceiverOff {
		t.Errorf("removed acme's receiver %+v, want off", st)
	}
}

// TestPreviousReleaseHasNoAccount: a spool record and a webhook task of the
// previous release carry no account: they are the default account's.
func TestPreviousReleaseHasNoAccount(t *testing.T) {
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	old := func(body []byte) []byte {
		b, _ := json.Marshal(map[string]any{"kind": "webhook", "received_at": time.Now().UTC(), "body": json.RawMessage(body)})
		return b
	}
	spooled := statusBody(1001, "PENDING", at)
	queued := statusBody(1001, "SOLVED", at.Add(time.Minute))
	dir := t.TempDir()
	if err := inbound.SpoolRecord(dir, old(spooled)); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{accounts: []inbound.Account{acmeAccount(nil)}, cfg: func(c *inbound.Config) { c.SpoolDir = dir }})
	h.link("conv_1", 1001)
	if err := h.tickets.WithSpace(acme).Link(context.Background(), "conv_1", 1001); err != nil {
		t.Fatal(err)
	}
	c := asynq.NewClientFromRedisClient(h.rdb)
	if _, err := c.Enqueue(asynq.NewTask(inbound.TaskWebhook, old(queued)), asynq.Queue(queues.Inbound)); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 15*time.Second, func() bool { return len(h.sink.events()) >= 2 }, "both events at the sink")
	h.idle(10 * time.Second)
	for _, ev := range h.sink.events() {
		if ev.Account != "default" || !strings.HasPrefix(ev.ID, "zd:status:1001:") {
			t.Errorf("event %s of %q, want the default account's", ev.ID, ev.Account)
		}
	}
	if n := len(h.sink.events()); n != 2 {
		t.Errorf("%d events at the sink, want 2", n)
	}
}

// TestLedgerPerAccount: the same comment id arrives for two accounts; the
// one whose ledger already holds its event drops it, the other delivers
// it, and the delivery marks its own account's ledger only.
func TestLedgerPerAccount(t *testing.T) {
	h := newHarness(t, harnessOptions{accounts: []inbound.Account{acmeAccount(nil)}})
	ctx := context.Background()
	h.link("conv_1", 1001)
	if err := h.tickets.WithSpace(acme).Link(ctx, "conv_1", 1001); err != nil {
		t.Fatal(err)
	}
	if err := h.recv.Publisher("acme").Ledger().Mark(ctx, "zd:acme:comment:5"); err != nil {
		t.Fatal(err)
	}
	body := commentBody(1001, 5, "conv_1", true, true, time.Now())
	if r := h.postTo("/v1/zendesk/webhook/acme", body, acmeSecret, time.Now(), "inv-1"); r.Status != http.StatusOK {
		t.Fatalf("acme: %d %s", r.Status, r.Body)
	}
	// the same invocation id on the default account's path is another call
	if r := h.postTo("/v1/zendesk/webhook", body, webhookSecret, time.Now(), "inv-1"); r.Status != http.StatusOK || !strings.Contains(r.Body, "accepted") {
		t.Fatalf("default: %d %s, want accepted", r.Status, r.Body)
	}
	testutil.WaitFor(t, 15*time.Second, func() bool { return len(h.sink.events()) >= 1 }, "default's comment at the sink")
	h.idle(10 * time.Second)
	if ids := h.sink.ids(); strings.Join(ids, ",") != "zd:comment:5" {
		t.Fatalf("sink got %v, want only default's zd:comment:5", ids)
	}
	for k, want := range map[string]int64{
		keys.Default.EventLedger("zd:comment:5"):      1,
		acme.EventLedger("zd:comment:5"):              0,
		keys.Default.InvocationLedger("inv-1"):        1,
		acme.InvocationLedger("inv-1"):                1,
		keys.Default.EventLedger("zd:acme:comment:5"): 0,
	} {
		if n, _ := h.rdb.Exists(ctx, k).Result(); n != want {
			t.Errorf("%s exists %d, want %d", k, n, want)
		}
	}
}

// gauge is the value of name{account, state}, -1 when there is none.
func gauge(t *testing.T, h *harness, name, account, state string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["account"] == account && labels["state"] == state {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// goroutinesIn counts the goroutines whose stack holds fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), fn)
}

// TestSecretReaderPerAccount: an account added at run time without a
// secret reads its own webhook's secret from its own Zendesk in the
// background, and its reader stops when the account is removed; the
// receiver state is reported per account.
func TestSecretReaderPerAccount(t *testing.T) {
	zdAcme, zcAcme := newZendesk(t)
	h := newHarness(t, harnessOptions{noWorkers: true, cfg: func(c *inbound.Config) { c.SecretRetry = 20 * time.Millisecond }})
	hook := zdAcme.AddWebhook(h.api.URL+"/v1/zendesk/webhook/acme", "acme-secret-from-zendesk")
	def := h.accts[0]
	if err := h.recv.SetAccounts([]inbound.Account{def, {Name: "acme", WebhookID: hook, Zendesk: zcAcme}}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, func() bool { return h.recv.ReceiverStatus("acme").State == inbound.ReceiverOn }, "acme's secret read")
	h.link("conv_1", 1001)
	if r := h.postTo("/v1/zendesk/webhook/acme", statusBody(1001, "PENDING", time.Now()), "acme-secret-from-zendesk", time.Now(), ""); r.Status != http.StatusOK {
		t.Fatalf("acme with the secret read from its Zendesk: %d %s", r.Status, r.Body)
	}
	ctx := context.Background()
	testutil.WaitFor(t, 5*time.Second, func() bool {
		st, ok, err := inbound.ReadReceiverState(ctx, h.rdb, acme)
		return err == nil && ok && st.State == inbound.ReceiverOn
	}, "acme's receiver state in Redis")
	if got := gauge(t, h, "deskrelay_webhook_receiver_state", "acme", "on"); got != 1 {
		t.Errorf("deskrelay_webhook_receiver_state{account=acme,state=on} = %v, want 1", got)
	}
	if h.status().State != inbound.ReceiverOn {
		t.Errorf("default's receiver %+v, want on", h.status())
	}

	// a webhook Zendesk does not know: the reader keeps trying until acme goes
	if err := h.recv.SetAccounts([]inbound.Account{def, {Name: "acme", WebhookID: "01NOSUCH", Zendesk: zcAcme}}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, func() bool { return h.recv.ReceiverStatus("acme").LastError != "" }, "acme's failed read")
	if n := goroutinesIn("awaitSecret"); n != 1 {
		t.Fatalf("%d secret readers, want 1", n)
	}
	if err := h.recv.SetAccounts([]inbound.Account{def}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, func() bool { return goroutinesIn("awaitSecret") == 0 }, "acme's secret reader to stop")
}
