package inbound_test

import (
	"testing"

	"github.com/deskrelay/deskrelay/internal/testutil"
)

// go-redis ends a closed client's pool goroutines lazily (testutil.GoRedisPool).
func TestMain(m *testing.M) { testutil.VerifyTestMain(m, testutil.GoRedisPool()...) }
