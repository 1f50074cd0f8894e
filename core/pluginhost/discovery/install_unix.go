//go:build unix

package discovery

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes the folder's install lock (flock on installLock, waiting
// for another Install or Remove to finish) and returns its release.
func lockDir(dir string) (func(), error) {
	path := filepath.Join(dir, installLock)
	// O_NOFOLLOW: a link planted as the lock file is not followed.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock plugin folder %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock plugin folder %s: %w", dir, err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}

// syncDir makes the renames and removals in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func textBusy(err error) bool { return errors.Is(err, syscall.ETXTBSY) }
