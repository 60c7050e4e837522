package reconcile

import (
	"context"
	"fmt"
	"sync"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/zendesk"
)

// userInfo is what the reconciler needs of a comment's author.
type userInfo struct {
	name, role string
}

// userCache remembers authors across runs (agents are few).
type userCache struct {
	mu      sync.Mutex
	m       map[int64]userInfo
	pending map[int64]*sync.Mutex
}

const maxCachedUsers = 10000

func newUserCache() *userCache {
	return &userCache{m: map[int64]userInfo{}, pending: map[int64]*sync.Mutex{}}
}

// lock serialises the lookups of one user.
func (c *userCache) lock(id int64) (unlock func()) {
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

func (c *userCache) get(id int64) (userInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.m[id]
	return u, ok
}

func (c *userCache) put(id int64, u userInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedUsers {
		clear(c.m)
	}
	c.m[id] = u
}

func (r *Reconciler) user(ctx context.Context, ru *runState, id int64) (userInfo, error) {
	if u, ok := r.users.get(id); ok {
		return u, nil
	}
	// one lookup per user at a time: tickets of a page run in parallel
	unlock := r.users.lock(id)
	defer unlock()
	if u, ok := r.users.get(id); ok {
		return u, nil
	}
	zu, err := call(ctx, r, ru.b, false, func(ctx context.Context) (*zendesk.User, error) {
		return r.zd.GetUser(ctx, id)
	})
	if zendesk.KindOf(err) == zendesk.KindNotFound {
		u := userInfo{role: events.RoleEndUser} // deleted user: not staff any more
		r.users.put(id, u)
		return u, nil
	}
	if err != nil {
		return userInfo{}, fmt.Errorf("look up author %d: %w", id, err)
	}
	u := userInfo{name: zu.Name, role: events.RoleEndUser}
	if zu.Role == "agent" || zu.Role == "admin" {
		u.role = events.RoleAgent
	}
	r.users.put(id, u)
	return u, nil
}
