//go:build unix

package discovery

import (
	"os"
	"syscall"
)

// ownerOf returns the uid owning the file st describes.
func ownerOf(st os.FileInfo) (int, bool) {
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(s.Uid), true
}
