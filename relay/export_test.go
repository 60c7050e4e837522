package relay

import "context"

// SetParkingHook makes f run whenever a task of r is about to park at the
// closed outage gate. Set it before the workers start.
func (r *Relay) SetParkingHook(f func(context.Context)) { r.testHookParking = f }

// GateSuccess records a successful Zendesk call, as any delivery or probe does.
func (r *Relay) GateSuccess(ctx context.Context) { r.gateSuccess(ctx) }

// ProbeOnce runs one outage gate probe, as the probe task does.
func (r *Relay) ProbeOnce(ctx context.Context) error {
	_, err := r.probeOnce(ctx)
	return err
}

// Defaults is c with its defaults, as New takes it.
func (c Config) Defaults() Config { return c.withDefaults() }

// EnsureProbe schedules the outage gate's probe, as a parking task does.
func (r *Relay) EnsureProbe(ctx context.Context) { r.ensureProbe(ctx) }
