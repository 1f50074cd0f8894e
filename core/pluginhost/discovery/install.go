package discovery

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/lago-go/lago/sdk/plugininfo"
)

// PinsFile is the name of a plugin folder's pins file. Each line pins one
// binary of the folder, "<sha256>  lago-plugin-<name>", as sha256sum
// prints it, so `sha256sum -c pins.sha256` checks the folder by hand.
// Install writes it; discovery and every start refuse a binary of the
// folder that no longer hashes to its line, so an installed plugin that
// something rewrote never runs. A pin in [plugins] of lago.conf takes
// precedence for its name.
const PinsFile = "pins.sha256"

// installLock is the lock file that serialises Install and Remove in a
// folder: both rewrite the pins file from what they read.
const installLock = ".install.lock"

// UserDir returns the user plugin folder, $XDG_DATA_HOME/lago/plugins
// (default ~/.local/share/lago/plugins): where Install puts plugins and
// the third folder of DefaultSearchPath.
func UserDir() (string, error) { return UserDirFrom(os.Getenv) }

// UserDirFrom is UserDir for the environment getenv reads, so that a
// command line run with its own environment (tests) installs where that
// environment says.
func UserDirFrom(getenv func(string) string) (string, error) {
	data := getenv("XDG_DATA_HOME")
	if data == "" {
		home := getenv("HOME")
		if home == "" {
			return "", errors.New("find the user plugin folder: neither $XDG_DATA_HOME nor $HOME is set")
		}
		data = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(data, "lago", "plugins"), nil
}

// InstallOptions configure Install.
type InstallOptions struct {
	// Force replaces a different binary already installed under the name.
	Force bool
}

// Installed is a plugin binary Install put in place.
type Installed struct {
	Name   string
	Path   string
	SHA256 string
	// Version and Components are what the binary's describe printed.
	Version    string
	Components []plugininfo.ComponentInfo
	// Replaced is the hash of the different binary it replaced (Force);
	// Unchanged is set when the very same binary was installed already.
	Replaced  string
	Unchanged bool
}

// NotPluginError is a file Install refuses because it is no lago plugin:
// not a regular executable, or its describe failed or describes nothing
// lago can use.
type NotPluginError struct {
	Path    string
	Problem string
	Err     error // the describe failure, if any
}

func (e *NotPluginError) Error() string {
	msg := e.Path + " is not a lago plugin: " + e.Problem
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *NotPluginError) Unwrap() error { return e.Err }

// ExistsError is an Install that would replace a different binary of the
// same name without InstallOptions.Force (the caller says how to force it).
type ExistsError struct {
	Name string
	Path string
	// SHA256 is the installed binary's hash ("" if it is no regular
	// file), New the refused one's.
	SHA256 string
	New    string
}

func (e *ExistsError) Error() string {
	what := "another binary"
	if e.SHA256 != "" {
		what = "another binary (sha256 " + ShortHash(e.SHA256) + ", the new one is " + ShortHash(e.New) + ")"
	}
	return fmt.Sprintf("plugin %s is already installed as %s, %s", e.Name, e.Path, what)
}

// NotInstalledError is a Remove of a name the folder holds no plugin of.
type NotInstalledError struct {
	Name string
	Dir  string
	// Installed lists the names the folder does hold, sorted.
	Installed []string
}

func (e *NotInstalledError) Error() string {
	msg := fmt.Sprintf("plugin %s is not installed in %s", e.Name, e.Dir)
	if len(e.Installed) == 0 {
		return msg + " (no plugin is)"
	}
	return msg + "; installed there: " + strings.Join(e.Installed, ", ")
}

// PinsFileError is a pins file that cannot be trusted or parsed. Every
// plugin of its folder is refused until it is fixed: a pin that cannot
// be read must not turn into no pin.
type PinsFileError struct {
	File    string
	Line    int // 0 when the problem is the file itself
	Problem string
}

func (e *PinsFileError) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Problem
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Problem)
}

