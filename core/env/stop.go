package env

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// vmStates queries the state of every VM of e in parallel. A VM whose
// state cannot be read is reported "unknown" (and counts as running for
// the purpose of keeping its networks up).
func (m *Manager) vmStates(ctx context.Context, e *Environment, provs map[string]providerHandle, bound []boundVM) map[string]string {
	var mu sync.Mutex
	out := make(map[string]string, len(bound))
	_ = parallel(ctx, len(bound), 0, func(ctx context.Context, i int) error {
		st, err := provs[bound[i].instance].VMState(ctx, e.Ref(), bound[i].pv)
		if err != nil || st == "" {
			st = "unknown"
		}
		mu.Lock()
		out[bound[i].spec.Name] = st
		mu.Unlock()
		return nil
	})
	return out
}

// Stop powers off the named VMs (all when vms is empty) in parallel, then
// stops the networks they use that no other running VM uses.
func (m *Manager) Stop(ctx context.Context, prefix string, vms []string) error {
	e, err := m.Load(prefix)
	if err != nil {
		return err
	}
	return m.stop(ctx, e, vms)
}

func (m *Manager) stop(ctx context.Context, e *Environment, vms []string) error {
	sel, err := selectVMs(e, vms)
	if err != nil {
		return err
	}
	all, err := m.bindVMs(e, e.VMs)
	if err != nil {
		return err
	}
	provs, err := m.resolveAll(ctx, m.providersOf(e))
	if err != nil {
		return err
	}
	states := m.vmStates(ctx, e, provs, all)
	stopping := map[string]bool{}
	for _, vm := range sel {
		stopping[vm.Name] = true
	}
	var targets []boundVM
	for _, b := range all {
		if stopping[b.spec.Name] && !isOff(states[b.spec.Name]) {
			targets = append(targets, b)
		}
	}
	var names []string
	for _, b := range targets {
		names = append(names, b.spec.Name)
	}
	if len(names) > 0 {
		m.releaseSSH(ctx, e, names)
	}
	errVMs := parallel(ctx, len(targets), 0, func(ctx context.Context, i int) error {
		b := targets[i]
		if err := provs[b.instance].StopVM(ctx, e.Ref(), b.pv); err != nil {
			return fmt.Errorf("stop vm %s: %w", b.spec.Name, err)
		}
		return nil
	})

	// A net stays up while a VM this call does not stop is on it (and
	// not off), on the same provider.
	inUse := map[netOn]bool{}
	for _, vm := range e.VMs {
		if stopping[vm.Name] || isOff(states[vm.Name]) {
			continue
		}
		for _, nic := range vm.NICs {
			inUse[netOn{nic.Net, m.vmProvider(vm)}] = true
		}
	}
	var candidates []netOn
	if len(vms) == 0 {
		for _, n := range e.Nets {
			for _, inst := range m.netProviders(e, n.Name) {
				candidates = append(candidates, netOn{n.Name, inst})
			}
		}
	} else {
		candidates = m.usedNets(sel)
	}
	var netTargets []netOn
	for _, n := range candidates {
		if !inUse[n] && e.Net(n.net) != nil {
			netTargets = append(netTargets, n)
		}
	}
	errNets := parallel(ctx, len(netTargets), 0, func(ctx context.Context, i int) error {
		n := netTargets[i]
		pn := toProviderNet(e, e.Net(n.net))
		p := provs[n.instance]
		if st, err := p.NetworkState(ctx, e.Ref(), pn); err == nil && st == stateDown {
			return nil
		}
		if err := p.StopNetwork(ctx, e.Ref(), pn); err != nil {
			return fmt.Errorf("stop network %s: %w", n.net, err)
		}
		return nil
	})
	if err := errors.Join(errVMs, errNets); err != nil {
		return fmt.Errorf("stop prefix %s: %w", e.Path, err)
	}
	return nil
}

// Shutdown shuts the named VMs (all when vms is empty) down gracefully,
// or reboots them, in parallel: the provider's ShutdownVM (ACPI) first,
// `poweroff`/`reboot` over ssh when that fails, waiting up to
// Options.ShutdownTimeout.
func (m *Manager) Shutdown(ctx context.Context, prefix string, vms []string, reboot bool) error {
	e, _, bound, err := m.loadBound(prefix, vms)
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
	timeout := m.opts.ShutdownTimeout
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	states := m.vmStates(sctx, e, provs, bound)
	err = parallel(sctx, len(bound), 0, func(ctx context.Context, i int) error {
		b := bound[i]
		if isOff(states[b.spec.Name]) {
			return nil
		}
		p := provs[b.instance]
		var before string
		if reboot {
			before = m.bootID(ctx, e, b)
		}
		m.releaseSSH(ctx, e, []string{b.spec.Name})
		// Released again at the end: the boot id reads and an ssh
		// poweroff may have started a mux while the old boot answered.
		defer m.releaseSSH(ctx, e, []string{b.spec.Name})
		perr := p.ShutdownVM(ctx, e.Ref(), b.pv, reboot, timeout)
		if perr != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("shut down vm %s: %w", b.spec.Name, perr)
			}
			m.log().Info("provider shutdown failed; trying over ssh", "vm", b.spec.Name, "err", perr)
			if err := m.sshPowerOff(ctx, e, p, b, reboot); err != nil {
				return fmt.Errorf("shut down vm %s: provider: %w; over ssh: %w", b.spec.Name, perr, err)
			}
		}
		if !reboot || m.deps.SSH == nil {
			return nil
		}
		return m.waitRebooted(ctx, e, b, before, timeout)
	})
	if err != nil {
		return fmt.Errorf("shut down prefix %s: %w", e.Path, err)
	}
	return nil
}

