package provider

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	"libvirt.org/go/libvirtxml"
)

// quiescedMark in a snapshot's description records that the guest's
// filesystems were frozen when it was taken, so Revert thaws them.
const quiescedMark = "lago: quiesced"

// Snapshot takes a libvirt internal snapshot (qcow2), which works for
// running VMs (disks plus memory) and for stopped ones (disks only). A VM
// never started is defined first. Internal snapshots cannot use libvirt's
// QUIESCE flag, so when the guest agent answers, the filesystems are frozen
// around the snapshot with virDomainFSFreeze/FSThaw; without an agent the
// snapshot is taken as is (the memory state keeps a running guest
// consistent anyway).
func (p *Provider) Snapshot(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, name string) error {
	c, cfg, dt, warns, err := p.connectTyped(ctx)
	if err != nil {
		return err
	}
	label := vmLabel(env, vm)
	if name == "" {
		return withWarnings(warns, errorDiag(label+": a snapshot needs a name", nil))
	}
	st, _, err := p.ensureDefined(ctx, c, cfg, dt, env, vm)
	if err != nil {
		return withWarnings(warns, err)
	}
	dom := domainName(env.GetUuid(), vm.GetName())
	snaps, err := p.snapshots(c, dom)
	if err != nil {
		return withWarnings(warns, errorDiag(label+": cannot list snapshots", err))
	}
	for _, s := range snaps {
		if s.GetName() == name {
			return withWarnings(warns, errorDiag(fmt.Sprintf("%s: snapshot %q already exists", label, name), nil))
		}
	}
	frozen := false
	if st == DomainRunning {
		if err := c.FSFreeze(dom); err == nil {
			frozen = true
		} else {
			p.log.Debug("no filesystem freeze, snapshot without quiescing", "vm", vm.GetName(), "error", err)
		}
	}
	desc := "lago snapshot"
	if frozen {
		desc = quiescedMark
	}
	x, err := (&libvirtxml.DomainSnapshot{Name: name, Description: desc}).Marshal()
	if err == nil {
		err = c.CreateSnapshot(dom, x)
	}
	if frozen {
		if terr := c.FSThaw(dom); terr != nil {
			p.log.Warn("thaw after snapshot failed", "vm", vm.GetName(), "error", terr)
		}
	}
	if err != nil {
		return withWarnings(warns, errorDiag(fmt.Sprintf("%s: cannot take snapshot %q", label, name), err))
	}
	return withWarnings(warns, nil)
}

// Revert returns the VM to a snapshot, including its running state.
func (p *Provider) Revert(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, name string) error {
	c, _, _, warns, err := p.connect(ctx)
	if err != nil {
		return err
	}
	label := vmLabel(env, vm)
	dom := domainName(env.GetUuid(), vm.GetName())
	xs, err := c.ListSnapshots(dom)
	if errors.Is(err, ErrNotFound) {
		return withWarnings(warns, errorDiag(fmt.Sprintf("%s: no snapshot %q (the VM is not defined)", label, name), nil))
	}
	if err != nil {
		return withWarnings(warns, errorDiag(label+": cannot list snapshots", err))
	}
	var snap *libvirtxml.DomainSnapshot
	for _, x := range xs {
		var s libvirtxml.DomainSnapshot
		if s.Unmarshal(x) == nil && s.Name == name {
			snap = &s
		}
	}
	if snap == nil {
		return withWarnings(warns, errorDiag(fmt.Sprintf("%s: no snapshot %q", label, name), nil))
	}
	if err := c.RevertSnapshot(dom, name); err != nil {
		return withWarnings(warns, errorDiag(fmt.Sprintf("%s: cannot revert to snapshot %q", label, name), err))
	}
	if strings.Contains(snap.Description, quiescedMark) {
		if st, err := c.DomainState(dom); err == nil && st == DomainRunning {
			if err := c.FSThaw(dom); err != nil {
				p.log.Warn("thaw after revert failed", "vm", vm.GetName(), "error", err)
			}
		}
	}
	return withWarnings(warns, nil)
}

// ListSnapshots lists the VM's snapshots, oldest first; an undefined VM
// has none.
func (p *Provider) ListSnapshots(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) ([]*providerv1.Snapshot, error) {
	c, _, _, warns, err := p.connect(ctx)
	if err != nil {
		return nil, err
	}
	out, err := p.snapshots(c, domainName(env.GetUuid(), vm.GetName()))
	if err != nil {
		return nil, withWarnings(warns, errorDiag(vmLabel(env, vm)+": cannot list snapshots", err))
	}
	return out, withWarnings(warns, nil)
}

func (p *Provider) snapshots(c Conn, dom string) ([]*providerv1.Snapshot, error) {
	xs, err := c.ListSnapshots(dom)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*providerv1.Snapshot
	for _, x := range xs {
		var s libvirtxml.DomainSnapshot
		if err := s.Unmarshal(x); err != nil {
			return nil, fmt.Errorf("parse snapshot of %s: %w", dom, err)
		}
		created, _ := strconv.ParseInt(s.CreationTime, 10, 64)
		out = append(out, &providerv1.Snapshot{Name: s.Name, CreatedUnix: created, VmState: snapshotStateWord(s.State)})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].CreatedUnix != out[j].CreatedUnix {
			return out[i].CreatedUnix < out[j].CreatedUnix
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// snapshotStateWord maps libvirt's snapshot state names to VMState words.
func snapshotStateWord(s string) string {
	switch s {
	case "running", "blocked", "shutdown":
		return "running"
	case "paused":
		return "paused"
	case "shutoff", "disk-snapshot":
		return "shut off"
	case "crashed":
		return "crashed"
	case "pmsuspended":
		return "suspended"
	}
	return "unknown"
}
