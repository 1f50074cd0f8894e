package env

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/prefix"
)

// CurrentLink is the workdir's relative symlink to its current prefix.
const CurrentLink = prefix.CurrentLink

// DefaultPrefixName is the prefix init creates when none is named.
const DefaultPrefixName = prefix.DefaultPrefixName

// ListPrefixes returns the names of the workdir's prefixes (every
// subfolder but `current`, half-made ones included), sorted.
func ListPrefixes(workdir string) ([]string, error) {
	if _, err := os.Stat(workdir); errors.Is(err, fs.ErrNotExist) {
		return nil, userErrorf("workdir %s does not exist", workdir)
	}
	return (&prefix.Workdir{Path: workdir}).Prefixes()
}

// CurrentPrefix returns the name `current` points at ("" when unset).
func CurrentPrefix(workdir string) (string, error) {
	if _, err := os.Lstat(workdir + "/" + CurrentLink); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return (&prefix.Workdir{Path: workdir}).Current()
}

// SetCurrent points the workdir's `current` at prefix name, atomically.
// A missing prefix is a user error.
func SetCurrent(workdir, name string) error {
	names, err := ListPrefixes(workdir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if n == name {
			return (&prefix.Workdir{Path: workdir}).SetCurrent(name)
		}
	}
	return userErrorf("no prefix named %q in %s", name, workdir)
}

// DestroyInWorkdir destroys prefix name ("" or "current" mean the one
// `current` points at) of the workdir and keeps the workdir consistent:
// `current` moves to a remaining prefix, and the workdir itself goes with
// its last prefix. Through a symlink only the link goes: a workdir that is
// a symlink is unlinked and nothing behind it is touched; a prefix that is
// a symlink is unlinked (and `current` moved), its environment left alone.
func (m *Manager) DestroyInWorkdir(ctx context.Context, workdir, name string) error {
	w := &prefix.Workdir{Path: workdir}
	if link, err := isSymlink(workdir); err != nil {
		return fmt.Errorf("destroy in workdir %s: %w", workdir, err)
	} else if link {
		return m.unlinkOnly(workdir)
	}
	if name == "" || name == CurrentLink {
		cur, err := CurrentPrefix(workdir)
		if err != nil {
			return err
		}
		if cur == "" {
			return userErrorf("workdir %s has no current prefix", workdir)
		}
		name = cur
	}
	if link, err := isSymlink(filepath.Join(workdir, name)); err != nil {
		return fmt.Errorf("destroy prefix %s: %w", filepath.Join(workdir, name), err)
	} else if link {
		target, _ := os.Readlink(filepath.Join(workdir, name))
		if err := w.RemovePrefix(name); err != nil {
			return fmt.Errorf("destroy prefix %s: %w", filepath.Join(workdir, name), err)
		}
		m.log().Warn("removed only the symbolic link; what it points at is untouched (destroy it through its real path to remove it)", "link", filepath.Join(workdir, name), "target", target)
		return nil
	}
	e, err := m.destroyable(w.Path + "/" + name)
	if err != nil {
		return err
	}
	if err := m.teardown(ctx, e); err != nil {
		return fmt.Errorf("destroy prefix %s: %w", e.Path, err)
	}
	if err := w.RemovePrefix(name); err != nil {
		return workdirError(fmt.Errorf("destroy prefix %s: %w", e.Path, err))
	}
	return nil
}

// workdirError marks a workdir kept for the user's files in it as a user
// error: the destroy itself succeeded, what is left is theirs to sort out.
func workdirError(err error) error {
	if errors.Is(err, prefix.ErrWorkdirNotEmpty) {
		return errs.User(err)
	}
	return err
}

