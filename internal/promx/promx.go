// Package promx holds deskrelay's one Prometheus helper: registering a
// collector so that a second component on the same registry (a Receiver
// recreated in one process, two Reconcilers in a test) shares the first one's
// collector instead of failing or exporting nothing.
//
// It must not import any other deskrelay package.
package promx

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg and returns it; when a collector with the same
// description is already registered, it returns that one instead. Any other
// registration error is returned with c.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}
