package lease

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestStoreModesDespiteUmask: the lease store is shared by the host's
// users; whatever the umask of the user who made the store or a lease,
// the next user must be able to take the lock and replace or release a
// stale lease.
func TestStoreModesDespiteUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })
	s := newStore(t)
	l, err := s.Acquire(context.Background(), prefix(t, "u1"), "u1", Request{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]fs.FileMode{
		s.Dir:                          fs.ModeDir | fs.ModeSetgid | 0o775,
		filepath.Join(s.Dir, LockName): LockMode,
		l.File:                         FileMode,
	}
	for p, mode := range want {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode() & (fs.ModeType | fs.ModePerm | fs.ModeSetgid); got != mode {
			t.Errorf("%s: mode %v, want %v", p, got, mode)
		}
	}
}
