package discovery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// UntrustedError says why a plugin binary is refused: someone other than
// root and the user running lago could change what it runs, through the
// file itself or through a folder above it.
type UntrustedError struct {
	// Path is the file or folder at fault.
	Path string
	// Problem says what is wrong with it ("binary is group-writable").
	Problem string
	// Fix is a command that fixes it.
	Fix string
}

func (e *UntrustedError) Error() string {
	if e.Fix == "" {
		return e.Problem
	}
	return e.Problem + "; fix with " + e.Fix
}

// PinMismatchError is a plugin binary whose sha256 is not the one pinned
// for it in [plugins].
type PinMismatchError struct {
	Path   string
	SHA256 string // what the binary hashes to
	Pinned string
}

func (e *PinMismatchError) Error() string {
	return fmt.Sprintf("sha256 %s does not match the pinned %s", e.SHA256, e.Pinned)
}

// checkFile refuses a binary that another user could rewrite: writable by
// its group or by everyone, or owned by someone other than root and the
// user running lago (an owner can always chmod it back). st must describe
// the file that will run (an fstat of the opened file at start).
func checkFile(path string, st os.FileInfo) error {
	mode := st.Mode()
	if !mode.IsRegular() {
		return &UntrustedError{Path: path, Problem: "not a regular file"}
	}
	switch perm := mode.Perm(); {
	case perm&0o002 != 0:
		return &UntrustedError{Path: path, Problem: "binary is world-writable", Fix: "chmod o-w " + path}
	case perm&0o020 != 0:
		return &UntrustedError{Path: path, Problem: "binary is group-writable", Fix: "chmod g-w " + path}
	case perm&0o111 == 0:
		return &UntrustedError{Path: path, Problem: "binary is not executable", Fix: "chmod +x " + path}
	}
	if uid, ok := ownerOf(st); ok && uid != 0 && uid != os.Geteuid() {
		return &UntrustedError{Path: path,
			Problem: fmt.Sprintf("binary is owned by uid %d, neither root nor the user running lago (uid %d)", uid, os.Geteuid()),
			Fix:     "chown root " + path}
	}
	return nil
}

// folderChecker refuses a binary below a folder that its group or everyone
// may write without the sticky bit, or that another user (not root) owns:
// they could rename another binary (or folder, or link) into its place. With the sticky bit (/tmp) only the owner of an entry
// may rename or remove it, and the binary's own owner is checked. Results
// are remembered per folder, so a discovery stats each folder once.
type folderChecker map[string]error

