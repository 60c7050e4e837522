package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryDoesNotLinkTestCode lists the packages the deskrelay binary
// links and fails on test-only code: package testing (its flags and its
// init would ship in production), internal/redistest and internal/testutil.
// miniredis is linked on purpose, for `deskrelay demo` only.
func TestBinaryDoesNotLinkTestCode(t *testing.T) {
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH: cannot list the binary's packages")
	}
	// One line per linked package: its path, then the packages it imports.
	out, err := exec.Command(gotool, "list", "-deps", "-f", `{{.ImportPath}} {{join .Imports " "}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list -deps .: %v", err)
	}
	importers := map[string][]string{} // linked package → the linked packages that import it
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if _, ok := importers[f[0]]; !ok {
			importers[f[0]] = nil
		}
		for _, imp := range f[1:] {
			importers[imp] = append(importers[imp], f[0])
		}
	}
	if _, ok := importers["github.com/deskrelay/deskrelay"]; !ok {
		t.Fatalf("go list -deps . did not list the main package itself; output:\n%s", out)
	}
	for _, banned := range []string{
		"testing",
		"github.com/deskrelay/deskrelay/internal/redistest",
		"github.com/deskrelay/deskrelay/internal/testutil",
	} {
		if by, linked := importers[banned]; linked {
			t.Errorf("the deskrelay binary links %s, imported by %s", banned, strings.Join(by, ", "))
		}
	}
}
