package env

import (
	"context"
	"errors"
	"fmt"
	"io"

	lagossh "github.com/lago-go/lago/core/ssh"

	"github.com/lago-go/lago/core/errs"
)

// SSHCommandLine is implemented by an SSH that can hand the guest's login
// shell a command line as it is, the way `ssh host CMD...` does. SSH.Run
// quotes each word of an argv instead, which is what programmatic callers
// (deploy, the host service's Exec, the Go API) want and what a user's
// `lago shell vm0 'ls | wc -l'` does not.
type SSHCommandLine interface {
	// RunCommandLine runs line in the guest's shell (an interactive shell
	// when line is empty) and returns its exit code; err is set only when
	// it could not be run.
	RunCommandLine(ctx context.Context, t SSHTarget, line string, stdin io.Reader, stdout, stderr io.Writer) (int, error)
}

var _ SSHCommandLine = SSHClient{}

// Shell runs argv on the VM (an interactive shell when argv is empty) and
// returns the remote exit code. Each word reaches the command as it is
// (quoted for the remote shell). vm may be a unique suffix of a VM name.
// err is set only when the command could not be run at all.
func (m *Manager) Shell(ctx context.Context, prefix, vm string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	return m.shell(ctx, prefix, vm, func(ssh SSH, t SSHTarget) (int, error) {
		return ssh.Run(ctx, t, argv, stdin, stdout, stderr)
	})
}

// ShellCommandLine runs line with the VM's shell, which parses it: pipes,
// redirections, variables and exit all work as with `ssh host line`. An
// empty line opens an interactive shell, as ssh does. It is the CLI's
// `lago shell VM CMD...`, whose words are joined into line; callers with
// an argv should use Shell.
func (m *Manager) ShellCommandLine(ctx context.Context, prefix, vm, line string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	cl, ok := m.deps.SSH.(SSHCommandLine)
	if line != "" && m.deps.SSH != nil && !ok {
		return -1, fmt.Errorf("shell: the ssh client %T cannot run a command line", m.deps.SSH)
	}
	return m.shell(ctx, prefix, vm, func(ssh SSH, t SSHTarget) (int, error) {
		if line == "" {
			return ssh.Run(ctx, t, nil, stdin, stdout, stderr)
		}
		return cl.RunCommandLine(ctx, t, line, stdin, stdout, stderr)
	})
}

// shell resolves vm and calls run with its ssh target, explaining a
// failure by the VM's state when it is off.
func (m *Manager) shell(ctx context.Context, prefix, vm string, run func(SSH, SSHTarget) (int, error)) (int, error) {
	e, err := m.Load(prefix)
	if err != nil {
		return 0, err
	}
	t, err := m.Target(e, vm)
	if err != nil {
		return 0, err
	}
	if m.deps.SSH == nil {
		return 0, errors.New("shell: no ssh client configured")
	}
	code, err := run(m.deps.SSH, t)
	if err != nil {
		if st := m.stateOf(ctx, e, t.VM); isOff(st) {
			return code, errs.User(&NotRunningError{VM: t.VM, State: st})
		}
		return code, fmt.Errorf("shell on vm %s: %w", t.VM, err)
	}
	return code, nil
}

// RunCommandLine implements SSHCommandLine: the same connection path as
// Run (the VM's mux when one runs, else a direct connection that starts
// one), with line sent unquoted.
func (c SSHClient) RunCommandLine(ctx context.Context, t SSHTarget, line string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if line == "" {
		return c.Run(ctx, t, nil, stdin, stdout, stderr)
	}
	return c.run(ctx, t, func(cl *lagossh.Client) (int, error) {
		return cl.RunCommand(ctx, line, stdin, stdout, stderr)
	})
}

// stateOf asks a VM's provider for its state ("" when that fails), to
// explain a failed connection.
func (m *Manager) stateOf(ctx context.Context, e *Environment, vm string) string {
	v := e.VM(vm)
	if v == nil {
		return ""
	}
	p, err := m.provider(ctx, m.vmProvider(v))
	if err != nil {
		return ""
	}
	pv, err := toProviderVM(e, v)
	if err != nil {
		return ""
	}
	st, err := p.VMState(ctx, e.Ref(), pv)
	if err != nil {
		return ""
	}
	return st
}

// Target resolves a VM by name or unique suffix and says how to reach it
// over ssh, for verbs such as copy-to-vm and deploy.
func (m *Manager) Target(e *Environment, vm string) (SSHTarget, error) {
	v, err := findVM(e, vm)
	if err != nil {
		return SSHTarget{}, err
	}
	return m.sshTarget(e, v)
}

// Console attaches in and out to the VM's serial console through its
// provider until ctx ends or in reaches EOF. vm may be a unique suffix.
func (m *Manager) Console(ctx context.Context, prefix, vm string, in io.Reader, out io.Writer) error {
	e, err := m.Load(prefix)
	if err != nil {
		return err
	}
	v, err := findVM(e, vm)
	if err != nil {
		return err
	}
	p, err := m.provider(ctx, m.vmProvider(v))
	if err != nil {
		return err
	}
	pv, err := toProviderVM(e, v)
	if err != nil {
		return err
	}
	if err := p.Console(ctx, e.Ref(), pv, in, out); err != nil {
		if st := m.stateOf(ctx, e, v.Name); isOff(st) {
			return userErrorf("vm %s is not running (%s): start it with lago start", v.Name, st)
		}
		return fmt.Errorf("console of vm %s: %w", v.Name, err)
	}
	return nil
}
