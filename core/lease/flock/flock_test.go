package flock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestAcquireWaitsAndTimesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	first, err := Acquire(context.Background(), path, 0o660, 0)
	if err != nil {
		t.Fatal(err)
	}

	_, err = Acquire(context.Background(), path, 0o660, 50*time.Millisecond)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("second lock while held: got %v, want ErrTimeout", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, err = Acquire(ctx, path, 0o660, 0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("lock with cancelled context: got %v, want context.Canceled", err)
	}

	// A waiter gets the lock as soon as the holder lets go, even though
	// earlier waiters gave up (their goroutines must not keep it).
	done := make(chan error, 1)
	go func() {
		l, err := Acquire(context.Background(), path, 0o660, 5*time.Second)
		if err == nil {
			err = l.Unlock()
		}
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := first.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("waiter after release: %v", err)
	}
	if err := first.Unlock(); err != nil {
		t.Fatalf("second unlock: %v", err)
	}
}

func TestAcquireSetsModeDespiteUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "subnet-lease.lock")
	l, err := Acquire(context.Background(), path, 0o660, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != 0o660 {
		t.Fatalf("lock file mode %o, want 660", got)
	}
}

func TestAcquireMissingFolderNamesPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "x.lock")
	_, err := Acquire(context.Background(), path, 0o660, time.Second)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want a not-exist error", err)
	}
	if want := path; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name %s", err, want)
	}
}

// TestAcquireRefusesPlantedSymlink: a symlink planted at a lock's name in a
// shared folder is not followed (it would make lago open, and lock, a file
// of the planter's choosing).
func TestAcquireRefusesPlantedSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "victim")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(dir, "x.lock")
	if err := os.Symlink(target, lock); err != nil {
		t.Fatal(err)
	}
	l, err := Acquire(context.Background(), lock, 0o664, time.Second)
	if err == nil {
		l.Unlock()
		t.Fatal("Acquire followed a symlink planted at the lock's name")
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Fatalf("the symlink's target changed: %q", b)
	}
}

func TestSharedDirModeDespiteUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	base := t.TempDir()
	dir := filepath.Join(base, "a", "subnets")
	if err := SharedDir(dir); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.Mode()&(os.ModePerm|os.ModeSetgid), SharedDirMode; got != want {
		t.Fatalf("store folder mode %v, want %v", got, want)
	}
	// An existing folder keeps the administrator's mode.
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := SharedDir(dir); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o750 {
		t.Fatalf("existing folder's mode changed to %v", st.Mode())
	}
	f := filepath.Join(base, "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := SharedDir(f); err == nil {
		t.Fatal("SharedDir on a file: no error")
	}
}
