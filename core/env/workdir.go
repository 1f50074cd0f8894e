package env

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// CurrentLink is the workdir's relative symlink to its current prefix.
const CurrentLink = "current"

// DefaultPrefixName is the prefix init creates when none is named.
const DefaultPrefixName = "default"

// ListPrefixes returns the names of the workdir's prefixes (every
// subfolder but `current`), sorted.
func ListPrefixes(workdir string) ([]string, error) {
	ents, err := os.ReadDir(workdir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, userErrorf("workdir %s does not exist", workdir)
	}
	if err != nil {
		return nil, fmt.Errorf("list prefixes of %s: %w", workdir, err)
	}
	var out []string
	for _, e := range ents {
		if e.Name() == CurrentLink || !e.IsDir() && e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		if st, err := os.Stat(filepath.Join(workdir, e.Name())); err != nil || !st.IsDir() {
			continue
		}
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out, nil
}

// CurrentPrefix returns the name `current` points at ("" when unset).
func CurrentPrefix(workdir string) (string, error) {
	t, err := os.Readlink(filepath.Join(workdir, CurrentLink))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read current prefix of %s: %w", workdir, err)
	}
	return filepath.Base(t), nil
}

// SetCurrent points the workdir's `current` at prefix name, atomically
// (a new link renamed over the old one).
func SetCurrent(workdir, name string) error {
	if name == "" || name == CurrentLink || filepath.Base(name) != name {
		return userErrorf("bad prefix name %q", name)
	}
	if st, err := os.Stat(filepath.Join(workdir, name)); err != nil || !st.IsDir() {
		return userErrorf("no prefix named %q in %s", name, workdir)
	}
	tmp := filepath.Join(workdir, "."+CurrentLink+".tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(name, tmp); err != nil {
		return fmt.Errorf("set current prefix of %s: %w", workdir, err)
	}
	if err := os.Rename(tmp, filepath.Join(workdir, CurrentLink)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("set current prefix of %s: %w", workdir, err)
	}
	return nil
}

// DestroyInWorkdir destroys prefix name ("current" means the one current
// points at) of the workdir and keeps the workdir consistent: `current`
// moves to another prefix ("default" if there, else the last by name),
// and the workdir itself goes (only the link when it is a symlink) with
// its last prefix.
func (m *Manager) DestroyInWorkdir(ctx context.Context, workdir, name string) error {
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
	if err := m.Destroy(ctx, filepath.Join(workdir, name)); err != nil {
		return err
	}
	return m.tidyWorkdir(workdir)
}

// DestroyAll destroys every prefix of the workdir, then the workdir. It
// goes on after a failure, so one broken prefix does not keep the others.
func (m *Manager) DestroyAll(ctx context.Context, workdir string) error {
	names, err := ListPrefixes(workdir)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if err := m.Destroy(ctx, filepath.Join(workdir, n)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := m.tidyWorkdir(workdir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// tidyWorkdir repoints a dangling `current`, and removes a workdir left
// without prefixes.
func (m *Manager) tidyWorkdir(workdir string) error {
	names, err := ListPrefixes(workdir)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return removePath(workdir)
	}
	cur, err := CurrentPrefix(workdir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if n == cur {
			return nil
		}
	}
	next := names[len(names)-1]
	for _, n := range names {
		if n == DefaultPrefixName {
			next = n
		}
	}
	return SetCurrent(workdir, next)
}