// DestroyAll destroys every prefix of the workdir, then the workdir. It
// goes on after a failure, so one broken prefix does not keep the others.
// A workdir that is a symlink loses only the link, its prefixes untouched.
func (m *Manager) DestroyAll(ctx context.Context, workdir string) error {
	if link, err := isSymlink(workdir); err != nil {
		return fmt.Errorf("destroy workdir %s: %w", workdir, err)
	} else if link {
		return m.unlinkOnly(workdir)
	}
	names, err := ListPrefixes(workdir)
	if err != nil {
		return err
	}
	var failed []error
	for _, n := range names {
		if err := m.DestroyInWorkdir(ctx, workdir, n); err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) == 0 {
		// A workdir without prefixes (an init that failed before its
		// prefix existed) goes too.
		if rest, err := ListPrefixes(workdir); err == nil && len(rest) == 0 {
			if err := (&prefix.Workdir{Path: workdir}).Remove(); err != nil {
				failed = append(failed, workdirError(err))
			}
		}
	}
	return errors.Join(failed...)
}

// DestroyPrefix destroys a prefix found by prefix.Find: within its workdir
// (keeping `current` and the workdir consistent) when it has one, else on
// its own.
func (m *Manager) DestroyPrefix(ctx context.Context, p *prefix.Prefix) error {
	if p.Workdir != nil && p.Name != "" {
		return m.DestroyInWorkdir(ctx, p.Workdir.Path, p.Name)
	}
	return m.Destroy(ctx, p.Path)
}

// DestroyUnlinkedWorkdir removes a workdir that a first `init` killed
// before it linked `current` left behind: a folder without `current` whose
// subfolders are all half-made prefixes (no `initialized`). Each is
// destroyed like any prefix (provider objects, leases, files), then the
// workdir goes. Anything else is refused, so a wrong path never deletes a
// user's files; a symlink loses only the link.
func (m *Manager) DestroyUnlinkedWorkdir(ctx context.Context, workdir string) error {
	if link, err := isSymlink(workdir); err != nil {
		return fmt.Errorf("destroy workdir %s: %w", workdir, err)
	} else if link {
		return m.unlinkOnly(workdir)
	}
	if _, err := os.Lstat(filepath.Join(workdir, CurrentLink)); err == nil {
		return userErrorf("%s has a %s link: destroy its prefixes instead", workdir, CurrentLink)
	}
	all, err := os.ReadDir(workdir)
	if err != nil {
		return userErrorf("no lago workdir at %s: %v", workdir, err)
	}
	var entries []os.DirEntry
	for _, e := range all {
		// A temp file of an atomic write (".current.tmp-PID-N") that the
		// kill interrupted.
		if strings.HasPrefix(e.Name(), "."+CurrentLink+".tmp-") {
			if err := os.Remove(filepath.Join(workdir, e.Name())); err != nil {
				return fmt.Errorf("destroy workdir %s: %w", workdir, err)
			}
			continue
		}
		entries = append(entries, e)
	}
	for _, e := range entries {
		p := filepath.Join(workdir, e.Name())
		if !e.IsDir() {
			return userErrorf("%s is not a lago workdir: it holds %s", workdir, e.Name())
		}
		if _, err := os.Stat(filepath.Join(p, fileInitialized)); err == nil {
			return userErrorf("%s holds the initialized prefix %s but no %s link: run lago set-current first", workdir, e.Name(), CurrentLink)
		}
	}
	for _, e := range entries {
		p := filepath.Join(workdir, e.Name())
		if err := m.Destroy(ctx, p); err != nil {
			// A folder killed before even its uuid was written holds
			// nothing that needs a teardown.
			if empty, _ := isEmptyDir(p); !empty {
				return err
			}
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("destroy %s: %w", p, err)
			}
		}
	}
	if err := os.Remove(workdir); err != nil {
		return fmt.Errorf("destroy workdir %s: %w", workdir, err)
	}
	return nil
}

func isEmptyDir(p string) (bool, error) {
	entries, err := os.ReadDir(p)
	if err != nil {
		return false, err
	}
	return len(entries) == 0, nil
}
