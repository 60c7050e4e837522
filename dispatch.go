package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
)

// unknownAccountWait is how long a task of an account this process does not
// know waits before it is tried again: the account was removed from the
// accounts file (its tasks stay queued until it comes back), or another
// replica has reloaded a file this one has not read yet.
const unknownAccountWait = time.Minute

// dispatcher is the asynq handler of every task: it reads the task's account
// from its payload ("account", absent for the account default, as in every
// task of the previous release) and runs the task on that account's mux.
// The accounts can change while tasks run (SIGHUP): set replaces them.
type dispatcher struct {
	muxes atomic.Pointer[map[string]*asynq.ServeMux]
}

// set makes muxes (account name → that account's handlers) current.
func (d *dispatcher) set(muxes map[string]*asynq.ServeMux) {
	d.muxes.Store(&muxes)
}

// ProcessTask runs t on its account's handlers.
func (d *dispatcher) ProcessTask(ctx context.Context, t *asynq.Task) error {
	name := taskAccount(t.Payload())
	var mux *asynq.ServeMux
	if m := d.muxes.Load(); m != nil {
		mux = (*m)[name]
	}
	if mux == nil {
		return queues.Wait(unknownAccountWait, fmt.Errorf("task %s of account %q, which this process does not serve (not in the accounts file, or not reloaded yet): it waits", t.Type(), name))
	}
	return mux.ProcessTask(ctx, t)
}

// taskAccount is the account named by a task's payload: keys.DefaultAccount
// when the payload names none or is not a JSON object.
func taskAccount(payload []byte) string {
	var p struct {
		Account string `json:"account"`
	}
	if len(payload) == 0 || payload[0] != '{' || json.Unmarshal(payload, &p) != nil || p.Account == "" {
		return keys.DefaultAccount
	}
	return p.Account
}
