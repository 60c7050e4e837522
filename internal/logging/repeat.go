package logging

import (
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

const (
	// summaryEvery is how often a failure that keeps repeating is logged
	// again, as a count.
	summaryEvery = time.Minute
	// quietAfter is how long a failure must not repeat to count as ended.
	quietAfter = 30 * time.Second
	// maxTracked bounds the failures followed at once; beyond it a new
	// failure is logged every time, as before.
	maxTracked = 100
)

// repeats collapses a warning or error that a library logs over and over
// (asynq and go-redis log every attempt while Redis is down): the first is
// logged, then a summary "repeated N times in the last 1m0s: ..." every
// minute, then one line when it stopped (no repeat for 30 s; a message that
// never repeated gets no such line). Messages are
// grouped by shape (normalize). The bookkeeping is done on each call, so
// there is no goroutine: a summary or an end is logged at the adapter's
// next call after it is due. Safe for concurrent use.
type repeats struct {
	now func() time.Time // the clock; time.Now outside tests

	mu   sync.Mutex
	open map[string]*repeat // by normalize(message)
}

// repeat is one failure being followed.
type repeat struct {
	msg   string // the latest message of this shape
	level zerolog.Level
	first time.Time // when it was first logged
	last  time.Time // latest occurrence
	since time.Time // start of the current summary window
	n     int       // repeats not yet reported
	total int       // repeats since first
}

// log writes msg at level through l; a warning or error of a shape logged
// recently is counted instead.
func (r *repeats) log(l zerolog.Logger, level zerolog.Level, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.sweep(l, now)
	if level < zerolog.WarnLevel {
		l.WithLevel(level).Msg(msg)
		return
	}
	key := normalize(msg)
	if p, ok := r.open[key]; ok {
		p.msg, p.last = msg, now
		p.n++
		p.total++
		return
	}
	l.WithLevel(level).Msg(msg)
	if r.open == nil {
		r.open = map[string]*repeat{}
	}
	if len(r.open) < maxTracked {
		r.open[key] = &repeat{msg: msg, level: level, first: now, last: now, since: now}
	}
}

// sweep logs the summaries and ends that are due at now. r.mu is held.
func (r *repeats) sweep(l zerolog.Logger, now time.Time) {
	for key, p := range r.open {
		switch {
		case now.Sub(p.last) >= quietAfter && p.total == 0:
			delete(r.open, key) // logged once, never repeated: nothing ended
		case now.Sub(p.last) >= quietAfter:
			l.Info().Int("repeats", p.n).Int64("lasted_ms", p.last.Sub(p.first).Milliseconds()).
				Msg(fmt.Sprintf("repeated failure stopped (no repeat for %s): %s", quietAfter, p.msg))
			delete(r.open, key)
		case now.Sub(p.since) >= summaryEvery:
			if p.n > 0 {
				l.WithLevel(p.level).Int("repeats", p.n).
					Msg(fmt.Sprintf("repeated %d times in the last %s: %s", p.n, now.Sub(p.since).Round(time.Second), p.msg))
			}
			p.n, p.since = 0, now
		}
	}
}

// variable matches the parts of a message that change from one attempt to
// the next: UUIDs (task ids), durations ("1.5s", "1m30s") and runs of
// digits (addresses, ports, counts).
var variable = regexp.MustCompile(`[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}|(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+\b|\d+`)

// normalize returns the shape of a message: "dial tcp 127.0.0.1:6379:
// connect: connection refused" and the same to another port are one.
func normalize(msg string) string {
	return variable.ReplaceAllString(msg, "#")
}