// bootIDPath is the kernel's random id of the running boot: it differs
// after every reboot, unlike uptime, which after a quick reboot can be
// back where it was.
const bootIDPath = "/proc/sys/kernel/random/boot_id"

// bootIDWait bounds reading the boot id before a reboot: a guest that
// does not answer quickly is rebooted anyway, and then only waited for.
const bootIDWait = 5 * time.Second

// bootID reads the guest's boot id over ssh, or "" when it cannot.
func (m *Manager) bootID(ctx context.Context, e *Environment, b boundVM) string {
	if m.deps.SSH == nil {
		return ""
	}
	t, err := m.sshTarget(e, b.spec)
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, bootIDWait)
	defer cancel()
	var out bytes.Buffer
	code, err := m.deps.SSH.Run(ctx, t, []string{"cat", bootIDPath}, nil, &out, io.Discard)
	if err != nil || code != 0 {
		return ""
	}
	return strings.TrimSpace(out.String())
}

// waitRebooted returns when the guest answers ssh again from a new boot:
// the next verb (shell, deploy) must find it usable, and an ACPI reboot
// leaves the old boot's sshd answering for a few seconds. When the boot
// id before the reboot is unknown, answering ssh is all it can check.
func (m *Manager) waitRebooted(ctx context.Context, e *Environment, b boundVM, before string, timeout time.Duration) error {
	t, err := m.sshTarget(e, b.spec)
	if err != nil {
		return err
	}
	for {
		if err := m.deps.SSH.WaitReady(ctx, t); err != nil {
			return fmt.Errorf("reboot vm %s: no ssh answer within %s: %w", b.spec.Name, timeout, err)
		}
		if before == "" {
			return nil
		}
		now := m.bootID(ctx, e, b)
		if now != "" && now != before {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("reboot vm %s: still the same boot (%s) after %s: %w", b.spec.Name, before, timeout, ctx.Err())
		case <-time.After(rebootPoll):
		}
	}
}

// rebootPoll is how often waitRebooted asks for the boot id again.
const rebootPoll = 200 * time.Millisecond

// sshPowerOff runs poweroff (or reboot) in the guest and, for poweroff,
// waits until the provider sees the VM off.
func (m *Manager) sshPowerOff(ctx context.Context, e *Environment, p providerHandle, b boundVM, reboot bool) error {
	if m.deps.SSH == nil {
		return errors.New("no ssh client configured")
	}
	t, err := m.sshTarget(e, b.spec)
	if err != nil {
		return err
	}
	cmd := "poweroff"
	if reboot {
		cmd = "reboot"
	}
	// The connection may drop as the guest goes down, so the exit code and
	// a run error are both expected; the state check below decides.
	_, runErr := m.deps.SSH.Run(ctx, t, []string{cmd}, nil, nil, nil)
	if reboot {
		return runErr
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := p.VMState(ctx, e.Ref(), b.pv)
		if err == nil && isOff(st) {
			return nil
		}
		select {
		case <-ctx.Done():
			if runErr != nil {
				return fmt.Errorf("%w (poweroff: %v)", ctx.Err(), runErr)
			}
			return fmt.Errorf("vm still %s: %w", st, ctx.Err())
		case <-tick.C:
		}
	}
}

// Cleanup stops everything of the prefix and removes its `initialized`
// marker; the uuid (and so its leases) stays.
func (m *Manager) Cleanup(ctx context.Context, prefix string) error {
	e, err := loadLenient(prefix)
	if err != nil {
		return err
	}
	if e.Complete && len(e.VMs)+len(e.Nets) > 0 {
		if err := m.stop(ctx, e, nil); err != nil {
			return fmt.Errorf("clean up prefix %s: %w", e.Path, err)
		}
	}
	if err := removeIfExists(filepath.Join(e.Path, fileInitialized)); err != nil {
		return fmt.Errorf("clean up prefix %s: %w", e.Path, err)
	}
	return nil
}
