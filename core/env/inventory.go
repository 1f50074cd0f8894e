package env

import (
	"context"
	"path/filepath"

	"github.com/lago-go/lago/core/inventory"
)

// Inventory builds the prefix's ansible inventory grouped by keys
// (inventory.DefaultKeys when none): each VM with its management address,
// the prefix's key, its ssh user and, where bootstrap did not install the
// key, its password.
func (m *Manager) Inventory(ctx context.Context, prefix string, keys []string) (*inventory.Inventory, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e, err := m.Load(prefix)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		keys = inventory.DefaultKeys()
	}
	d := inventory.SpecDefaults{VMType: m.opts.DefaultVMType, VMProvider: m.opts.DefaultProvider, SSHUser: m.opts.SSHUser}
	hosts := make([]inventory.Host, 0, len(e.VMs))
	for _, v := range e.VMs {
		sm, err := inventory.SpecMap(v, d)
		if err != nil {
			return nil, err
		}
		h := inventory.Host{
			Name: v.Name, Spec: sm, KeyFile: e.KeyPath(), User: v.SSHUser, KeyInstalled: v.Bootstrapped,
			// ansible checks host keys: the prefix's own known_hosts
			// knows its guests (which reuse other prefixes' addresses).
			Vars: map[string]string{"ansible_ssh_common_args": "-o UserKnownHostsFile=" + filepath.Join(e.Path, "known_hosts")},
		}
		if h.User == "" {
			h.User = m.opts.SSHUser
		}
		if t, err := m.sshTarget(e, v); err == nil {
			h.Address, h.Password = t.Host, t.Password
		}
		hosts = append(hosts, h)
	}
	return inventory.Build(hosts, keys)
}
