package inbound

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// spool keeps verified webhook requests on local disk while Redis is
// unreachable, in append-only segment files ("<seq>.seg") of records
// [length uint32][crc32 uint32][payload]. An append returns only after the
// segment is fsynced; appends that arrive together share one fsync (group
// commit). The mover reads records in order from the cursor ("cursor":
// segment and offset, replaced atomically) and advances it after Redis took
// them; consumed segments are deleted. A crash between a move and the
// cursor update moves those records again after the restart: the task id
// ("spool:<hash of the record>") and the event ledger drop the duplicates. A torn
// record at the end of the last segment (a crash mid-append, never
// acknowledged) is cut off at start. An append that fails part-way (a full
// disk) is cut off at once, before the request is answered 503, so that a
// torn record never sits before acknowledged ones; if even the cut fails,
// the next append starts a new segment. A lock file ("lock", flock) keeps a
// second process out of the directory.
type spool struct {
	dir      string
	maxBytes int64
	target   int64 // rotate the active segment beyond this size

	lock *os.File // holds the flock on the directory

	mu      sync.Mutex // guards the fields below
	seg     *os.File   // active segment, append only
	torn    bool       // the active segment may end in a failed append not yet cut off
	segSeq  uint64
	segSize int64
	written int64 // bytes appended since start, all segments
	bytes   int64 // bytes not yet moved
	curSeq  uint64
	curOff  int64

	syncMu sync.Mutex // one fsync at a time; the others ride along
	synced int64      // written bytes known durable

	records atomic.Int64 // records not yet moved
	wake    chan struct{}

	// onSkip is told about bytes the mover skipped because they hold no
	// complete record (damaged on disk).
	onSkip func(seq uint64, off, n int64)
	// write appends to the active segment (tests inject a failing disk);
	// nil is (*os.File).Write.
	write func(f *os.File, p []byte) (int, error)
}

const (
	segExt        = ".seg"
	cursorFile    = "cursor"
	lockFile      = "lock"
	recordHeader  = 8
	maxRecord     = 16 << 20
	segmentTarget = 8 << 20
)

var (
	errSpoolFull = errors.New("spool is full")
	errNoSpool   = errors.New("no spool directory (a one-shot command)")
)

func segName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, segExt) }

func openSpool(dir string, maxBytes int64) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &spool{dir: dir, maxBytes: maxBytes, target: segmentTarget, wake: make(chan struct{}, 1), lock: lock}
	if err := s.open(); err != nil {
		_ = lock.Close()
		return nil, err
	}
	return s, nil
}

// lockDir takes an exclusive flock on the directory's lock file, so that two
// processes never append to one spool (the lock ends with the process).
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil { //nolint:gosec // a file descriptor fits an int
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is in use by another deskrelay process: give each process its own spool directory", dir)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return f, nil
}

