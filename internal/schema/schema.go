// Package schema brings the Redis data of an earlier deskrelay release to
// the key layout of this one, so that an upgrade keeps queued and failed
// messages, OAuth tokens, checkpoints, conversation mappings and event ids.
//
// Layouts:
//
//	0  (up to 780b922) deskrelay:<rest>, one account, no hash tag;
//	   OAuth under deskrelay:oauth:<account>:token|lock.
//	1  deskrelay:{<account>}:<rest>: every key tagged by its account, so
//	   that one account's keys share a Redis Cluster hash slot
//	   (internal/keys).
//
// Migrate runs at every start of a command that touches Redis: it is
// idempotent and cheap once done (one GET). docs/ARCHITECTURE.md says how to
// upgrade (stop the previous release's replicas first).
//
// It imports internal/keys only.
package schema
