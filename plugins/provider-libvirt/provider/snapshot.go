package provider

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	"libvirt.org/go/libvirtxml"
)

// quiescedMark in a snapshot's description records that the guest's
// filesystems were frozen when it was taken. Earlier versions froze a
// running guest around its snapshot; such a snapshot's memory holds frozen
// filesystems, so Revert thaws them.
const quiescedMark = "lago: quiesced"

// thawTimeout bounds how long Revert retries thawing a guest restored from
// a quiesced snapshot: right after the revert, qemu is new and libvirt has
// not yet reconnected to the guest agent, so the first thaws fail.
var thawTimeout = 60 * time.Second

// Snapshot takes a libvirt internal snapshot (qcow2), which works for
// running VMs (disks plus memory) and for stopped ones (disks only). A VM
// never started is defined first.
//
// A running guest is not frozen around its snapshot: qemu stops the guest
// while it saves disks and memory together, so the snapshot is consistent
// without quiescing, and a freeze would be saved into the memory state.
// Every revert would then resume a frozen guest and depend on a thaw that
// fails while libvirt is still reconnecting to the agent: the guest's
// writes hang (dropbear's children block logging the login, and after
// five of them dropbear turns every new connection away).
func (p *Provider) Snapshot(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, name string) error {
	c, cfg, dt, warns, err := p.connectTyped(ctx)
	if err != nil {
		return err
	}
	label := vmLabel(env, vm)
	if name == "" {
		return withWarnings(warns, errorDiag(label+": a snapshot needs a name", nil))
	}
	if _, _, err := p.ensureDefined(ctx, c, cfg, dt, env, vm); err != nil {
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
	x, err := (&libvirtxml.DomainSnapshot{Name: name, Description: "lago snapshot"}).Marshal()
	if err == nil {
		err = c.CreateSnapshot(dom, x)
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
			if err := p.thaw(ctx, c, dom); err != nil {
				return withWarnings(warns, errorDiag(fmt.Sprintf("%s: reverted to snapshot %q, whose memory holds frozen filesystems, but cannot thaw them; the guest's writes hang until `virsh domfsthaw %s` succeeds", label, name, dom), err))
			}
		}
	}
	return withWarnings(warns, nil)
}

// thaw retries FSThaw until it succeeds, ctx ends or thawTimeout passes.
func (p *Provider) thaw(ctx context.Context, c Conn, dom string) error {
	deadline := time.Now().Add(thawTimeout)
	for {
		err := c.FSThaw(dom)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		p.log.Debug("thaw after revert not yet possible", "domain", dom, "error", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
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
