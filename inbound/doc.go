// Package inbound is deskrelay's Zendesk → platform path:
//
//   - Receiver.Webhook (POST /v1/zendesk/webhook) verifies Zendesk's
//     signature, checks the body is readable, and makes it durable before
//     answering: an asynq task on the "inbound" queue, or — when Redis is
//     unreachable — a file in the spool directory (fsynced). Only when the
//     spool directory itself fails does it answer 503, which Zendesk counts
//     as a failed delivery. Receiver.Target (POST /v1/zendesk/target) takes
//     the same bodies from a legacy target (main wraps it in basic auth).
//     Before reading a body it refuses unsigned requests (intake.go); bodies
//     are read within a deadline and a shared memory budget.
//   - Receiver.Run moves spooled requests into Redis, in order, once Redis
//     answers again (also after a restart), backing off while that fails;
//     it also reads the webhook's signing secret from Zendesk when only the
//     webhook id is configured (secret.go). Receiver.Close, after Run and
//     the HTTP server have stopped, ends the goroutines the request path
//     started and releases the spool directory's lock.
//   - The TaskWebhook handler turns a received body into events
//     (internal/events), reading trigger-body comments through the Zendesk
//     API within the shared budget (internal/budget), and publishes them
//     through internal/sink (rules, ledger, delivery task).
//   - It registers internal/sink's delivery handler (sink.TaskDeliver),
//     which POSTs each event to the sink; Receiver.Replay is sink.Replay.
//
// It imports internal packages (events, sink, queues, budget, tickets) and
// zendesk; it must not import relay, reconcile or package main.
package inbound
