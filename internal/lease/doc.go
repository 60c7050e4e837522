// Package lease is deskrelay's one Redis lease (a lock with an owner and a
// time to live): the conversation lock, the reconcile lease, the OAuth
// refresh lock and the test databases' claim locks are all a Lease.
//
// A Lease is a key holding a random owner token, set only if absent and with
// a TTL. Extend and Release act only while the key still holds this owner's
// token, so an owner that stalled past the TTL never renews or deletes a
// lease another owner has taken since. Key names belong to the callers
// (internal/keys); see docs/ARCHITECTURE.md.
//
// It must not import any other deskrelay package.
package lease
