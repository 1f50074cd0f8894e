package discovery

import (
	"os"
	"strconv"
	"sync"
)

var procFD = sync.OnceValue(func() bool {
	_, err := os.Stat("/proc/self/fd")
	return err == nil
})

// execPath is the path under which a child started by os/exec finds its
// extra file i (ExtraFiles[i], descriptor 3+i in the child): execve
// resolves /proc/self in the child. Without /proc mounted there is none,
// and the binary runs by its path (checked, but no longer pinned to the
// opened file).
func execPath(i int) (string, bool) {
	if !procFD() {
		return "", false
	}
	return "/proc/self/fd/" + strconv.Itoa(3+i), true
}
