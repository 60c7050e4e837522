package events

import (
	"context"
	"sync"
	"time"

	"github.com/deskrelay/deskrelay/zendesk"
)

// AuthorCache remembers comment authors (AuthorOf: agents and admins are
// RoleAgent), so that the webhook worker and the reconciler look a user up
// once rather than for every comment: the authors are mostly the same few
// agents. A user Zendesk no longer has (deleted) is an end user, remembered
// too. It looks a user up once at a time (tickets are read in parallel),
// and forgets everything when it holds its limit. Safe for concurrent use.
type AuthorCache struct {
	ttl   time.Duration
	limit int
	now   func() time.Time

	mu      sync.Mutex
	byID    map[int64]cachedAuthor
	pending map[int64]*sync.Mutex
}

type cachedAuthor struct {
	a  Author
	at time.Time
}

// NewAuthorCache returns a cache that keeps an author for ttl (0: until
// the cache is full) and at most limit authors; now is the clock (nil:
// time.Now).
func NewAuthorCache(ttl time.Duration, limit int, now func() time.Time) *AuthorCache {
	if now == nil {
		now = time.Now
	}
	return &AuthorCache{ttl: ttl, limit: max(limit, 1), now: now,
		byID: map[int64]cachedAuthor{}, pending: map[int64]*sync.Mutex{}}
}

// Author returns user id's author from the cache, or reads the user with
// get (the caller's Zendesk client, within its budget) and remembers it. An
// error of get other than zendesk.KindNotFound is returned as it is and
// nothing is remembered.
func (c *AuthorCache) Author(ctx context.Context, id int64, get func(context.Context, int64) (*zendesk.User, error)) (Author, error) {
	if a, ok := c.get(id); ok {
		return a, nil
	}
	unlock := c.lock(id)
	defer unlock()
	if a, ok := c.get(id); ok {
		return a, nil
	}
	a := Author{ID: id, Role: RoleEndUser} // a deleted user is not staff any more
	u, err := get(ctx, id)
	switch {
	case err == nil:
		a = AuthorOf(u)
		a.ID = id
	case zendesk.KindOf(err) != zendesk.KindNotFound:
		return Author{}, err
	}
	c.put(id, a)
	return a, nil
}

// lock serialises the lookups of one user.
func (c *AuthorCache) lock(id int64) (unlock func()) {
	c.mu.Lock()
	l, ok := c.pending[id]
	if !ok {
		l = &sync.Mutex{}
		c.pending[id] = l
	}
	c.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		c.mu.Lock()
		if c.pending[id] == l {
			delete(c.pending, id)
		}
		c.mu.Unlock()
	}
}

func (c *AuthorCache) get(id int64) (Author, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byID[id]
	if !ok || (c.ttl > 0 && c.now().Sub(e.at) > c.ttl) {
		return Author{}, false
	}
	return e.a, true
}

func (c *AuthorCache) put(id int64, a Author) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byID) >= c.limit {
		clear(c.byID)
	}
	c.byID[id] = cachedAuthor{a: a, at: c.now()}
}
