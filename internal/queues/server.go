package queues

import (
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/logging"
)

// The asynq queues deskrelay uses.
const (
	Outbound  = "outbound"  // messages to Zendesk
	Inbound   = "inbound"   // Zendesk events to the sink
	Reconcile = "reconcile" // reconciler runs
)

// ServerConfig configures the asynq server that runs every deskrelay queue.
type ServerConfig struct {
	// Concurrency is the number of workers. Default 20.
	Concurrency int
	// Policy is the retry policy (its MaxDelay must equal Config.RetryMaxDelay).
	Policy Policy
	// ShutdownTimeout is how long Shutdown waits for in-flight tasks
	//. Default 30s.
	ShutdownTimeout time.Duration
	// PollInterval is how often asynq looks for due scheduled/retry tasks
	// and idle queues. Default 1s, so that a backlog made due at once starts
	// within seconds.
	PollInterval time.Duration
}

// NewServer returns the asynq server for all three queues, with deskrelay's
// retry policy and logging. Handlers are registered by each package on the
// ServeMux passed to Run/Start.
func NewServer(redis asynq.RedisConnOpt, cfg ServerConfig, log zerolog.Logger) *asynq.Server {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 20
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	return asynq.NewServer(redis, asynq.Config{
		Concurrency: cfg.Concurrency,
		Queues: map[string]int{
			Outbound:  6,
			Inbound:   3,
			Reconcile: 1,
		},
		RetryDelayFunc:           cfg.Policy.RetryDelay,
		IsFailure:                IsFailure,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		TaskCheckInterval:        cfg.PollInterval,
		DelayedTaskCheckInterval: cfg.PollInterval,
		Logger:                   logging.NewAsynq(log),
		LogLevel:                 asynq.WarnLevel,
	})
}