// open reads the directory: cursor, segments, what is left to move.
func (s *spool) open() error {
	dir := s.dir
	seqs, err := s.segments()
	if err != nil {
		return err
	}
	s.curSeq, s.curOff = s.readCursor()
	if len(seqs) == 0 {
		seqs = []uint64{max(s.curSeq, 1)}
	}
	if s.curSeq < seqs[0] || !contains(seqs, s.curSeq) {
		// the cursor's segment was consumed and deleted: start at the next one
		next := seqs[len(seqs)-1]
		for _, q := range seqs {
			if q > s.curSeq {
				next = q
				break
			}
		}
		s.curSeq, s.curOff = next, 0
	}
	for _, q := range seqs {
		if q < s.curSeq {
			_ = os.Remove(filepath.Join(dir, segName(q))) // consumed
		}
	}
	// count what is left; cut a torn tail off the last segment
	for i, q := range seqs {
		if q < s.curSeq {
			continue
		}
		from := int64(0)
		if q == s.curSeq {
			from = s.curOff
		}
		n, b, end, err := scanSegment(filepath.Join(dir, segName(q)), from)
		if err != nil {
			return err
		}
		s.records.Add(n)
		s.bytes += b
		if i == len(seqs)-1 {
			if err := os.Truncate(filepath.Join(dir, segName(q)), end); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if q == s.curSeq && s.curOff > end {
				s.curOff = end
			}
		}
	}
	last := seqs[len(seqs)-1]
	f, err := os.OpenFile(filepath.Join(dir, segName(last)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("not writable: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	s.seg, s.segSeq, s.segSize = f, last, info.Size()
	if err := syncDir(dir); err != nil {
		f.Close()
		return err
	}
	return nil
}

func contains(s []uint64, v uint64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// segments lists the segment numbers in order.
func (s *spool) segments() ([]uint64, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			_ = os.Remove(filepath.Join(s.dir, name))
			continue
		}
		if !strings.HasSuffix(name, segExt) || !e.Type().IsRegular() {
			continue
		}
		q, err := strconv.ParseUint(strings.TrimSuffix(name, segExt), 10, 64)
		if err == nil {
			seqs = append(seqs, q)
		}
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return seqs, nil
}

// scanSegment counts the complete records from offset from and returns
// where the last complete one ends. Bytes that hold no record between two
// complete ones (a record damaged on disk) are skipped, as the mover does.
func scanSegment(path string, from int64) (n, bytes, end int64, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, 0, nil
	}
	if err != nil {
		return 0, 0, 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, 0, 0, err
	}
	size := info.Size()
	end = from
	for off := from; off < size; {
		p, err := readRecord(io.NewSectionReader(f, off, size-off))
		if err != nil {
			if off = nextRecord(f, off+1, size); off >= size {
				return n, bytes, end, nil
			}
			continue
		}
		n++
		bytes += int64(len(p))
		off += recordHeader + int64(len(p))
		end = off
	}
	return n, bytes, end, nil
}

// nextRecord returns the offset of the first complete record at or after
// off and before size, or size when there is none.
func nextRecord(f *os.File, off, size int64) int64 {
	var h [recordHeader]byte
	for o := off; o+recordHeader <= size; o++ {
		if _, err := f.ReadAt(h[:], o); err != nil {
			return size
		}
		if n := int64(binary.BigEndian.Uint32(h[:4])); n > maxRecord || o+recordHeader+n > size {
			continue
		}
		if _, err := readRecord(io.NewSectionReader(f, o, size-o)); err == nil {
			return o
		}
	}
	return size
}

var errIncomplete = errors.New("incomplete record")

func readRecord(rd io.Reader) ([]byte, error) {
	var h [recordHeader]byte
	if _, err := io.ReadFull(rd, h[:]); err != nil {
		return nil, errIncomplete
	}
	n := binary.BigEndian.Uint32(h[:4])
	if n > maxRecord {
		return nil, errIncomplete
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(rd, p); err != nil {
		return nil, errIncomplete
	}
	if crc32.ChecksumIEEE(p) != binary.BigEndian.Uint32(h[4:]) {
		return nil, errIncomplete
	}
	return p, nil
}

// readCursor returns the saved cursor, or (0, 0) when there is none.
func (s *spool) readCursor() (uint64, int64) {
	b, err := os.ReadFile(filepath.Join(s.dir, cursorFile))
	if err != nil {
		return 0, 0
	}
	var seq uint64
	var off int64
	if _, err := fmt.Sscanf(string(b), "%d %d", &seq, &off); err != nil || off < 0 {
		return 0, 0
	}
	return seq, off
}

func (s *spool) saveCursor(seq uint64, off int64) error {
	tmp := filepath.Join(s.dir, cursorFile+".tmp")
	if err := writeSynced(tmp, []byte(fmt.Sprintf("%d %d\n", seq, off))); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, cursorFile)); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return syncDir(s.dir)
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	_, werr := f.Write(b)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
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

// close closes the active segment and gives up the directory's lock.
func (s *spool) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == "" {
		return
	}
	_ = s.seg.Close()
	_ = s.lock.Close()
}

// prepareLocked readies the active segment for an append: the tail of a
// failed append is cut off (or, when that fails again, a new segment is
// started), and a full segment is rotated.
func (s *spool) prepareLocked() error {
	if s.torn {
		s.cutLocked()
	}
	if s.torn || s.segSize >= s.target {
		if err := s.rotateLocked(); err != nil {
			return err
		}
		s.torn = false // a torn tail at the end of a closed segment is skipped by the mover
	}
	return nil
}

// cutLocked truncates the active segment back to its last complete record.
func (s *spool) cutLocked() {
	s.torn = s.seg.Truncate(s.segSize) != nil
}

// Pending is the number of spooled requests not yet moved.
func (s *spool) Pending() int64 { return s.records.Load() }

// Append stores one request durably: it returns after an fsync that
// covers it.
func (s *spool) Append(payload []byte, _ time.Time) error {
	if len(payload) > maxRecord {
		return errSpoolFull
	}
	if s.dir == "" {
		return errNoSpool
	}
	rec := make([]byte, recordHeader+len(payload))
	binary.BigEndian.PutUint32(rec[:4], uint32(len(payload))) //nolint:gosec // len(payload) <= maxRecord, checked above
	binary.BigEndian.PutUint32(rec[4:8], crc32.ChecksumIEEE(payload))
	copy(rec[recordHeader:], payload)

	s.mu.Lock()
	if s.bytes+int64(len(payload)) > s.maxBytes {
		s.mu.Unlock()
		return errSpoolFull
	}
	if err := s.prepareLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	write := s.write
	if write == nil {
		write = (*os.File).Write
	}
	if _, err := write(s.seg, rec); err != nil {
		// not acknowledged: cut what was written off again, so that the
		// next acknowledged record does not follow a torn one
		s.cutLocked()
		s.mu.Unlock()
		return fmt.Errorf("spool: write: %w", err)
	}
	s.segSize += int64(len(rec))
	s.written += int64(len(rec))
	s.bytes += int64(len(payload))
	s.records.Add(1) // the mover may take it before the fsync: harmless, a duplicate at worst
	end := s.written
	s.mu.Unlock()

	if err := s.syncUpTo(end); err != nil {
		return err
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// syncUpTo makes sure the first end written bytes are durable: one caller
// fsyncs for everyone who wrote before it started.
func (s *spool) syncUpTo(end int64) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if s.synced >= end {
		return nil
	}
	s.mu.Lock()
	f, target := s.seg, s.written
	s.mu.Unlock()
	if err := f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) { // closed: rotation synced it
		return fmt.Errorf("spool: fsync: %w", err)
	}
	s.synced = target
	return nil
}

// rotateLocked closes the active segment (fsynced) and starts the next.
func (s *spool) rotateLocked() error {
	if err := s.seg.Sync(); err != nil {
		return fmt.Errorf("spool: fsync: %w", err)
	}
	next := s.segSeq + 1
	f, err := os.OpenFile(filepath.Join(s.dir, segName(next)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return err
	}
	_ = s.seg.Close()
	s.seg, s.segSeq, s.segSize = f, next, 0
	return nil
}

// Drain hands each spooled request, oldest first, to move, and advances the
// cursor past it once move returned nil. It stops at the first error.
func (s *spool) Drain(move func(name string, payload []byte) error) (int, error) {
	moved := 0
	for {
		s.mu.Lock()
		seq, off, active := s.curSeq, s.curOff, s.segSeq
		s.mu.Unlock()
		n, next, err := s.drainSegment(seq, off, move)
		moved += n
		if err != nil {
			return moved, err
		}
		if seq >= active {
			s.maybeRecycle(seq, next)
			return moved, nil
		}
		// a closed segment is done: go on with the next and delete it
		if err := s.advance(seq+1, 0); err != nil {
			return moved, err
		}
		_ = os.Remove(filepath.Join(s.dir, segName(seq)))
	}
}

// drainSegment moves the records of segment seq from off on. Bytes that
// hold no record before the segment's written end (damaged on disk) are
// skipped up to the next complete record, and reported to onSkip.
func (s *spool) drainSegment(seq uint64, off int64, move func(string, []byte) error) (int, int64, error) {
	f, err := os.Open(filepath.Join(s.dir, segName(seq)))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, off, nil
	}
	if err != nil {
		return 0, off, fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return 0, off, fmt.Errorf("spool: %w", err)
	}
	rd := bufio.NewReader(f)
	n, since := 0, 0
	for {
		p, err := readRecord(rd)
		if err != nil {
			next, ok := s.skipDamaged(f, seq, off)
			if !ok {
				break // the end, or a record still being written
			}
			if _, err := f.Seek(next, io.SeekStart); err != nil {
				return n, off, fmt.Errorf("spool: %w", err)
			}
			rd.Reset(f)
			off = next
			continue
		}
		if err := move(recordName(p), p); err != nil {
			return n, off, errors.Join(err, s.advance(seq, off))
		}
		off += recordHeader + int64(len(p))
		n++
		since++
		s.mu.Lock()
		s.curSeq, s.curOff = seq, off
		s.bytes -= int64(len(p))
		s.mu.Unlock()
		s.records.Add(-1)
		if since >= 100 {
			if err := s.advance(seq, off); err != nil {
				return n, off, err
			}
			since = 0
		}
	}
	return n, off, s.advance(seq, off)
}

// skipDamaged decides what an unreadable record at off means: before the
// segment's written end it is damage, skipped to the next complete record
// (ok); at the end it is the end.
func (s *spool) skipDamaged(f *os.File, seq uint64, off int64) (next int64, ok bool) {
	s.mu.Lock()
	limit := s.segSize // the active segment: everything before is complete records
	active := seq == s.segSeq
	s.mu.Unlock()
	if !active {
		info, err := f.Stat()
		if err != nil {
			return off, false
		}
		limit = info.Size()
	}
	if off >= limit {
		return off, false
	}
	if _, err := readRecord(io.NewSectionReader(f, off, limit-off)); err == nil {
		return off, true // it was being appended while the mover read it: read it again
	}
	next = nextRecord(f, off+1, limit)
	if next >= limit && !active {
		return off, false // a torn tail of a closed segment: nothing after it
	}
	if s.onSkip != nil {
		s.onSkip(seq, off, next-off)
	}
	return next, true
}

// recordName identifies a record by its content (which holds the receive
// time in nanoseconds): the same name is the same request, also after the
// spool directory was recreated.
func recordName(p []byte) string {
	h := sha256.Sum256(p)
	return hex.EncodeToString(h[:16])
}

// advance saves the cursor.
func (s *spool) advance(seq uint64, off int64) error {
	s.mu.Lock()
	s.curSeq, s.curOff = seq, off
	s.mu.Unlock()
	return s.saveCursor(seq, off)
}

// maybeRecycle starts a fresh segment once the active one is fully moved,
// so that the disk space is given back.
func (s *spool) maybeRecycle(seq uint64, off int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq != s.segSeq || off != s.segSize {
		return
	}
	// everything written is moved (records skipped as damaged included)
	s.records.Store(0)
	s.bytes = 0
	if s.segSize == 0 {
		return
	}
	if err := s.rotateLocked(); err != nil {
		return
	}
	if err := s.saveCursor(s.segSeq, 0); err != nil {
		return
	}
	s.curSeq, s.curOff = s.segSeq, 0
	_ = os.Remove(filepath.Join(s.dir, segName(seq)))
}

// oldest returns the oldest record not yet moved; ok is false when there
// is none (or it cannot be read).
func (s *spool) oldest() (p []byte, ok bool) {
	s.mu.Lock()
	seq, off, active := s.curSeq, s.curOff, s.segSeq
	s.mu.Unlock()
	for ; seq <= active; seq, off = seq+1, 0 {
		f, err := os.Open(filepath.Join(s.dir, segName(seq)))
		if err != nil {
			continue
		}
		info, err := f.Stat()
		if err == nil && off < info.Size() {
			if at := nextRecord(f, off, info.Size()); at < info.Size() {
				p, err = readRecord(io.NewSectionReader(f, at, info.Size()-at))
			}
		}
		f.Close()
		if p != nil && err == nil {
			return p, true
		}
	}
	return nil, false
}
