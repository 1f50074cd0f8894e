package env

import (
	"context"
	"errors"

	"github.com/lago-go/lago/core/spec"
)

// RootPassword is the root password of vm as status shows it: the one
// bootstrap set, else its template's, else the configured default.
func (m *Manager) RootPassword(vm *spec.VM) string {
	return rootPassword(vm, m.opts.DefaultRootPassword)
}

// WaitSSH waits until vm of the prefix accepts an ssh login, or ctx ends.
func (m *Manager) WaitSSH(ctx context.Context, prefix, vm string) error {
	e, err := m.Load(prefix)
	if err != nil {
		return err
	}
	t, err := m.Target(e, vm)
	if err != nil {
		return err
	}
	if m.deps.SSH == nil {
		return errors.New("wait for ssh: no ssh client configured")
	}
	return m.deps.SSH.WaitReady(ctx, t)
}
