// Package flock takes exclusive flock(2) locks on files, with a deadline.
//
// The original Lago guards its subnet lease store and its template store with
// flock on well-known files, so this tool uses the very same kind of lock on
// the very same files: both tools can then share one host safely.
package flock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// ErrTimeout is wrapped by the error Lock returns when the wait ran out.
var ErrTimeout = errors.New("timed out waiting for lock")

// Lock is a held exclusive lock; Unlock releases it. The kernel also drops it
// when the process dies, so a crash never leaves the lock held.
type Lock struct {
	f    *os.File
	path string
}

// Path is the lock file's path.
func (l *Lock) Path() string { return l.path }

// Acquire takes an exclusive flock on path, creating the file with mode perm
// (set with chmod, so the umask does not narrow it) when it is missing. It
// waits until the lock is free, ctx is done, or timeout (when > 0) passed.
func Acquire(ctx context.Context, path string, perm os.FileMode, timeout time.Duration) (*Lock, error) {
	f, err := open(path, perm)
	if err != nil {
		return nil, err
	}
	err = flock(f, unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		return &Lock{f: f, path: path}, nil
	}
	if !errors.Is(err, unix.EWOULDBLOCK) {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// A blocking flock cannot be interrupted, so it runs in its own goroutine;
	// when the caller gives up first, that goroutine releases the lock as
	// soon as it gets it and closes the file.
	got := make(chan error, 1)
	go func() { got <- flock(f, unix.LOCK_EX) }()
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	abandon := func() {
		go func() {
			if err := <-got; err == nil {
				_ = flock(f, unix.LOCK_UN)
			}
			f.Close()
		}()
	}
	select {
	case err := <-got:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		return &Lock{f: f, path: path}, nil
	case <-ctx.Done():
		abandon()
		return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
	case <-expired:
		abandon()
		return nil, fmt.Errorf("%w %s after %s: another lago process holds it", ErrTimeout, path, timeout)
	}
}

// Unlock releases the lock and closes the file. It is safe to call twice.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := flock(l.f, unix.LOCK_UN)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	if err != nil {
		return fmt.Errorf("unlock %s: %w", l.path, err)
	}
	return nil
}

// open opens or creates the lock file. A lock file made by another user may
// only be readable to us; flock works on a read-only descriptor too.
func open(path string, perm os.FileMode) (*os.File, error) {
	f, err := create(path, perm)
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create lock file %s: %w", path, err)
	}
	// O_NOFOLLOW: in a group-writable shared folder a member could plant
	// a symlink at the lock's name; a lock is never a link.
	f, err = os.OpenFile(path, os.O_RDWR|unix.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrPermission) {
		f, err = os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w", path, err)
	}
	return f, nil
}

// create makes the lock file with mode perm, or fails with os.ErrExist.
// The file gets its mode under a temporary name and is then linked into
// place, so nobody ever sees it with the creator's umask applied: created
// in place and chmod-ed after, it was 0600 for a moment under a umask of
// 077, and another user of a shared store who opened it then was refused.
func create(path string, perm os.FileMode) (*os.File, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("set mode of lock file %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		tmp.Close()
		if errors.Is(err, os.ErrExist) {
			return nil, os.ErrExist
		}
		return nil, err
	}
	return tmp, nil
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
