package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// goal is one figure of the table (goals.go).
type goal struct {
	Unit   string  // the unit the benchmark reports it in
	Bench  string  // only this benchmark's metric (name without -N); "": any
	Figure string  // what it is, for the table
	Op     string  // "<=", ">=", or "": reported, no goal
	Goal   float64 // the goal, in Unit
	Show   string  // the unit as the table shows it after the number
}

// The result column.
const (
	resultOK       = "ok"
	resultShort    = "short"
	resultMissing  = "missing"
	resultReported = "reported"
)

// row is one line of the table.
type row struct {
	Goal     goal
	Values   []float64
	Measured string
	Result   string
}

// judge matches each goal with the metrics reported for it. With several
// values (-count, -benchtime Nx in one line each), the table shows their
// range and judges the worst of them.
func judge(gs []goal, res *results) []row {
	rows := make([]row, 0, len(gs))
	for _, g := range gs {
		r := row{Goal: g}
		for _, m := range res.metrics {
			if m.Unit == g.Unit && (g.Bench == "" || m.Bench == g.Bench) {
				r.Values = append(r.Values, m.Value)
			}
		}
		r.Measured, r.Result = verdict(g, r.Values)
		rows = append(rows, r)
	}
	return rows
}

func verdict(g goal, vs []float64) (measured, result string) {
	if len(vs) == 0 {
		return "—", resultMissing
	}
	lo, hi := vs[0], vs[0]
	for _, v := range vs[1:] {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	measured = number(lo)
	if hi != lo {
		measured += "–" + number(hi)
	}
	if g.Show != "" {
		measured += " " + g.Show
	}
	switch {
	case g.Op == "<=" && hi <= g.Goal, g.Op == ">=" && lo >= g.Goal:
		return measured, resultOK
	case g.Op == "<=" || g.Op == ">=":
		return measured, resultShort
	}
	return measured, resultReported
}

// goalText is the goal column: "≤ 2 s", or "—" for a reported figure.
func goalText(g goal) string {
	op := map[string]string{"<=": "≤ ", ">=": "≥ "}[g.Op]
	if op == "" {
		return "—"
	}
	s := op + goalNumber(g.Goal)
	if g.Show != "" {
		s += " " + g.Show
	}
	return s
}

// goalNumber prints a goal as declared: 0.6, 1.05, 1,622.
func goalNumber(v float64) string {
	if math.Abs(v) >= 1000 && v == math.Trunc(v) {
		return thousands(int64(v))
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// number prints v with about three significant digits and thousands
// separators: 0.652, 12.3, 3,131.
func number(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1000:
		return thousands(int64(math.Round(v)))
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1 || a == 0:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 2-int(math.Floor(math.Log10(a))), 64)
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func printTable(w io.Writer, machine string, rows []row) {
	fmt.Fprintf(w, "Benchmarks on %s\n\n", machine)
	fmt.Fprintln(w, "| figure | measured | goal | result |")
	fmt.Fprintln(w, "| --- | --- | --- | --- |")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", r.Goal.Figure, r.Measured, goalText(r.Goal), r.Result)
	}
}

func printGoals(w io.Writer, gs []goal) {
	fmt.Fprintln(w, "| unit | benchmark | figure | goal |")
	fmt.Fprintln(w, "| --- | --- | --- | --- |")
	for _, g := range gs {
		fmt.Fprintf(w, "| `%s` | %s | %s | %s |\n", g.Unit, orDash(g.Bench), g.Figure, goalText(g))
	}
}

func orDash(s string) string {
	if s == "" {
		return "any"
	}
	return s
}

func countResult(rows []row, result string) int {
	n := 0
	for _, r := range rows {
		if r.Result == result {
			n++
		}
	}
	return n
}
