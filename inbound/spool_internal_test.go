package inbound

import (
	"errors"
	"fmt"
	"path/filepath"
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
	_ = s.seg.Close()

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
	_ = s.seg.Close()
}

func TestSpoolGroupCommitConcurrent(t *testing.T) {
	s, err := openSpool(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.seg.Close()
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
