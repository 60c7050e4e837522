package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/queues"
)

func TestTaskAccount(t *testing.T) {
	for payload, want := range map[string]string{
		``:                             "default",
		`{"id":"m1"}`:                  "default", // the previous release's payloads
		`{"id":"m1","account":""}`:     "default",
		`{"id":"m1","account":"acme"}`: "acme",
		`not json`:                     "default",
		`{"account":`:                  "default",
	} {
		if got := taskAccount([]byte(payload)); got != want {
			t.Errorf("taskAccount(%q) = %q, want %q", payload, got, want)
		}
	}
}

func TestDispatcherRoutesByAccountAndWaitsForAnUnknownOne(t *testing.T) {
	var ran []string
	muxFor := func(name string) *asynq.ServeMux {
		m := asynq.NewServeMux()
		m.HandleFunc("t", func(context.Context, *asynq.Task) error { ran = append(ran, name); return nil })
		return m
	}
	var d dispatcher
	if err := d.ProcessTask(context.Background(), asynq.NewTask("t", nil)); !queues.IsWait(err) {
		t.Fatalf("before any account is set: %v, want a wait", err)
	}
	d.set(map[string]*asynq.ServeMux{"default": muxFor("default"), "acme": muxFor("acme")})
	for _, p := range []string{`{"id":"1"}`, `{"id":"2","account":"acme"}`} {
		if err := d.ProcessTask(context.Background(), asynq.NewTask("t", []byte(p))); err != nil {
			t.Fatal(err)
		}
	}
	if len(ran) != 2 || ran[0] != "default" || ran[1] != "acme" {
		t.Fatalf("ran %v, want [default acme]", ran)
	}
	err := d.ProcessTask(context.Background(), asynq.NewTask("t", []byte(`{"account":"gone"}`)))
	if !queues.IsWait(err) || queues.IsFailure(err) {
		t.Fatalf("a removed account's task: %v, want a wait that is not a failure", err)
	}
	if errors.Unwrap(err) == nil || !strings.Contains(err.Error(), `"gone"`) {
		t.Fatalf("the wait does not name the account: %v", err)
	}
}
