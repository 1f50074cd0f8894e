package prefix

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Workdir names.
const (
	// CurrentLink is the workdir's relative symlink to its current prefix.
	CurrentLink = "current"
	// DefaultWorkdirName is the workdir lago init makes in the current
	// folder and discovery looks for.
	DefaultWorkdirName = ".lago"
	// DefaultPrefixName is the first prefix's name.
	DefaultPrefixName = "default"
)

// ErrNotFound means no prefix was found.
var ErrNotFound = errors.New("no lago prefix found")

// Workdir is a folder of prefixes with a `current` link.
type Workdir struct {
	// Path is the workdir folder, absolute (a symlink is kept as given,
	// so removing it removes only the link).
	Path string
}

// IsWorkdir reports whether dir is a workdir: it has a `current` symlink.
func IsWorkdir(dir string) bool {
	st, err := os.Lstat(filepath.Join(dir, CurrentLink))
	return err == nil && st.Mode()&fs.ModeSymlink != 0
}

// IsPrefix reports whether dir is an initialized prefix.
func IsPrefix(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, InitializedFile))
	return err == nil && !st.IsDir()
}

// OpenWorkdir opens an existing workdir.
func OpenWorkdir(path string) (*Workdir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open workdir: %w", err)
	}
	if !IsWorkdir(abs) {
		return nil, fmt.Errorf("open workdir %s: not a lago workdir (no %s link): %w", abs, CurrentLink, ErrNotFound)
	}
	return &Workdir{Path: abs}, nil
}

// CreateWorkdir makes the workdir folder (and its parents) if needed and
// returns it; `current` is set by CreatePrefix.
func CreateWorkdir(path string) (*Workdir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("create workdir: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("create workdir: %w", err)
	}
	return &Workdir{Path: abs}, nil
}