// check looks at every folder above path, both as written and with
// symbolic links resolved (a link's folder and its target's folders are
// all ways to swap what path runs).
func (fc folderChecker) check(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("check the folders of %s: %w", path, err)
	}
	dirs := ancestors(filepath.Dir(abs))
	if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
		dirs = append(dirs, ancestors(filepath.Dir(real))...)
	}
	for _, d := range dirs {
		err, done := fc[d]
		if !done {
			err = checkFolder(d, path)
			fc[d] = err
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func checkFolder(dir, binary string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("check folder %s of %s: %w", dir, binary, err)
	}
	sticky := st.Mode()&os.ModeSticky != 0
	switch perm := st.Mode().Perm(); {
	case perm&0o002 != 0 && !sticky:
		return &UntrustedError{Path: dir,
			Problem: "folder " + dir + " is writable by others without the sticky bit",
			Fix:     "chmod o-w " + dir}
	case perm&0o020 != 0 && !sticky:
		// A group member could rename a link to any root-owned
		// executable into the binary's place, and every check of the
		// file itself would pass.
		return &UntrustedError{Path: dir,
			Problem: "folder " + dir + " is writable by its group without the sticky bit",
			Fix:     "chmod g-w " + dir}
	}
	if uid, ok := ownerOf(st); ok && uid != 0 && uid != os.Geteuid() {
		return &UntrustedError{Path: dir,
			Problem: fmt.Sprintf("folder %s is owned by uid %d, neither root nor the user running lago (uid %d)", dir, uid, os.Geteuid()),
			Fix:     "chown root " + dir}
	}
	return nil
}

// ancestors returns dir and every folder above it, dir first.
func ancestors(dir string) []string {
	var out []string
	for {
		out = append(out, dir)
		parent := filepath.Dir(dir)
		if parent == dir {
			return out
		}
		dir = parent
	}
}

// CheckTrust refuses the plugin binary at path (with an *UntrustedError)
// when someone other than root and the user running lago could change it
// or swap it: see checkFile and folderChecker. Discovery calls it on the
// path; OpenBinary repeats it on the opened file.
func CheckTrust(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if err := checkFile(path, st); err != nil {
		return err
	}
	return folderChecker{}.check(path)
}

// Binary is a plugin binary opened to be run. Its checks (trust, pin)
// were made on the open file, and Command runs that very file, so
// replacing the file at Path between the check and the start changes
// nothing.
type Binary struct {
	// Path is where the binary was found; the process's argv[0].
	Path string
	// File is the open binary, Stat its fstat.
	File *os.File
	Stat os.FileInfo
	// SHA256 is the hash of File, set when a pin was checked.
	SHA256 string
}

// OpenBinary opens the plugin binary at path, checks that it is trusted
// (CheckTrust, with the file's own fstat) and that its content hashes to
// pin (a *PinMismatchError if not). An empty pin means the one of path's
// folder's PinsFile, so an installed plugin is checked at every start
// whoever starts it; no pin there means no check. The caller runs it
// with Command and closes it once the process started.
func OpenBinary(path, pin string) (*Binary, error) {
	if err := (folderChecker{}).check(path); err != nil {
		return nil, err
	}
	if pin == "" {
		var err error
		if pin, err = folderPin(path); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	b, err := openedBinary(path, f, pin)
	if err != nil {
		f.Close()
		return nil, err
	}
	return b, nil
}

func openedBinary(path string, f *os.File, pin string) (*Binary, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkFile(path, st); err != nil {
		return nil, err
	}
	b := &Binary{Path: path, File: f, Stat: st}
	if pin != "" {
		// ReadAt does not move the file offset: nothing depends on it,
		// but the open file stays as it was opened.
		sum, err := hashReader(io.NewSectionReader(f, 0, 1<<62))
		if err != nil {
			return nil, fmt.Errorf("hash %s: %w", path, err)
		}
		b.SHA256 = sum
		if !strings.EqualFold(sum, pin) {
			return nil, &PinMismatchError{Path: path, SHA256: sum, Pinned: pin}
		}
	}
	return b, nil
}

// Command returns a command running the opened binary with args. On Linux
// it executes /proc/self/fd/3, the binary passed as the child's first extra
// file (execve resolves the path in the child, where it names that open
// file), with argv[0] set to Path. The child keeps that read-only
// descriptor of its own binary open; it could read the binary anyway.
// Callers must not set ExtraFiles themselves.
func (b *Binary) Command(args ...string) *exec.Cmd {
	return b.fdCommand(exec.Command(b.Path, args...))
}

// CommandContext is Command with a context that kills the process.
func (b *Binary) CommandContext(ctx context.Context, args ...string) *exec.Cmd {
	return b.fdCommand(exec.CommandContext(ctx, b.Path, args...))
}

func (b *Binary) fdCommand(cmd *exec.Cmd) *exec.Cmd {
	if p, ok := execPath(0); ok {
		cmd.Path = p
		cmd.ExtraFiles = []*os.File{b.File}
	}
	return cmd
}

// Close closes the opened binary; a process started from it keeps its own
// copy.
func (b *Binary) Close() error { return b.File.Close() }

// FileSHA256 returns the hex sha256 of the file at path.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return hashReader(f)
}

func hashReader(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
