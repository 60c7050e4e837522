package inbound

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// spool keeps verified webhook requests on local disk while Redis is
// unreachable: one file per request, written to a temporary name, fsynced,
// renamed to "<unix nanos>-<seq>.req" and the directory fsynced, so a file
// with the final name is always complete. Names sort in arrival order. The
// mover enqueues each file in name order and removes it after Redis
// accepted it; a crash between the two enqueues it again after the restart,
// which the task id ("spool:<name>") and the event ledger turn into a
// duplicate that is dropped.
type spool struct {
	dir      string
	maxBytes int64

	mu    sync.Mutex // serialises names and the size count
	seq   uint64
	last  int64
	bytes int64
	files atomic.Int64
	wake  chan struct{}
}

const spoolExt = ".req"

var errSpoolFull = errors.New("spool is full")

func openSpool(dir string, maxBytes int64) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("DESKRELAY_SPOOL_DIR: %w", err)
	}
	s := &spool{dir: dir, maxBytes: maxBytes, wake: make(chan struct{}, 1)}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("DESKRELAY_SPOOL_DIR: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".tmp"):
			_ = os.Remove(filepath.Join(dir, name)) // never acknowledged
		case strings.HasSuffix(name, spoolExt):
			if info, err := e.Info(); err == nil {
				s.bytes += info.Size()
			}
			s.files.Add(1)
		}
	}
	// prove the directory is writable now rather than on the first outage
	probe := filepath.Join(dir, ".probe.tmp")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		return nil, fmt.Errorf("DESKRELAY_SPOOL_DIR: not writable: %w", err)
	}
	_ = os.Remove(probe)
	return s, nil
}

// Pending is the number of spooled requests.
func (s *spool) Pending() int64 { return s.files.Load() }

// Append stores one request durably.
func (s *spool) Append(payload []byte, now time.Time) error {
	s.mu.Lock()
	if s.bytes+int64(len(payload)) > s.maxBytes {
		s.mu.Unlock()
		return errSpoolFull
	}
	ts := now.UnixNano()
	if ts <= s.last {
		ts = s.last + 1
	}
	s.last = ts
	s.seq++
	name := fmt.Sprintf("%020d-%08d%s", ts, s.seq%100000000, spoolExt)
	s.bytes += int64(len(payload))
	s.mu.Unlock()

	if err := s.write(name, payload); err != nil {
		s.mu.Lock()
		s.bytes -= int64(len(payload))
		s.mu.Unlock()
		return err
	}
	s.files.Add(1)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

func (s *spool) write(name string, payload []byte) error {
	tmp := filepath.Join(s.dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	_, werr := f.Write(payload)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("spool: write: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("spool: %w", err)
	}
	return syncDir(s.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("spool: sync dir: %w", err)
	}
	return nil
}

// Drain hands each spooled request, oldest first, to move, and removes it
// once move returned nil. It stops at the first error.
func (s *spool) Drain(move func(name string, payload []byte) error) (int, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), spoolExt) && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	n := 0
	for _, name := range names {
		path := filepath.Join(s.dir, name)
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("spool: %w", err)
		}
		if err := move(name, b); err != nil {
			return n, err
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, fmt.Errorf("spool: %w", err)
		}
		s.mu.Lock()
		s.bytes -= int64(len(b))
		s.mu.Unlock()
		s.files.Add(-1)
		n++
	}
	if n > 0 {
		_ = syncDir(s.dir)
	}
	return n, nil
}
