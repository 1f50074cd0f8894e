package lago

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// prefixLogPending bounds the plugin log lines kept while no prefix is
// known yet.
const prefixLogPending = 1 << 20

// prefixLogRetry is how often a write looks for the prefix again.
const prefixLogRetry = 500 * time.Millisecond

// prefixLog is where the plugins' own log lines go: the prefix's
// logs/lago.log, not the terminal (the user sees what a plugin returns
// as a warning, once, in lago's words). The prefix is often unknown when
// the plugin host starts (init creates it), so lines wait in memory until
// it can be found and are appended then; Close appends what still waits
// if a prefix exists by then, or drops it.
type prefixLog struct {
	find func() (string, bool) // the log file, once the prefix exists

	mu      sync.Mutex
	f       *os.File
	pending bytes.Buffer
	lastTry time.Time
	closed  bool
}

func newPrefixLog(find func() (string, bool)) *prefixLog { return &prefixLog{find: find} }

func (l *prefixLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil && !l.closed && time.Since(l.lastTry) >= prefixLogRetry {
		l.open()
	}
	if l.f != nil {
		// A log that cannot be written must not fail the plugin's call.
		_, _ = l.f.Write(b)
		return len(b), nil
	}
	if !l.closed && l.pending.Len()+len(b) <= prefixLogPending {
		l.pending.Write(b)
	}
	return len(b), nil
}

// open opens the prefix's log for appending and writes what waited.
// l.mu must be held.
func (l *prefixLog) open() {
	l.lastTry = time.Now()
	path, ok := l.find()
	if !ok {
		return
	}
	// The prefix makes its logs folder; one that is gone is a prefix
	// being destroyed, which the log must not bring back.
	if st, err := os.Stat(filepath.Dir(path)); err != nil || !st.IsDir() {
		return
	}
	// 0600: plugins may log connection details.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	_, _ = f.Write(l.pending.Bytes())
	l.pending.Reset()
	l.f = f
}

// Close appends what still waits, when the prefix exists now, and closes
// the log; later lines are dropped.
func (l *prefixLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	if l.f == nil && l.pending.Len() > 0 {
		l.open()
	}
	l.closed = true
	l.pending.Reset()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
