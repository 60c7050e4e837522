// Command benchtable reads `go test -bench` output on stdin, copies it to
// stdout as it comes, collects the custom metrics benchmarks report with
// b.ReportMetric, and ends with one markdown table: each figure of the goals
// table (goals.go), what was measured, its goal, and ok, short or missing.
// The README's "Benchmarks" section copies that table with the machine line
// printed above it.
//
//	go test -run '^$' -bench . -benchtime 1x ./... | go run ./internal/tools/benchtable
//
// Flags: -strict exits 1 when a figure is missing; -goals prints the goals
// table and exits. A benchmark that failed (a FAIL or panic line in the
// input) makes it exit 1 after the table. A figure short of its goal does
// not: the table is a report.
//
// It is a development tool run by `make bench`; deskrelay does not link it.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, in io.Reader, out, errOut io.Writer) int {
	fs := flag.NewFlagSet("benchtable", flag.ContinueOnError)
	fs.SetOutput(errOut)
	strict := fs.Bool("strict", false, "exit 1 when a figure of the goals table is missing")
	list := fs.Bool("goals", false, "print the goals table and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *list {
		printGoals(out, goals)
		return 0
	}
	res, err := collect(in, out)
	if err != nil {
		fmt.Fprintf(errOut, "benchtable: reading the benchmark output: %v\n", err)
		return 1
	}
	rows := judge(goals, res)
	fmt.Fprintln(out)
	printTable(out, machine(res), rows)
	code := 0
	if res.failed != "" {
		fmt.Fprintf(out, "\nA benchmark failed: %s\n", res.failed)
		code = 1
	}
	if missing := countResult(rows, resultMissing); *strict && missing > 0 {
		fmt.Fprintf(out, "\n%d figure(s) missing (-strict)\n", missing)
		code = 1
	}
	return code
}

// machine is the line printed above the table: CPU model, cores, Go.
func machine(res *results) string {
	cpu := res.cpu
	if cpu == "" {
		cpu = cpuModel("/proc/cpuinfo")
	}
	if cpu == "" {
		cpu = "unknown CPU"
	}
	return fmt.Sprintf("%s, %d cores, %s %s/%s, %s", cpu, runtime.NumCPU(), runtime.Version(),
		runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format("2006-01-02"))
}

// cpuModel reads the first "model name" of a /proc/cpuinfo-like file.
func cpuModel(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
