package template

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestStoreModesDespiteUmask: a store is shared by the host's users, so
// what one user's download leaves must be usable by the next whatever the
// downloader's umask: the folder group-writable and setgid, images and
// companions readable by all, the lock openable by all.
func TestStoreModesDespiteUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })
	img := makeImage(1<<16, true, 7)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.qcow2"), img, 0o644)
	os.WriteFile(filepath.Join(dir, "a.qcow2.hash"), []byte(sha1hex(img)), 0o644)
	os.WriteFile(filepath.Join(dir, "a.qcow2.metadata"), []byte(`{"distro": "debian"}`), 0o644)
	os.WriteFile(filepath.Join(dir, "repo.metadata"), repoJSON(t, "local", Source{Type: "file", Args: map[string]string{"root": dir}},
		map[string]map[string]ver{"a": {"1": {"a.qcow2", 1}}}), 0o644)
	repo, err := LoadRepo(context.Background(), filepath.Join(dir, "repo.metadata"), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, DecompressAuto)
	if _, err := s.Get(context.Background(), repo, "a", "", nil); err != nil {
		t.Fatal(err)
	}
	want := map[string]fs.FileMode{
		"":                   fs.ModeDir | fs.ModeSetgid | 0o775,
		"local:a:1":          ImageMode,
		"local:a:1.hash":     ImageMode,
		"local:a:1.metadata": ImageMode,
		"local:a:1.lock":     LockMode,
	}
	for name, mode := range want {
		st, err := os.Stat(filepath.Join(s.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode() & (fs.ModeType | fs.ModePerm | fs.ModeSetgid); got != mode {
			t.Errorf("%q: mode %v, want %v", name, got, mode)
		}
	}
}
