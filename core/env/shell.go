package env

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Shell runs argv on the VM (an interactive shell when argv is empty) and
// returns the remote exit code. vm may be a unique suffix of a VM name.
// err is set only when the command could not be run at all.
func (m *Manager) Shell(ctx context.Context, prefix, vm string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
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
	code, err := m.deps.SSH.Run(ctx, t, argv, stdin, stdout, stderr)
	if err != nil {
		if st := m.stateOf(ctx, e, t.VM); isOff(st) {
			return code, userErrorf("vm %s is not running (%s): start it with lago start", t.VM, st)
		}
		return code, fmt.Errorf("shell on vm %s: %w", t.VM, err)
	}
	return code, nil
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
