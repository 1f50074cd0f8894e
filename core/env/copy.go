package env

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/lago-go/lago/core/errs"
	lagossh "github.com/lago-go/lago/core/ssh"
)

// Copies between this host and a VM (copy-to-vm, copy-from-vm, collect,
// the host service's CopyTo/CopyFrom, the Go API) all go through
// core/ssh's Push and Pull: one implementation, streamed in constant
// memory, every name from the guest confined to the destination, a file
// under its final name only once complete. They reach the VM like Shell
// does, through its kept connection when ssh_persist is on.

// ErrNoSuchPath is matched by a *PathError for a path that does not exist.
var ErrNoSuchPath = errors.New("no such file or folder")

// PathError is a path of a copy that does not exist: in VM, or on this
// host when Host is set. errors.Is(err, ErrNoSuchPath) matches it.
type PathError struct {
	VM   string
	Path string
	Host bool
	Err  error
}

func (e *PathError) Error() string {
	if e.Host {
		return fmt.Sprintf("%s on this host (copy with vm %s): %v", e.Path, e.VM, e.Err)
	}
	return fmt.Sprintf("vm %s: %s: %v", e.VM, e.Path, e.Err)
}

func (e *PathError) Unwrap() error { return e.Err }

// SSHConn is implemented by an SSH that can run several commands on one
// connection to a VM: a copy's probe and stream then log in once (or not
// at all, through the VM's kept connection). Without it each command of a
// copy is an SSH.Run of its own.
type SSHConn interface {
	// WithConn calls do with a Runner whose commands share one
	// connection to t, and returns do's error.
	WithConn(ctx context.Context, t SSHTarget, do func(r lagossh.Runner) error) error
}

var _ SSHConn = SSHClient{}

// WithConn implements SSHConn on the connection path of Run: the VM's
// mux when one serves, else a direct connection that starts one.
func (c SSHClient) WithConn(ctx context.Context, t SSHTarget, do func(r lagossh.Runner) error) error {
	_, err := c.run(ctx, t, func(cl *lagossh.Client) (int, error) { return 0, do(cl) })
	return err
}

// sshRunner is a Runner on SSH.Run, for an SSH without SSHConn.
type sshRunner struct {
	ssh SSH
	t   SSHTarget
}

func (r sshRunner) Run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	return r.ssh.Run(ctx, r.t, argv, stdin, stdout, stderr)
}

// CopyTo copies the local file or folder to remote in vm (a unique suffix
// of a VM name will do): into remote when it is a folder, else as remote,
// whose parent must exist. Modes and times are kept. A missing local path
// or remote parent is a *PathError.
func (m *Manager) CopyTo(ctx context.Context, prefix, vm, local, remote string) error {
	e, err := m.Load(prefix)
	if err != nil {
		return err
	}
	name := vm
	if v, err := findVM(e, vm); err == nil {
		name = v.Name
	}
	if _, err := os.Stat(local); errors.Is(err, fs.ErrNotExist) {
		return errs.User(&PathError{VM: name, Path: local, Host: true, Err: ErrNoSuchPath})
	}
	return m.withGuest(ctx, e, vm, func(r lagossh.Runner) error {
		return lagossh.Push(ctx, r, local, remote)
	})
}

// CopyFrom copies the file or folder remote of vm to local on this host:
// into local when it is a folder, else as local, whose parent must exist.
// Modes and times are kept; nothing appears under the final name unless
// the whole copy succeeds. A missing remote path or local parent is a
// *PathError.
func (m *Manager) CopyFrom(ctx context.Context, prefix, vm, remote, local string) error {
	e, err := m.Load(prefix)
	if err != nil {
		return err
	}
	name := vm
	if v, err := findVM(e, vm); err == nil {
		name = v.Name
	}
	if st, err := os.Stat(local); err != nil || !st.IsDir() {
		if parent := filepath.Dir(local); !isDir(parent) {
			return errs.User(&PathError{VM: name, Path: parent, Host: true, Err: ErrNoSuchPath})
		}
	}
	return m.withGuest(ctx, e, vm, func(r lagossh.Runner) error {
		return lagossh.CopyFrom(ctx, r, remote, local, lagossh.PullOptions{Skipped: m.skippedLogger("copy-from-vm", name)})
	})
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// skippedLogger logs what a copy from vm did not write.
func (m *Manager) skippedLogger(verb, vm string) func(name, why string) {
	return func(name, why string) {
		m.log().Warn(verb+": not copied", "vm", vm, "entry", name, "reason", why)
	}
}

// withGuest calls do with a Runner on vm's connection. Its missing paths
// become *PathError naming the VM; a failure on a VM that is off says so.
func (m *Manager) withGuest(ctx context.Context, e *Environment, vm string, do func(r lagossh.Runner) error) error {
	t, err := m.Target(e, vm)
	if err != nil {
		return err
	}
	if m.deps.SSH == nil {
		return errors.New("copy: no ssh client configured")
	}
	if c, ok := m.deps.SSH.(SSHConn); ok {
		err = c.WithConn(ctx, t, do)
	} else {
		err = do(sshRunner{ssh: m.deps.SSH, t: t})
	}
	if err == nil {
		return nil
	}
	if pe := pathError(t.VM, err); pe != nil {
		return pe
	}
	if st := m.stateOf(ctx, e, t.VM); isOff(st) {
		return errs.User(&NotRunningError{VM: t.VM, State: st})
	}
	return fmt.Errorf("vm %s: %w", t.VM, err)
}

// pathError turns core/ssh's missing path into a *PathError naming vm,
// or returns nil.
func pathError(vm string, err error) error {
	var nf *lagossh.NotFoundError
	if !errors.As(err, &nf) {
		return nil
	}
	return errs.User(&PathError{VM: vm, Path: nf.Path, Host: !nf.Remote, Err: ErrNoSuchPath})
}
