package env

import (
	"context"
	"fmt"
	"sync"
)

// Snapshot takes a snapshot called name of every VM of the prefix,
// running or stopped, in parallel.
func (m *Manager) Snapshot(ctx context.Context, prefix, name string) error {
	if name == "" {
		return userErrorf("snapshot name is empty")
	}
	return m.eachVM(ctx, prefix, "snapshot", func(ctx context.Context, e *Environment, p providerHandle, b boundVM) error {
		return p.Snapshot(ctx, e.Ref(), b.pv, name)
	})
}

// Revert reverts every VM of the prefix to its snapshot called name, in
// parallel.
func (m *Manager) Revert(ctx context.Context, prefix, name string) error {
	if name == "" {
		return userErrorf("snapshot name is empty")
	}
	return m.eachVM(ctx, prefix, "revert", func(ctx context.Context, e *Environment, p providerHandle, b boundVM) error {
		// A kept ssh connection belongs to the VM's present, which the
		// revert replaces.
		m.releaseSSH(ctx, e, []string{b.spec.Name})
		return p.Revert(ctx, e.Ref(), b.pv, name)
	})
}

// ListSnapshots returns each VM's snapshot names, oldest first.
func (m *Manager) ListSnapshots(ctx context.Context, prefix string) (map[string][]string, error) {
	var mu sync.Mutex
	out := map[string][]string{}
	err := m.eachVM(ctx, prefix, "list snapshots of", func(ctx context.Context, e *Environment, p providerHandle, b boundVM) error {
		snaps, err := p.ListSnapshots(ctx, e.Ref(), b.pv)
		if err != nil {
			return err
		}
		mu.Lock()
		out[b.spec.Name] = snapshotNames(snaps)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachVM runs fn for every VM of the prefix in parallel, naming the VM
// and the action in errors.
func (m *Manager) eachVM(ctx context.Context, prefix, action string, fn func(context.Context, *Environment, providerHandle, boundVM) error) error {
	e, err := m.Load(prefix)
	if err != nil {
		return err
	}
	bound, err := m.bindVMs(e, e.VMs)
	if err != nil {
		return err
	}
	var instances []string
	for _, b := range bound {
		instances = append(instances, b.instance)
	}
	provs, err := m.resolveAll(ctx, instances)
	if err != nil {
		return err
	}
	return parallel(ctx, len(bound), 0, func(ctx context.Context, i int) error {
		b := bound[i]
		if err := fn(ctx, e, provs[b.instance], b); err != nil {
			return fmt.Errorf("%s vm %s: %w", action, b.spec.Name, err)
		}
		return nil
	})
}
