// Package testutil is deskrelay's one test-helper package: WaitFor (poll a
// condition with a deadline instead of sleeping), SyncBuffer (a log buffer a
// daemon writes while a test reads) and VerifyTestMain (goleak in every
// package's TestMain).
//
// It is test support only; nothing outside _test.go files may import it
// (the production binary must not link package testing). It must not import
// any other deskrelay package.
package testutil
