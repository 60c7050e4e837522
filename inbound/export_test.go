package inbound

import "os"

// SetSpoolWriter replaces how the receiver's spool appends to its active
// segment (a full disk); nil restores the real write.
func SetSpoolWriter(r *Receiver, w func(f *os.File, p []byte) (int, error)) {
	r.spool.mu.Lock()
	r.spool.write = w
	r.spool.mu.Unlock()
}
