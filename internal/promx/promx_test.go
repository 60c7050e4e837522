package promx

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRegisterSharesTheFirstCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "deskrelay_test_total", Help: "test"}
	first, err := Register(reg, prometheus.NewCounter(opts))
	if err != nil {
		t.Fatal(err)
	}
	second, err := Register(reg, prometheus.NewCounter(opts))
	if err != nil {
		t.Fatalf("second registration: %v", err)
	}
	second.Inc()
	if got := testutil.ToFloat64(first); got != 1 {
		t.Fatalf("the second component's counter is not the registered one: first = %v", got)
	}
}

func TestRegisterReportsConflicts(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "deskrelay_x", Help: "a"})); err != nil {
		t.Fatal(err)
	}
	// Same name, other type: not the same collector.
	if _, err := Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "deskrelay_x", Help: "b"})); err == nil {
		t.Fatal("a conflicting registration did not fail")
	}
}
