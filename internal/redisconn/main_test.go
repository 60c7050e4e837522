package redisconn_test

import (
	"testing"

	"github.com/deskrelay/deskrelay/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m, testutil.GoRedisPool()...) }
