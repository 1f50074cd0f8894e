package flock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// SharedDirMode is the mode SharedDir gives a folder it creates: group
// members may add and remove entries, and setgid makes every file and
// folder created in it take the folder's group instead of the creator's
// primary group, so the next user of the group can replace or remove what
// this one left (a stale lease, a killed download).
const SharedDirMode = fs.ModeSetgid | 0o775

// SharedDir creates dir (and missing parents) for a store several users
// share: the lease store, the template store. The folder itself, when it
// is created here, gets SharedDirMode whatever the umask (a umask of 077
// would otherwise make the store this user's alone); parents get the
// umask's usual modes. An existing folder is left as it is: its modes are
// the administrator's (docs/SHARED-HOST.md), and `lago doctor` says when
// they do not fit sharing.
func SharedDir(dir string) error {
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("%s is not a folder", dir)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o775); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // another process made it first
		}
		return err
	}
	if err := os.Chmod(dir, SharedDirMode); err != nil {
		return fmt.Errorf("set mode of %s: %w", dir, err)
	}
	return nil
}
