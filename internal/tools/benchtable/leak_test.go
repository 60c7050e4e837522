package main

import (
	"testing"

	"github.com/deskrelay/deskrelay/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }
