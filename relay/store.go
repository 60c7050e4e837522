package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
)

// The message record is a Redis hash at the account's Space.Message(id):
//
//	state        accepting | queued | delivered | failed
//	hash         content hash (same id, other content: 409)
//	conv, msg    conversation id and the message as JSON
//	pos          position in the conversation (sequence or arrival)
//	gen          task generation (0, then +1 per replay)
//	attempts     delivery attempts that reached Zendesk
//	last_error   the last attempt's error
//	write        set before a Zendesk write, cleared when its outcome is
//	             known: a retry that finds it checks Zendesk before writing
//	ticket_id, comment_id, reason, accepted_at, done_at
//
// "accepting" is written before the asynq task, "queued" after it: a record
// stuck in "accepting" (crash, or Redis failing in between) counts as not
// accepted, and the platform's retry (or the task itself) completes it
// (accept.go: the claim that lets exactly one request answer 202).
type record struct {
	ID        string
	State     string
	Hash      string
	Conv      string
	Msg       Message
	Pos       int64
	Gen       int64
	Attempts  int
	LastError string
	Write     string
	TicketID  int64
	CommentID int64
	Reason    string
	DoneAt    time.Time
}

func (r *record) status() Status {
	s := Status{ID: r.ID, ConversationID: r.Conv, Attempts: r.Attempts, LastError: r.LastError,
		TicketID: r.TicketID, CommentID: r.CommentID, Reason: r.Reason}
	switch r.State {
	case StateDelivered, StateFailed:
		s.Status = r.State
	default:
		s.Status = StateQueued
		if r.Attempts > 0 && r.LastError != "" {
			s.Status = StateRetrying
		}
	}
	return s
}

type store struct {
	rdb       redis.UniversalClient
	space     keys.Space    // the account's
	retention time.Duration // of every key named after a conversation (Config.Retention)
}

var errNoRecord = errors.New("no record")

