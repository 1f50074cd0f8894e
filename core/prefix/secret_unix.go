//go:build unix

package prefix

import (
	"fmt"
	"os"
	"syscall"
)

// TightenSecret makes a secret file that an earlier version (or the
// original) wrote 0644 private, when it is ours: loading an old prefix
// repairs it instead of leaving its passwords readable by every local user
// until the next write. It reports whether it changed the mode; a file of
// another owner is left alone (we could not chmod it, and it is not ours to
// repair).
func TightenSecret(path string) (bool, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&^SecretMode == 0 {
		return false, nil
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return false, nil
	}
	if err := os.Chmod(path, SecretMode); err != nil {
		return false, fmt.Errorf("make %s private: %w", path, err)
	}
	return true, nil
}
