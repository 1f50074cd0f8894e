package prefix

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes data to path so that readers see either the old
// file or the whole new one, even across a crash: a temporary file in the
// same folder is written, synced and renamed over path, then the folder is
// synced so the rename itself is durable.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}

// Modes of the files a prefix writes. The mode is set exactly, whatever
// the umask (WriteFileAtomic chmods its temporary file).
const (
	// PublicMode is for files anyone may read: uuid, markers, metadata,
	// the public key, net specs and virt/env.
	PublicMode os.FileMode = 0o644
	// SecretMode is for files that hold secrets: the private key and the
	// VM specs (ssh-password, root-password). The temporary file is 0600
	// from its creation, so no other user can open it at any moment.
	SecretMode os.FileMode = 0o600
)

// writeJSON writes v as JSON indented by 4 spaces, the original's format,
// readable by everyone.
func writeJSON(path string, v any) error { return writeJSONMode(path, v, PublicMode) }

// writeJSONMode writes v like writeJSON, with mode perm.
func writeJSONMode(path string, v any, perm os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return WriteFileAtomic(path, b, perm)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// symlinkAtomic points link at target, replacing any existing link in one
// step (a new link under a temporary name renamed over the old one), so
// that `current` never goes missing.
func symlinkAtomic(target, link string) error {
	dir := filepath.Dir(link)
	for i := 0; ; i++ {
		tmp := filepath.Join(dir, fmt.Sprintf(".%s.tmp-%d-%d", filepath.Base(link), os.Getpid(), i))
		err := os.Symlink(target, tmp)
		if os.IsExist(err) && i < 100 {
			continue
		}
		if err != nil {
			return fmt.Errorf("link %s to %s: %w", link, target, err)
		}
		if err := os.Rename(tmp, link); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("link %s to %s: %w", link, target, err)
		}
		return syncDir(dir)
	}
}