// ShortHash abbreviates a hex hash for listings (12 characters, as many
// tools show a hash).
func ShortHash(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

// Install copies the plugin binary src, whose file name must be
// lago-plugin-NAME, into dir (created 0755 if missing; UserDir for the
// user plugin folder) and pins its sha256 in dir's PinsFile. The copy is
// made as a temporary file of dir, synced and described before it is
// renamed into place, so the binary installed is exactly the one that
// answered describe, and no one ever sees half a binary. A file that is
// no plugin is a *NotPluginError, a different binary of the same name an
// *ExistsError unless opts.Force.
func Install(src, dir string, opts InstallOptions) (Installed, error) {
	base := filepath.Base(src)
	name, ok := strings.CutPrefix(base, Prefix)
	if !ok || !validName(name) {
		return Installed{}, fmt.Errorf("%s: a plugin binary's file name must be %sNAME, NAME made of letters, digits, '.', '_', '+' and '-' (not starting with '.'), got %q", src, Prefix, base)
	}
	in, err := os.Open(src)
	if err != nil {
		return Installed{}, fmt.Errorf("install plugin: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return Installed{}, fmt.Errorf("install plugin: %w", err)
	}
	switch {
	case !st.Mode().IsRegular():
		return Installed{}, &NotPluginError{Path: src, Problem: "not a regular file"}
	case st.Mode().Perm()&0o111 == 0:
		return Installed{}, &NotPluginError{Path: src, Problem: "not executable (chmod +x " + src + ")"}
	}
	if err := makeDir(dir); err != nil {
		return Installed{}, err
	}
	dst := filepath.Join(dir, Prefix+name)
	// A plugin in a folder others may write would be refused at every
	// start: say so now, not after copying it.
	if err := (folderChecker{}).check(dst); err != nil {
		return Installed{}, fmt.Errorf("install plugin %s into %s: %w", name, dir, err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return Installed{}, err
	}
	defer unlock()
	pins, err := readPins(dir)
	if err != nil {
		return Installed{}, fmt.Errorf("install plugin %s: %w", name, err)
	}

	tmp, sum, err := copyTemp(in, dir, name)
	if err != nil {
		return Installed{}, err
	}
	keep := false
	defer func() {
		if !keep {
			os.Remove(tmp)
		}
	}()
	d, err := describeCandidate(tmp)
	if err != nil {
		return Installed{}, &NotPluginError{Path: src, Problem: "its describe failed", Err: err}
	}
	if problem := usableDescription(d); problem != "" {
		return Installed{}, &NotPluginError{Path: src, Problem: problem}
	}
	out := Installed{Name: name, Path: dst, SHA256: sum, Version: d.Version, Components: d.Components}

	if old, err := os.Lstat(dst); err == nil {
		oldSum := ""
		if old.Mode().IsRegular() {
			if oldSum, err = FileSHA256(dst); err != nil {
				return Installed{}, fmt.Errorf("install plugin %s: hash the installed binary: %w", name, err)
			}
		}
		switch {
		case oldSum == sum:
			out.Unchanged = true
		case !opts.Force:
			return Installed{}, &ExistsError{Name: name, Path: dst, SHA256: oldSum, New: sum}
		default:
			out.Replaced = oldSum
			if oldSum == "" {
				out.Replaced = "(not a regular file)"
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return Installed{}, fmt.Errorf("install plugin %s: %w", name, err)
	}

	// The pin goes first: a crash between the two steps leaves the old
	// binary refused (or a pin of no binary), never a binary unpinned.
	if pins[name] != sum {
		pins[name] = sum
		if err := writePins(dir, pins); err != nil {
			return Installed{}, fmt.Errorf("install plugin %s: %w", name, err)
		}
	}
	if out.Unchanged {
		return out, nil
	}
	if err := os.Rename(tmp, dst); err != nil {
		return Installed{}, fmt.Errorf("install plugin %s: %w", name, err)
	}
	keep = true
	if err := syncDir(dir); err != nil {
		return Installed{}, fmt.Errorf("install plugin %s: %w", name, err)
	}
	return out, nil
}

// Removed is what Remove took away.
type Removed struct {
	Name string
	// Path is the binary removed, "" if only a pin was left of it.
	Path string
	// Pin is the removed pin, "" if the binary was not pinned.
	Pin string
}

// Remove deletes the plugin binary name (with or without the lago-plugin-
// prefix) from dir and its pin from dir's PinsFile. A name dir holds
// neither a binary nor a pin of is a *NotInstalledError listing those it
// holds.
func Remove(name, dir string) (Removed, error) {
	name = strings.TrimPrefix(name, Prefix)
	if !validName(name) {
		return Removed{}, fmt.Errorf("remove plugin: invalid plugin name %q: letters, digits, '.', '_', '+' and '-' only, not starting with '.'", name)
	}
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Removed{}, &NotInstalledError{Name: name, Dir: dir}
		}
		return Removed{}, fmt.Errorf("remove plugin %s: %w", name, err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return Removed{}, err
	}
	defer unlock()
	pins, err := readPins(dir)
	if err != nil {
		return Removed{}, fmt.Errorf("remove plugin %s: %w", name, err)
	}
	out := Removed{Name: name, Pin: pins[name]}
	dst := filepath.Join(dir, Prefix+name)
	st, err := os.Lstat(dst)
	switch {
	case err == nil && st.IsDir():
		return Removed{}, fmt.Errorf("remove plugin %s: %s is a folder, not a plugin binary", name, dst)
	case err == nil:
		out.Path = dst
	case !errors.Is(err, os.ErrNotExist):
		return Removed{}, fmt.Errorf("remove plugin %s: %w", name, err)
	case out.Pin == "":
		names, lerr := installedNames(dir)
		if lerr != nil {
			return Removed{}, fmt.Errorf("remove plugin %s: %w", name, lerr)
		}
		return Removed{}, &NotInstalledError{Name: name, Dir: dir, Installed: names}
	}
	// The binary goes first: a crash between the two steps leaves a pin of
	// no binary, never a binary unpinned.
	if out.Path != "" {
		if err := os.Remove(dst); err != nil {
			return Removed{}, fmt.Errorf("remove plugin %s: %w", name, err)
		}
	}
	if out.Pin != "" {
		delete(pins, name)
		if err := writePins(dir, pins); err != nil {
			return Removed{}, fmt.Errorf("remove plugin %s: %w", name, err)
		}
	}
	if err := syncDir(dir); err != nil {
		return Removed{}, fmt.Errorf("remove plugin %s: %w", name, err)
	}
	return out, nil
}

// validName accepts the plugin names Install and the pins file use: no
// path separators, nothing hidden, nothing a shell or sha256sum would
// quote.
func validName(name string) bool {
	if name == "" || name[0] == '.' {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '.', r == '_', r == '+', r == '-':
		default:
			return false
		}
	}
	return true
}

// installedNames lists the plugin binaries of dir, sorted.
func installedNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutPrefix(e.Name(), Prefix); ok && validName(n) && !e.IsDir() {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// makeDir creates dir and any missing folder above it 0755, whatever the
// umask: a group-writable folder would get every plugin in it refused.
func makeDir(dir string) error {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("create plugin folder %s: %w", dir, err)
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create plugin folder: %w", err)
	}
	for _, d := range missing {
		if err := os.Chmod(d, 0o755); err != nil {
			return fmt.Errorf("create plugin folder: %w", err)
		}
	}
	return nil
}

// copyTemp copies in to a new 0755 temporary file of dir, synced and
// closed, and returns its path and the sha256 of what was written.
func copyTemp(in io.Reader, dir, name string) (string, string, error) {
	f, err := os.CreateTemp(dir, "."+Prefix+name+".*.tmp")
	if err != nil {
		return "", "", fmt.Errorf("install plugin %s: %w", name, err)
	}
	fail := func(err error) (string, string, error) {
		f.Close()
		os.Remove(f.Name())
		return "", "", fmt.Errorf("install plugin %s: copy to %s: %w", name, dir, err)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), in); err != nil {
		return fail(err)
	}
	// Chmod, not the create mode: the umask must not make it group-writable.
	if err := f.Chmod(0o755); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", "", fmt.Errorf("install plugin %s: copy to %s: %w", name, dir, err)
	}
	return f.Name(), hex.EncodeToString(h.Sum(nil)), nil
}

// describeCandidate runs describe on the copy about to be installed. A
// copy just closed can still be open for writing in a child another
// goroutine is forking (golang/go#22315), which makes exec fail with
// "text file busy" for a moment: that is retried.
func describeCandidate(path string) (plugininfo.Description, error) {
	for try := 0; ; try++ {
		d, err := describePath(path)
		if err == nil || !textBusy(err) || try == 20 {
			return d, err
		}
		time.Sleep(time.Duration(try+1) * 5 * time.Millisecond)
	}
}

func describePath(path string) (plugininfo.Description, error) {
	f, err := os.Open(path)
	if err != nil {
		return plugininfo.Description{}, err
	}
	defer f.Close()
	b, err := openedBinary(path, f, "")
	if err != nil {
		return plugininfo.Description{}, err
	}
	return describe(b)
}

// usableDescription says why lago could use nothing of d, or "".
func usableDescription(d plugininfo.Description) string {
	if !slices.Contains(d.APIVersions, plugininfo.APIVersion) {
		return fmt.Sprintf("it speaks plugin API versions %v, this lago speaks %d", d.APIVersions, plugininfo.APIVersion)
	}
	if len(d.Components) == 0 {
		return "it describes no component"
	}
	return ""
}

// readPins reads dir's PinsFile into a map of plugin name to sha256; a
// missing file is no pins. The file must be a regular file only root and
// the user running lago may change, like the binaries it pins.
func readPins(dir string) (map[string]string, error) {
	path := filepath.Join(dir, PinsFile)
	pins := map[string]string{}
	lst, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return pins, nil
	}
	if err != nil {
		return nil, &PinsFileError{File: path, Problem: err.Error()}
	}
	if !lst.Mode().IsRegular() {
		return nil, &PinsFileError{File: path, Problem: "not a regular file"}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &PinsFileError{File: path, Problem: err.Error()}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, &PinsFileError{File: path, Problem: err.Error()}
	}
	if !os.SameFile(lst, st) {
		return nil, &PinsFileError{File: path, Problem: "replaced while being read"}
	}
	switch perm := st.Mode().Perm(); {
	case perm&0o022 != 0:
		return nil, &PinsFileError{File: path, Problem: "writable by others than its owner; fix with chmod go-w " + path}
	}
	if uid, ok := ownerOf(st); ok && uid != 0 && uid != os.Geteuid() {
		return nil, &PinsFileError{File: path, Problem: fmt.Sprintf("owned by uid %d, neither root nor the user running lago (uid %d)", uid, os.Geteuid())}
	}
	sc := bufio.NewScanner(f)
	lines := map[string]int{}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, sum, err := parsePinLine(line)
		if err != nil {
			return nil, &PinsFileError{File: path, Line: n, Problem: err.Error()}
		}
		if first, dup := lines[name]; dup {
			return nil, &PinsFileError{File: path, Line: n, Problem: fmt.Sprintf("second pin of %s (first on line %d)", name, first)}
		}
		lines[name] = n
		pins[name] = sum
	}
	if err := sc.Err(); err != nil {
		return nil, &PinsFileError{File: path, Problem: err.Error()}
	}
	return pins, nil
}