func (s *store) load(ctx context.Context, id string) (*record, error) {
	h, err := s.rdb.HGetAll(ctx, s.space.Message(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("load message %s: %w", id, err)
	}
	if len(h) == 0 || h["state"] == "" {
		return nil, errNoRecord
	}
	r := &record{ID: id, State: h["state"], Hash: h["hash"], Conv: h["conv"], LastError: h["last_error"],
		Write: h["write"], Reason: h["reason"]}
	if err := json.Unmarshal([]byte(h["msg"]), &r.Msg); err != nil {
		return nil, fmt.Errorf("message %s: corrupt record: %w", id, err)
	}
	r.Pos, _ = strconv.ParseInt(h["pos"], 10, 64)
	r.Gen, _ = strconv.ParseInt(h["gen"], 10, 64)
	r.Attempts, _ = strconv.Atoi(h["attempts"])
	r.TicketID, _ = strconv.ParseInt(h["ticket_id"], 10, 64)
	r.CommentID, _ = strconv.ParseInt(h["comment_id"], 10, 64)
	if ms, err := strconv.ParseInt(h["done_at"], 10, 64); err == nil {
		r.DoneAt = time.UnixMilli(ms)
	}
	return r, nil
}

// finishScript ends a message: delivered or failed. It leaves the
// conversation's pending set and moves the conversation's "next" position
// past it. A delivered record expires after the retention; a failed one is
// kept (no TTL) until replayed or discarded. Every key of the conversation
// and of its ticket lives for the retention from now.
// It leaves the account's queued set (the backlog).
// KEYS: record, pending, order, failed set, queued set, then (optional)
// the conversation's ticket, the ticket's conversation and its requester.
// ARGV: id, state, pos, ticket, comment, reason, last_error, now ms, retention s.
var finishScript = redis.NewScript(`
local rec = redis.call('HMGET', KEYS[1], 'state', 'attempts')
if rec[1] ~= 'queued' then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'ticket_id', ARGV[4], 'comment_id', ARGV[5],
  'reason', ARGV[6], 'last_error', ARGV[7], 'done_at', ARGV[8], 'attempts', (tonumber(rec[2]) or 0) + 1)
redis.call('HDEL', KEYS[1], 'write')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
local pos = tonumber(ARGV[3])
local ord = redis.call('HMGET', KEYS[3], 'next', 'gap_since')
local nxt = tonumber(ord[1] or '1')
if pos + 1 > nxt then redis.call('HSET', KEYS[3], 'next', pos + 1) end
if ord[2] then redis.call('HDEL', KEYS[3], 'gap_since') end
if ARGV[2] == 'delivered' then
  redis.call('EXPIRE', KEYS[1], ARGV[9])
else
  redis.call('PERSIST', KEYS[1])
  redis.call('ZADD', KEYS[4], ARGV[8], ARGV[1])
end
redis.call('EXPIRE', KEYS[2], ARGV[9])
redis.call('EXPIRE', KEYS[3], ARGV[9])
for i = 6, #KEYS do redis.call('EXPIRE', KEYS[i], ARGV[9]) end
return 1
`)

// replayScript puts a failed message back into its conversation (and the
// account's queued set).
// KEYS: record, pending, failed set, queued set. ARGV: id, expected gen,
// reason filter.
var replayScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'state') ~= 'failed' then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'gen') or '0') ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] ~= '' and redis.call('HGET', KEYS[1], 'reason') ~= ARGV[3] then return 0 end
local pos = tonumber(redis.call('HGET', KEYS[1], 'pos') or '0')
redis.call('HSET', KEYS[1], 'state', 'queued', 'gen', ARGV[2] + 1, 'attempts', 0, 'reason', '')
redis.call('ZADD', KEYS[2], pos, ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], tonumber(redis.call('HGET', KEYS[1], 'accepted_at') or '0') or 0, ARGV[1])
return 1
`)

type finish struct {
	state     string
	ticketID  int64
	commentID int64
	reason    string
	lastError string
}

func (s *store) finish(ctx context.Context, r *record, f finish, now time.Time, retention time.Duration) error {
	ks := []string{s.space.Message(r.ID), s.space.ConversationPending(r.Conv), s.space.ConversationOrder(r.Conv), s.space.Failed(queues.Outbound),
		s.space.OutboundQueued(), s.space.ConversationTicket(r.Conv)}
	if f.ticketID != 0 {
		ks = append(ks, s.space.TicketConversation(f.ticketID), s.space.TicketRequester(f.ticketID))
	}
	return finishScript.Run(ctx, s.rdb, ks,
		r.ID, f.state, r.Pos, f.ticketID, f.commentID, f.reason, f.lastError, now.UnixMilli(), int64(retention/time.Second)).Err()
}

// attemptFailed records a failed attempt that will be retried.
func (s *store) attemptFailed(ctx context.Context, id string, lastErr string) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HIncrBy(ctx, s.space.Message(id), "attempts", 1)
		p.HSet(ctx, s.space.Message(id), "last_error", lastErr)
		return nil
	})
	return err
}

func (s *store) markWrite(ctx context.Context, id, what string) error {
	return s.rdb.HSet(ctx, s.space.Message(id), "write", what).Err()
}

func (s *store) clearWrite(ctx context.Context, id string) error {
	return s.rdb.HDel(ctx, s.space.Message(id), "write").Err()
}

// discardScript drops a failed message for good: its record and its entry
// in the failed set, unless it changed meanwhile (a replay).
// KEYS: record, failed set. ARGV: id, expected gen.
var discardScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'state') ~= 'failed' then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'gen') or '0') ~= tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`)

func (s *store) discard(ctx context.Context, r *record) (bool, error) {
	n, err := discardScript.Run(ctx, s.rdb, []string{s.space.Message(r.ID), s.space.Failed(queues.Outbound)}, r.ID, r.Gen).Int()
	return n == 1, err
}
