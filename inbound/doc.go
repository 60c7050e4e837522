// Package inbound is deskrelay's Zendesk → platform path, for every
// configured Zendesk account:
//
//   - One Receiver per process (New) owns what is per process: the spool
//     directory (one flock) and its mover, the memory budget of request
//     bodies, the sink's HTTP client and the one sink.Deliverer. Accounts
//     are added, changed and removed at run time (SetAccounts: an atomic
//     swap of an immutable map, safe under concurrent requests); an account
//     holds its settings, its sink.Publisher and a little state, and no
//     goroutine unless it reads its signing secret from Zendesk.
//   - Receiver.Webhook (POST /v1/zendesk/webhook/{account}; without an
//     account: the default account's) verifies Zendesk's signature with the
//     account's secret, checks the body is readable, and makes it durable
//     before answering: an asynq task on the "inbound" queue, or — when
//     Redis is unreachable — a spool record (fsynced). Only when the spool
//     directory itself fails does it answer 503, which Zendesk counts as a
//     failed delivery. Receiver.Target (POST /v1/zendesk/target/{account})
//     takes the same bodies from a legacy target, which cannot sign: it
//     checks the account's basic-auth login. An account not configured is
//     404. Before reading a body the webhook refuses unsigned requests
//     (intake.go); bodies are read within a deadline and the shared memory
//     budget.
//   - Receiver.Run moves spooled requests into Redis, in order, once Redis
//     answers again (also after a restart), backing off while that fails;
//     it also reads an account's webhook signing secret from Zendesk when
//     only the webhook id is configured (secret.go). Receiver.Close, after
//     Run and the HTTP server have stopped, ends the goroutines the request
//     path started and releases the spool directory's lock.
//   - The TaskWebhook handler turns a received body into events
//     (internal/events), reading trigger-body comments through the
//     account's Zendesk client within its budget (internal/budget), and
//     publishes them through the account's sink.Publisher (rules, ledger,
//     delivery task), which gives them the account (its name, its event
//     ids). Task payloads and spool records name the account; without one
//     (the previous release) they are the default account's.
//   - It registers internal/sink's delivery handler (sink.TaskDeliver),
//     which POSTs each event to the sink with its account's keys;
//     Receiver.Replay is sink.Replay of one account.
//
// It imports internal packages (events, sink, queues, budget, tickets) and
// zendesk; it must not import relay, reconcile or package main.
package inbound
