//go:build !linux

package discovery

// execPath: only Linux runs an open file by a /proc path; elsewhere the
// binary runs by its path, checked just before.
func execPath(int) (string, bool) { return "", false }
