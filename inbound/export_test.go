package inbound

import (
	"os"
	"time"
)

// SetSpoolWriter replaces how the receiver's spool appends to its active
// segment (a full disk); nil restores the real write.
func SetSpoolWriter(r *Receiver, w func(f *os.File, p []byte) (int, error)) {
	r.spool.mu.Lock()
	r.spool.write = w
	r.spool.mu.Unlock()
}

// SpoolRecord appends payload to the spool directory dir as a spool record
// (a record of the previous release: the test gives its JSON).
func SpoolRecord(dir string, payload []byte) error {
	s, err := openSpool(dir, 1<<20)
	if err != nil {
		return err
	}
	defer s.close()
	return s.Append(payload, time.Now())
}
