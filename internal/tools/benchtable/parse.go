package main

import (
	"bufio"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// results is what collect found in the benchmark output.
type results struct {
	metrics []metric
	cpu     string // go test's "cpu:" line
	failed  string // the first FAIL or panic line
}

// metric is one value a benchmark reported.
type metric struct {
	Bench string // the benchmark's name without its -GOMAXPROCS suffix
	Unit  string
	Value float64
}

var (
	procsSuffix = regexp.MustCompile(`-\d+$`)
	// A result: iterations, then value/unit pairs.
	resultLine = regexp.MustCompile(`^\s*\d+\s+\S+\s+\S`)
)

// collect copies in to out line by line and gathers the metrics. A
// benchmark's name and its result are usually on one line; when the
// benchmark wrote to stdout meanwhile, the result comes on a later line of
// its own and belongs to the last name seen.
func collect(in io.Reader, out io.Writer) (*results, error) {
	res := &results{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	pending := ""
	for sc.Scan() {
		line := sc.Text()
		if _, err := io.WriteString(out, line+"\n"); err != nil {
			return nil, err
		}
		switch {
		case strings.HasPrefix(line, "cpu: ") && res.cpu == "":
			res.cpu = strings.TrimSpace(strings.TrimPrefix(line, "cpu: "))
		case failure(line) && res.failed == "":
			res.failed = strings.TrimSpace(line)
		case strings.HasPrefix(line, "Benchmark"):
			name, rest, _ := strings.Cut(line, "\t")
			if len(strings.Fields(name)) != 1 {
				// "BenchmarkX-2 1 100 ns/op" separated by spaces only
				f := strings.Fields(line)
				name, rest = f[0], strings.Join(f[1:], " ")
			}
			pending = procsSuffix.ReplaceAllString(strings.TrimSpace(name), "")
			if resultLine.MatchString(rest) {
				res.metrics = append(res.metrics, pairs(pending, rest)...)
				pending = ""
			}
		case pending != "" && resultLine.MatchString(line):
			res.metrics = append(res.metrics, pairs(pending, line)...)
			pending = ""
		}
	}
	return res, sc.Err()
}

func failure(line string) bool {
	return strings.HasPrefix(line, "FAIL") || strings.HasPrefix(line, "--- FAIL") || strings.HasPrefix(line, "panic: ")
}

// pairs parses "N v1 unit1 v2 unit2 …" (N the iterations).
func pairs(bench, s string) []metric {
	f := strings.Fields(s)
	var out []metric
	for i := 1; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			break
		}
		out = append(out, metric{Bench: bench, Unit: f[i+1], Value: v})
	}
	return out
}