// Prefixes lists the names of the workdir's prefixes, sorted: every
// subfolder but `current` (half-made ones included, so they can be seen
// and destroyed). Hidden entries (temporary files) are skipped.
func (w *Workdir) Prefixes() ([]string, error) {
	entries, err := os.ReadDir(w.Path)
	if err != nil {
		return nil, fmt.Errorf("list prefixes: %w", err)
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if n == CurrentLink || n[0] == '.' {
			continue
		}
		st, err := os.Stat(filepath.Join(w.Path, n))
		if err != nil || !st.IsDir() {
			continue
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// Current returns the name of the prefix `current` points at.
func (w *Workdir) Current() (string, error) {
	t, err := os.Readlink(filepath.Join(w.Path, CurrentLink))
	if err != nil {
		return "", fmt.Errorf("read current prefix: %w", err)
	}
	return filepath.Base(filepath.Clean(t)), nil
}

// SetCurrent points `current` at the prefix name with a relative link,
// swapped atomically.
func (w *Workdir) SetCurrent(name string) error {
	if err := checkPrefixName(name); err != nil {
		return fmt.Errorf("set current prefix: %w", err)
	}
	st, err := os.Stat(filepath.Join(w.Path, name))
	if err != nil || !st.IsDir() {
		return fmt.Errorf("set current prefix: no prefix %q in %s", name, w.Path)
	}
	return symlinkAtomic(name, filepath.Join(w.Path, CurrentLink))
}

func checkPrefixName(name string) error {
	if name == "" || name == CurrentLink || name == "." || name == ".." || name[0] == '.' || filepath.Base(name) != name {
		return fmt.Errorf("invalid prefix name %q", name)
	}
	return nil
}

// resolveName turns "current" (or "") into the prefix it points at.
func (w *Workdir) resolveName(name string) (string, error) {
	if name == "" || name == CurrentLink {
		return w.Current()
	}
	if err := checkPrefixName(name); err != nil {
		return "", err
	}
	return name, nil
}

// Prefix returns the prefix name ("current" or "" for the current one)
// whether or not its init finished; it must exist.
func (w *Workdir) Prefix(name string) (*Prefix, error) {
	n, err := w.resolveName(name)
	if err != nil {
		return nil, fmt.Errorf("open prefix: %w", err)
	}
	path := filepath.Join(w.Path, n)
	st, err := os.Stat(path)
	if err != nil || !st.IsDir() {
		return nil, fmt.Errorf("open prefix %q in %s: %w", n, w.Path, ErrNotFound)
	}
	return &Prefix{Path: path, Name: n, Workdir: w}, nil
}

// CreatePrefix makes a new prefix name in the workdir (see Create) and,
// when setCurrent is true or the workdir has no `current` yet, points
// `current` at it.
func (w *Workdir) CreatePrefix(name string, setCurrent bool, opts CreateOptions) (*Prefix, error) {
	if err := checkPrefixName(name); err != nil {
		return nil, fmt.Errorf("create prefix: %w", err)
	}
	p, err := Create(filepath.Join(w.Path, name), opts)
	if p != nil {
		p.Name, p.Workdir = name, w
	}
	if err != nil {
		return p, err
	}
	if setCurrent || !IsWorkdir(w.Path) {
		if err := w.SetCurrent(name); err != nil {
			return p, fmt.Errorf("create prefix: %w", err)
		}
	}
	return p, nil
}

// ErrWorkdirNotEmpty means a workdir without prefixes was kept because it
// holds files lago did not make.
var ErrWorkdirNotEmpty = errors.New("workdir holds files lago did not make")

// RemovePrefix removes the prefix name ("current" for the current one) the
// way the original's destroy does: the prefix folder goes (a symlinked
// prefix loses only its link); if `current` pointed at it, it moves to the
// first remaining prefix; when no prefix remains the workdir goes (see
// Remove). A workdir that is itself a symlink loses only that link, and
// nothing behind it is touched.
func (w *Workdir) RemovePrefix(name string) error {
	if st, err := os.Lstat(w.Path); err == nil && st.Mode()&fs.ModeSymlink != 0 {
		return w.Remove()
	}
	n, err := w.resolveName(name)
	if err != nil {
		return fmt.Errorf("remove prefix: %w", err)
	}
	if err := Remove(&Prefix{Path: filepath.Join(w.Path, n), Name: n, Workdir: w}); err != nil {
		return err
	}
	rest, err := w.Prefixes()
	if err != nil {
		return fmt.Errorf("remove prefix: %w", err)
	}
	if len(rest) == 0 {
		return w.Remove()
	}
	if cur, err := w.Current(); err != nil || cur == n {
		if err := w.SetCurrent(rest[0]); err != nil {
			return fmt.Errorf("remove prefix: %w", err)
		}
	}
	return nil
}

// Remove deletes a workdir that holds no prefix any more: its `current`
// link, the temporary files of lago's atomic writes, then the folder. A
// workdir holding anything else is kept (ErrWorkdirNotEmpty, naming what
// it holds), as the original does: it may be the user's files. A workdir
// that is a symlink loses only the link. Removing what is gone is not an
// error.
func (w *Workdir) Remove() error {
	st, err := os.Lstat(w.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove workdir: %w", err)
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		if err := os.Remove(w.Path); err != nil {
			return fmt.Errorf("remove workdir link: %w", err)
		}
		return nil
	}
	entries, err := os.ReadDir(w.Path)
	if err != nil {
		return fmt.Errorf("remove workdir: %w", err)
	}
	var foreign []string
	for _, e := range entries {
		n := e.Name()
		if n == CurrentLink || strings.HasPrefix(n, "."+CurrentLink+".tmp-") {
			if err := os.Remove(filepath.Join(w.Path, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove workdir: %w", err)
			}
			continue
		}
		foreign = append(foreign, n)
	}
	if len(foreign) > 0 {
		return fmt.Errorf("remove workdir %s: %w: %s (remove them, then the folder, by hand)", w.Path, ErrWorkdirNotEmpty, strings.Join(foreign, ", "))
	}
	if err := os.Remove(w.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove workdir: %w", err)
	}
	return nil
}

// FindOptions say where to look for a prefix; they mirror the CLI's
// --workdir-path, --prefix-name and the deprecated --prefix-path.
type FindOptions struct {
	// PrefixPath names the prefix folder directly.
	PrefixPath string
	// WorkdirPath names the workdir; empty means search from Cwd upwards.
	WorkdirPath string
	// PrefixName picks a prefix of the workdir; "" means "current".
	PrefixName string
	// Cwd is where the search starts; empty means the current folder.
	Cwd string
}

// Find locates a prefix. With PrefixPath, that folder. With WorkdirPath,
// that workdir. Otherwise, from Cwd upwards: the folder itself if it holds
// `initialized` (or is a workdir), else its .lago (a workdir, or a prefix
// of the original's old single-prefix layout), then the parent's, up to /.
//
// A half-made prefix (no `initialized`) is returned when it is named
// explicitly or `current` points at it; check Initialized before using it
// for anything but destroy.
func Find(opts FindOptions) (*Prefix, error) {
	if opts.PrefixPath != "" {
		abs, err := filepath.Abs(opts.PrefixPath)
		if err != nil {
			return nil, fmt.Errorf("find prefix: %w", err)
		}
		st, err := os.Stat(abs)
		if err != nil || !st.IsDir() {
			return nil, fmt.Errorf("find prefix %s: %w", abs, ErrNotFound)
		}
		p := &Prefix{Path: abs, Name: filepath.Base(abs)}
		if IsWorkdir(filepath.Dir(abs)) {
			p.Workdir = &Workdir{Path: filepath.Dir(abs)}
		}
		return p, nil
	}
	if opts.WorkdirPath != "" {
		w, err := OpenWorkdir(opts.WorkdirPath)
		if err != nil {
			// The original's old layout: the "workdir" is a prefix itself.
			if abs, aerr := filepath.Abs(opts.WorkdirPath); aerr == nil && IsPrefix(abs) && isCurrentName(opts.PrefixName) {
				return &Prefix{Path: abs, Name: filepath.Base(abs)}, nil
			}
			return nil, fmt.Errorf("find prefix: %w", err)
		}
		return w.Prefix(opts.PrefixName)
	}
	cwd := opts.Cwd
	if cwd == "" {
		var err error
		if cwd, err = os.Getwd(); err != nil {
			return nil, fmt.Errorf("find prefix: %w", err)
		}
	}
	cwd, err := filepath.Abs(cwd)
	if err != nil {
		return nil, fmt.Errorf("find prefix: %w", err)
	}
	if IsPrefix(cwd) && isCurrentName(opts.PrefixName) {
		p := &Prefix{Path: cwd, Name: filepath.Base(cwd)}
		if IsWorkdir(filepath.Dir(cwd)) {
			p.Workdir = &Workdir{Path: filepath.Dir(cwd)}
		}
		return p, nil
	}
	if IsWorkdir(cwd) {
		return (&Workdir{Path: cwd}).Prefix(opts.PrefixName)
	}
	for dir := cwd; ; dir = filepath.Dir(dir) {
		cand := filepath.Join(dir, DefaultWorkdirName)
		if IsWorkdir(cand) {
			return (&Workdir{Path: cand}).Prefix(opts.PrefixName)
		}
		if IsPrefix(cand) && isCurrentName(opts.PrefixName) {
			return &Prefix{Path: cand, Name: DefaultWorkdirName}, nil
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}
	return nil, fmt.Errorf("find prefix: %w in %s or any folder above it (run lago init first)", ErrNotFound, cwd)
}

func isCurrentName(name string) bool { return name == "" || name == CurrentLink }

// FindWorkdir locates a workdir like Find does (WorkdirPath, else from Cwd
// upwards), for verbs that act on the workdir itself (list, set-current,
// destroy --all-prefixes).
func FindWorkdir(opts FindOptions) (*Workdir, error) {
	if opts.WorkdirPath != "" {
		return OpenWorkdir(opts.WorkdirPath)
	}
	cwd := opts.Cwd
	if cwd == "" {
		var err error
		if cwd, err = os.Getwd(); err != nil {
			return nil, fmt.Errorf("find workdir: %w", err)
		}
	}
	cwd, err := filepath.Abs(cwd)
	if err != nil {
		return nil, fmt.Errorf("find workdir: %w", err)
	}
	if IsWorkdir(cwd) {
		return &Workdir{Path: cwd}, nil
	}
	if IsPrefix(cwd) && IsWorkdir(filepath.Dir(cwd)) {
		return &Workdir{Path: filepath.Dir(cwd)}, nil
	}
	for dir := cwd; ; dir = filepath.Dir(dir) {
		if cand := filepath.Join(dir, DefaultWorkdirName); IsWorkdir(cand) {
			return &Workdir{Path: cand}, nil
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}
	return nil, fmt.Errorf("find workdir: %w in %s or any folder above it (run lago init first)", ErrNotFound, cwd)
}
