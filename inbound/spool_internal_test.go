package inbound

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSpoolSegments(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	s.target = 100 // a new segment every two records or so
	var want []string
	for i := range 20 {
		p := fmt.Appendf(nil, `{"n":%d,"pad":"0123456789012345678901234567890123456789"}`, i)
		want = append(want, string(p))
		if err := s.Append(p, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) < 5 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	var got []string
	fail := errors.New("redis down")
	n, err := s.Drain(func(_ string, p []byte) error {
		if len(got) == 7 {
			return fail
		}
		got = append(got, string(p))
		return nil
	})
	if !errors.Is(err, fail) || n != 7 || s.Pending() != 13 {
		t.Fatalf("first drain: %d moved, %v, %d pending", n, err, s.Pending())
	}
	s.close()

	// restart: the cursor and the segments say where to go on
	s, err = openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if s.Pending() != 13 {
		t.Fatalf("after restart %d pending, want 13", s.Pending())
	}
	if _, err := s.Drain(func(_ string, p []byte) error { got = append(got, string(p)); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("moved\n%v\nwant\n%v", got, want)
	}
	if s.Pending() != 0 || s.bytes != 0 {
		t.Fatalf("pending %d, bytes %d after the drain", s.Pending(), s.bytes)
	}
	segs, _ = filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("%d segments left, want 1", len(segs))
	}
	s.close()
}

func TestSpoolGroupCommitConcurrent(t *testing.T) {
	s, err := openSpool(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	s.target = 500
	errs := make(chan error, 50)
	for i := range 50 {
		go func() { errs <- s.Append(fmt.Appendf(nil, `{"n":%d}`, i), time.Now()) }()
	}
	for range 50 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	if _, err := s.Drain(func(name string, p []byte) error { seen[string(p)] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 50 {
		t.Fatalf("%d distinct records moved, want 50", len(seen))
	}
}

// failAfter is a segment writer that writes at most n bytes, then fails
// (a full disk or RLIMIT_FSIZE mid-append).
func failAfter(n int) func(f *os.File, p []byte) (int, error) {
	return func(f *os.File, p []byte) (int, error) {
		if len(p) <= n {
			return f.Write(p)
		}
		w, _ := f.Write(p[:n])
		return w, syscall.ENOSPC
	}
}

// TestSpoolAppendFailsPartWay: an append that fails part-way leaves no torn
// record: the appends after it are moved, also after a restart.
func TestSpoolAppendFailsPartWay(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append([]byte(`{"n":1}`), time.Now()); err != nil {
		t.Fatal(err)
	}
	s.write = failAfter(5)
	if err := s.Append([]byte(`{"n":2,"pad":"xxxxxxxxxxxxxxxxxxxxxxxx"}`), time.Now()); err == nil {
		t.Fatal("append on a full disk succeeded")
	}
	s.write = nil
	if err := s.Append([]byte(`{"n":3}`), time.Now()); err != nil {
		t.Fatal(err)
	}
	if s.Pending() != 2 {
		t.Fatalf("%d pending, want 2 (the failed append is not one)", s.Pending())
	}
	s.close()

	// a restart reads both acknowledged records
	s, err = openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if s.Pending() != 2 {
		t.Fatalf("after restart %d pending, want 2", s.Pending())
	}
	var got []string
	if _, err := s.Drain(func(_ string, p []byte) error { got = append(got, string(p)); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != `[{"n":1} {"n":3}]` {
		t.Fatalf("moved %v, want records 1 and 3", got)
	}
}

// TestSpoolLocked: two spools never share one directory.
func TestSpoolLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	_, err = openSpool(dir, 1<<20)
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "another") {
		t.Fatalf("second open: %v, want an error naming %s in use by another process", err, dir)
	}
	s.close()
	s, err = openSpool(dir, 1<<20)
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	s.close()
}

// TestSpoolSkipsDamage: a record damaged on disk is skipped, by the mover
// and at start, and the records after it are moved.
func TestSpoolSkipsDamage(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart=%v", restart), func(t *testing.T) {
			dir := t.TempDir()
			s, err := openSpool(dir, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			var skipped int64
			for i := range 3 {
				if err := s.Append(fmt.Appendf(nil, `{"n":%d}`, i), time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			f, err := os.OpenFile(filepath.Join(dir, segName(s.segSeq)), os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = f.WriteAt([]byte{'X'}, int64(recordHeader+len(`{"n":0}`)+recordHeader+2)) // inside record 1
			f.Close()
			if restart {
				s.close()
				if s, err = openSpool(dir, 1<<20); err != nil {
					t.Fatal(err)
				}
			}
			defer s.close()
			s.onSkip = func(_ uint64, _, n int64) { skipped += n }
			var got []string
			if _, err := s.Drain(func(_ string, p []byte) error { got = append(got, string(p)); return nil }); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != `[{"n":0} {"n":2}]` || s.Pending() != 0 {
				t.Fatalf("moved %v, %d pending; want records 0 and 2, none pending", got, s.Pending())
			}
			if !restart && skipped != recordHeader+int64(len(`{"n":1}`)) {
				t.Fatalf("skipped %d bytes, want the damaged record's", skipped)
			}
		})
	}
}

// TestSpoolDrainWhileAppending: a record being appended while the mover
// reads it is read again, never skipped as damage.
func TestSpoolDrainWhileAppending(t *testing.T) {
	s, err := openSpool(t.TempDir(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	s.onSkip = func(seq uint64, off, n int64) { t.Errorf("skipped %d bytes at %d:%d", n, seq, off) }
	pad := strings.Repeat("x", 8<<10) // big records: more chance to read one half-written
	const total = 300
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range total {
			if err := s.Append(fmt.Appendf(nil, `{"n":%d,"pad":%q}`, i, pad), time.Now()); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	seen := map[string]bool{}
	move := func(_ string, p []byte) error { seen[string(p[:12])] = true; return nil }
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		if _, err := s.Drain(move); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != total || s.Pending() != 0 {
		t.Fatalf("moved %d distinct records, %d pending; want %d and 0", len(seen), s.Pending(), total)
	}
}
