package testutil_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

func TestWaitFor(t *testing.T) {
	var n atomic.Int64
	go func() {
		for range 3 {
			n.Add(1)
		}
	}()
	testutil.WaitFor(t, 5*time.Second, func() bool { return n.Load() == 3 }, "three increments")
	if got := n.Load(); got != 3 {
		t.Fatalf("n = %d, want 3", got)
	}
}

func TestSyncBuffer(t *testing.T) {
	var b testutil.SyncBuffer
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() { fmt.Fprintf(&b, "%d", i) })
	}
	wg.Wait()
	if got := len(b.String()); got != 4 {
		t.Fatalf("buffer holds %d bytes (%q), want 4", got, b.String())
	}
}