// parsePinLine reads "<sha256>  lago-plugin-<name>" (or "<sha256>
// *lago-plugin-<name>", sha256sum's binary mode).
func parsePinLine(line string) (name, sum string, err error) {
	sum, file, ok := strings.Cut(line, " ")
	if !ok || len(sum) != 64 || !isHex(sum) {
		return "", "", fmt.Errorf("want \"<sha256 in hex>  %s<name>\", got %q", Prefix, line)
	}
	if len(file) == 0 || (file[0] != ' ' && file[0] != '*') {
		return "", "", fmt.Errorf("want two spaces (or \" *\") between the hash and the file name, got %q", line)
	}
	name, ok = strings.CutPrefix(file[1:], Prefix)
	if !ok || !validName(name) {
		return "", "", fmt.Errorf("want a file name %s<name> of this folder, got %q", Prefix, file[1:])
	}
	return name, strings.ToLower(sum), nil
}

func isHex(s string) bool {
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return true
}

// writePins replaces dir's PinsFile with pins, atomically (temporary
// file, sync, rename); no pins left removes the file.
func writePins(dir string, pins map[string]string) error {
	path := filepath.Join(dir, PinsFile)
	if len(pins) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", path, err)
		}
		return nil
	}
	names := make([]string, 0, len(pins))
	for n := range pins {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s  %s%s\n", pins[n], Prefix, n)
	}
	f, err := os.CreateTemp(dir, "."+PinsFile+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}

// folderPin returns the pin dir's PinsFile holds for the plugin binary at
// path, "" if none (or path is no lago-plugin- file).
func folderPin(path string) (string, error) {
	name, ok := strings.CutPrefix(filepath.Base(path), Prefix)
	if !ok {
		return "", nil
	}
	pins, err := readPins(filepath.Dir(path))
	if err != nil {
		return "", err
	}
	return pins[name], nil
}
