package inbound

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/httpx"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/zendesk"
)

// webhook serves a POST of the account's webhook: its state first (404
// off, 503 waiting for the secret), the signature headers before the body,
// the body within the shared limits, the signature with the account's
// secret, then accept.
func (a *account) webhook(w http.ResponseWriter, req *http.Request) {
	r := a.r
	secret, state := a.signingSecret()
	switch state {
	case ReceiverOff:
		msg := "the webhook receiver is off: set DESKRELAY_WEBHOOK_SECRET (or DESKRELAY_ZENDESK_WEBHOOK_ID to read it from Zendesk)"
		if a.name() != keys.DefaultAccount {
			msg = "the webhook receiver of account " + a.name() + " is off: it has no webhook signing secret, nor a webhook id to read it from Zendesk with"
		}
		httpx.WriteError(w, http.StatusNotFound, "receiver_off", msg)
		return
	case ReceiverWaiting:
		r.m.rejected.WithLabelValues("waiting_for_secret").Inc()
		w.Header().Set("Retry-After", "10")
		httpx.WriteError(w, http.StatusServiceUnavailable, "waiting_for_secret", "the webhook's signing secret is being read from Zendesk")
		return
	}
	signed, ok := r.preflight(w, req, a.spec.WebhookID)
	if !ok {
		return
	}
	body, done, ok := r.readBody(w, req)
	if !ok {
		return
	}
	defer done()
	now := r.cfg.Now()
	err := zendesk.VerifySignature(secret, body,
		req.Header.Get(zendesk.HeaderSignatureTimestamp), req.Header.Get(zendesk.HeaderSignature), now, r.cfg.MaxSkew)
	if err != nil {
		reason, msg := "signature", "webhook signature missing or wrong"
		switch {
		case errors.Is(err, zendesk.ErrTimestampSkew):
			reason, msg = "timestamp", "webhook signature timestamp more than "+r.cfg.MaxSkew.String()+" from now"
		case errors.Is(err, zendesk.ErrTimestampInvalid):
			reason, msg = "timestamp", "webhook signature timestamp is not ISO 8601"
		}
		if !signed {
			reason = "unsigned" // another webhook's call: anyone can send that
		}
		r.m.rejected.WithLabelValues(reason).Inc()
		if signed {
			a.noteSignatureFailure(now, err)
		}
		httpx.WriteError(w, http.StatusUnauthorized, "bad_signature", msg)
		return
	}
	a.noteSignatureOK()
	r.accept(w, a, "webhook", req.Header.Get(HeaderInvocationID), body, now)
}

// noteReceived records the time of the account's latest verified request,
// at most once a second per process, off the request path.
func (a *account) noteReceived(now time.Time) {
	last := a.lastSeenWrite.Load()
	if now.UnixNano()-last < int64(time.Second) || !a.lastSeenWrite.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	a.r.background(&a.busyReceived, func(ctx context.Context) {
		if err := a.r.rdb.Set(ctx, a.space.WebhookLastReceived(), now.UnixMilli(), 0).Err(); err != nil {
			a.lastSeenWrite.Store(last)
		}
	})
}

// noteSignatureFailure counts a failure in the current run (written to
// Redis off the request path) and logs it, as an error when the run looks
// like a wrong webhook signing secret.
func (a *account) noteSignatureFailure(_ time.Time, cause error) {
	a.sigMu.Lock()
	a.sigRun++
	n := a.sigRun
	if k := len(a.sigOps); k > 0 && a.sigOps[k-1] > 0 {
		a.sigOps[k-1]++
	} else {
		a.sigOps = append(a.sigOps, 1)
	}
	a.sigDirty = true
	a.sigMu.Unlock()
	ev := a.log.Warn()
	if n == 5 || n%100 == 0 {
		ev = a.log.Error()
	}
	ev.Int64("run", n).Str("reason", cause.Error()).Msg("webhook signature rejected")
	a.flushSignatures()
	if a.spec.WebhookID != "" && a.secrets != nil {
		// A call naming this webhook fails verification: Zendesk may sign
		// with a secret this replica does not have yet (rotated, or re-read
		// by the guardian on another replica). RefreshSecret asks Zendesk
		// at most once a minute.
		a.r.background(&a.busyReread, func(ctx context.Context) { _ = a.refreshSecret(ctx) })
	}
}

// noteSignatureOK ends a run of signature failures.
func (a *account) noteSignatureOK() {
	a.sigMu.Lock()
	if !a.sigDirty {
		a.sigMu.Unlock()
		return
	}
	a.sigRun = 0
	a.sigOps = append(a.sigOps[:0], 0) // a clear replaces what was not written yet
	a.sigDirty = false
	a.sigMu.Unlock()
	a.flushSignatures()
}

// flushSignatures writes the queued signature-state changes (0: clear the
// run, n > 0: add n failures) in order, from one goroutine at a time.
func (a *account) flushSignatures() {
	if !a.sigFlushing.CompareAndSwap(false, true) {
		return
	}
	if !a.r.spawn(func(life context.Context) {
		defer a.sigFlushing.Store(false)
		for life.Err() == nil {
			if !a.flushSignatureOp(life) {
				return
			}
		}
	}) {
		a.sigFlushing.Store(false)
	}
}

// flushSignatureOp writes the first queued signature-state change; it
// reports whether one was written (false: none left, or Redis failed and
// the changes stay for the next flush).
func (a *account) flushSignatureOp(life context.Context) bool {
	a.sigMu.Lock()
	if len(a.sigOps) == 0 {
		a.sigMu.Unlock()
		return false
	}
	op := a.sigOps[0]
	a.sigMu.Unlock()
	ctx, cancel := context.WithTimeout(life, time.Second)
	defer cancel()
	key := a.space.WebhookSignatureFailures()
	var err error
	if op == 0 {
		err = a.r.rdb.Del(ctx, key).Err()
	} else {
		now := a.r.cfg.Now().UnixMilli()
		_, err = a.r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HIncrBy(ctx, key, "run", op)
			p.HSetNX(ctx, key, "first_at", now)
			p.HSet(ctx, key, "last_at", now)
			return nil
		})
	}
	a.sigMu.Lock()
	defer a.sigMu.Unlock()
	if err != nil {
		if op == 0 {
			a.sigDirty = true // try the clear again with the next good signature
		}
		return false
	}
	if len(a.sigOps) > 0 && a.sigOps[0] == op {
		a.sigOps = a.sigOps[1:]
	} else if len(a.sigOps) > 0 && op > 0 && a.sigOps[0] > op {
		a.sigOps[0] -= op // more failures were added to the op while it was written
	} // else a clear replaced the op meanwhile: nothing to drop
	return true
}
