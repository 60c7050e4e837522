package relay

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Intake in two steps around the asynq task, which lives outside the
// account's hash slot and so cannot join a script: accept claims the id
// (record in "accepting", with the claiming request's token and time), the
// claimant alone enqueues the task, then queue gives the message its place
// in the conversation. Taking the place before the task exists would leave
// a hole in the conversation's positions when the enqueue fails.
//
// Exactly one request answers 202: the one whose claim token the queued
// record carries. A request that finds a fresh claim with the same content
// waits for its outcome (then answers 200, or claims itself when the first
// gave up); a claim older than intakeLease belongs to an intake that died,
// and the next request takes it over.

// intakeLease is how long a claim holds off other requests for the same id.
const intakeLease = 2 * time.Second

// Outcomes of acceptScript.
const (
	acceptNew      = "new"      // claimed: enqueue, then queue
	acceptExists   = "exists"   // accepted before, same content
	acceptConflict = "conflict" // the id names other content
	acceptBusy     = "busy"     // another request's fresh claim, same content
)

// acceptScript claims an id. KEYS: record, the account's gate, its parked
// set, queued set. ARGV: hash, conv, msg JSON, token, lease ms, retention s,
// runnable limit (0: none). Returns {outcome, state}, and for a claim a
// third element: "1" when the account is backlogged (its gate is closed, it
// has parked messages, or as many of its messages as its budget takes in a
// release slice are already runnable, i.e. queued and not parked: the new
// message parks at once, park.go), else "0".
var acceptScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local st = redis.call('HGET', KEYS[1], 'state')
if st then
  local same = redis.call('HGET', KEYS[1], 'hash') == ARGV[1]
  if st ~= 'accepting' then
    if same then return {'exists', st} end
    return {'conflict', st}
  end
  local at = tonumber(redis.call('HGET', KEYS[1], 'claimed_at') or '0') or 0
  if now - at < tonumber(ARGV[5]) then
    if same then return {'busy', st} end
    return {'conflict', st}
  end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'state', 'accepting', 'hash', ARGV[1], 'conv', ARGV[2], 'msg', ARGV[3],
  'accepted_at', now, 'attempts', 0, 'gen', 0, 'claim', ARGV[4], 'claimed_at', now)
redis.call('EXPIRE', KEYS[1], ARGV[6])
local backlogged = '0'
local nparked = redis.call('ZCARD', KEYS[3])
local limit = tonumber(ARGV[7]) or 0
if redis.call('HGET', KEYS[2], 'state') == 'closed' or nparked > 0 or
   (limit > 0 and redis.call('ZCARD', KEYS[4]) - nparked >= limit) then backlogged = '1' end
return {'new', 'accepting', backlogged}
`)

// queueScript turns an "accepting" record into "queued": it takes its
// position in the conversation and joins the conversation's pending set.
// The conversation's keys live for the retention after its last activity.
// It joins the account's queued set too (the backlog, by accepted_at).
// KEYS: record, pending, order, queued set. ARGV: sequence or "", id, claim token or ""
// (the task completing an interrupted intake), retention ms. Returns "queued" when the
// record is queued under this claim (or any, without a token), "lost" when
// another claim owns it, "gone" when there is no record.
var queueScript = redis.NewScript(`
local rec = redis.call('HMGET', KEYS[1], 'state', 'claim', 'accepted_at')
local st = rec[1]
if not st then return 'gone' end
local mine = ARGV[3] == '' or rec[2] == ARGV[3]
if st ~= 'accepting' then
  if mine then return 'queued' end
  return 'lost'
end
if not mine then return 'lost' end
local pos
if ARGV[1] ~= '' then
  pos = ARGV[1]
  local max = tonumber(redis.call('HGET', KEYS[3], 'max') or '0') or 0
  if tonumber(pos) > max then redis.call('HSET', KEYS[3], 'max', pos) end
else
  local m = redis.call('HGET', KEYS[3], 'max')
  if m and not string.match(m, '^%d+$') then
    -- The previous release stored a float here after a sequence beyond
    -- 2^53: go on from the largest exact position.
    local v = math.floor(tonumber(m) or 0)
    if v < 0 then v = 0 end
    if v > 9007199254740990 then v = 9007199254740990 end
    redis.call('HSET', KEYS[3], 'max', string.format('%d', v))
  end
  pos = redis.call('HINCRBY', KEYS[3], 'max', 1)
end
redis.call('ZADD', KEYS[2], pos, ARGV[2])
redis.call('ZADD', KEYS[4], tonumber(rec[3] or '0') or 0, ARGV[2])
redis.call('HSET', KEYS[1], 'state', 'queued', 'pos', pos)
redis.call('PERSIST', KEYS[1])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return 'queued'
`)

// dropScript deletes a record still "accepting" under the given claim.
var dropScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'state') == 'accepting' and redis.call('HGET', KEYS[1], 'claim') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// accept claims m's id (acceptScript); backlogged tells a claim whether
// the account is backlogged; runnable is Relay.runnableLimit.
func (s *store) accept(ctx context.Context, m *Message, hash string, msgJSON []byte, token string, retention time.Duration, runnable int64) (outcome string, backlogged bool, err error) {
	res, err := acceptScript.Run(ctx, s.rdb, []string{s.space.Message(m.ID), s.space.OutboundGate(), s.space.OutboundParked(), s.space.OutboundQueued()},
		hash, m.ConversationID, msgJSON, token, intakeLease.Milliseconds(), int64(retention/time.Second), runnable).StringSlice()
	if err != nil {
		return "", false, err
	}
	return res[0], len(res) > 2 && res[2] == "1", nil
}

// queue places an accepted message in its conversation; token "" completes
// anyone's claim (the task does this after an interrupted intake).
func (s *store) queue(ctx context.Context, id, conv string, seq *int64, token string) (string, error) {
	sq := ""
	if seq != nil {
		sq = strconv.FormatInt(*seq, 10)
	}
	return queueScript.Run(ctx, s.rdb, []string{s.space.Message(id), s.space.ConversationPending(conv), s.space.ConversationOrder(conv), s.space.OutboundQueued()},
		sq, id, token, s.retention.Milliseconds()).Text()
}

func (s *store) drop(ctx context.Context, id, token string) error {
	return dropScript.Run(ctx, s.rdb, []string{s.space.Message(id)}, token).Err()
}
