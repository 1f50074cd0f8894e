package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	"github.com/lago-go/lago/sdk"
	"libvirt.org/go/libvirtxml"
)

func vmLabel(env *providerv1.EnvRef, vm *providerv1.VM) string {
	return fmt.Sprintf("vm '%s' (libvirt name %s)", vm.GetName(), domainName(env.GetUuid(), vm.GetName()))
}

// diskFormat is the format a prepared disk has.
func diskFormat(d *providerv1.Disk) string {
	switch d.GetType() {
	case "template":
		return "qcow2"
	case "iso":
		return "raw"
	case "empty":
		if d.GetFormat() != "" {
			return d.GetFormat()
		}
		return "qcow2"
	}
	if d.GetFormat() != "" {
		return d.GetFormat()
	}
	return "raw"
}

// diskSources says where each prepared disk of vm lives: the path the
// core recorded (local mode; the source image for iso and uncopied file
// disks) or the volume PrepareDisks made (remote mode).
func diskSources(cfg settings, env *providerv1.EnvRef, vm *providerv1.VM) ([]diskSource, error) {
	var out []diskSource
	for _, d := range vm.GetDisks() {
		f := diskFormat(d)
		if cfg.Remote {
			out = append(out, diskSource{Pool: cfg.Pool, Volume: diskVolumeName(env.GetUuid(), vm.GetName(), d.GetName(), f), Format: f})
			continue
		}
		path := d.GetPath()
		if d.GetType() == "iso" || (d.GetType() == "file" && !d.GetMakeACopy()) || path == "" {
			if d.GetSourcePath() != "" {
				path = d.GetSourcePath()
			}
		}
		if path == "" {
			return nil, fmt.Errorf("disk %q of vm %q has no path", d.GetName(), vm.GetName())
		}
		out = append(out, diskSource{Path: path, Format: f})
	}
	return out, nil
}

// buildDomainXML is the domain definition of vm for this provider. The
// serial console is logged to the VM's serial_log_path, or on a remote
// host to remoteSerialLog (a file in the storage pool's folder; empty: no
// log).
func buildDomainXML(cfg settings, domainType string, env *providerv1.EnvRef, vm *providerv1.VM, uuid, remoteSerialLog string) (string, error) {
	srcs, err := diskSources(cfg, env, vm)
	if err != nil {
		return "", err
	}
	spec := domainSpec{Env: env, VM: vm, DomainType: domainType, Disks: srcs, UUID: uuid}
	if cfg.Remote {
		spec.SerialLog = remoteSerialLog
	} else {
		spec.SerialLog = vm.GetSerialLogPath()
	}
	return domainXML(spec)
}

// ensureDefined defines (or redefines, when not running) the domain of vm
// and returns its state before the call.
func (p *Provider) ensureDefined(ctx context.Context, c Conn, cfg settings, domainType string, env *providerv1.EnvRef, vm *providerv1.VM) (DomainState, bool, error) {
	label := vmLabel(env, vm)
	name := domainName(env.GetUuid(), vm.GetName())
	st, err := c.DomainState(name)
	exists := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return st, false, errorDiag(label+": cannot read state", err)
	}
	uuid := ""
	if exists {
		x, err := c.DomainXML(name)
		if err != nil {
			return st, true, errorDiag(label+": cannot read definition", err)
		}
		if o, ok := ownerOfDomain(x); !ok || o.UUID != env.GetUuid() {
			return st, true, errorDiag(fmt.Sprintf("%s: a libvirt domain of that name exists and belongs to %s", label, describeOwner(o, ok)), nil)
		}
		if isActive(st) {
			return st, true, nil
		}
		var old libvirtxml.Domain
		if err := old.Unmarshal(x); err == nil {
			uuid = old.UUID
		}
	}
	remoteLog := ""
	if cfg.Remote {
		if err := p.pushDisks(ctx, c, cfg, env, vm); err != nil {
			return st, exists, errorDiag(label+": cannot upload its disks to the remote host", err)
		}
		// The console log lives beside the disks, as a volume of the
		// environment: SerialLog reads it back, RemoveOwned deletes it.
		dir, err := poolDir(c, cfg.Pool)
		if err != nil {
			return st, exists, errorDiag(label+": cannot place its serial log", err)
		}
		remoteLog = path.Join(dir, serialVolumeName(env.GetUuid(), vm.GetName()))
	}
	x, err := buildDomainXML(cfg, domainType, env, vm, uuid, remoteLog)
	if err != nil {
		return st, exists, errorDiag(label+": invalid spec", err)
	}
	if !cfg.Remote && vm.GetSerialLogPath() != "" {
		if err := os.MkdirAll(filepath.Dir(vm.GetSerialLogPath()), 0o755); err != nil {
			return st, exists, errorDiag(label+": cannot create the serial log folder", err)
		}
	}
	if err := c.DefineDomain(x); err != nil {
		return st, exists, errorDiag(label+": cannot define", err)
	}
	if !exists {
		st = DomainShutoff
	}
	return st, exists, nil
}

func ownerOfDomain(x string) (ownerTag, bool) {
	var d libvirtxml.Domain
	if err := d.Unmarshal(x); err != nil || d.Metadata == nil {
		return ownerTag{}, false
	}
	o, ok, err := parseOwner(d.Metadata.XML)
	return o, ok && err == nil
}

func isActive(s DomainState) bool {
	switch s {
	case DomainRunning, DomainBlocked, DomainPaused, DomainShutdown, DomainPMSuspended:
		return true
	}
	return false
}

// StartVM defines the domain persistently (so stopped VMs keep their
// snapshots) and starts it; a running VM is left alone.
func (p *Provider) StartVM(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) error {
	c, cfg, dt, warns, err := p.connectTyped(ctx)
	if err != nil {
		return err
	}
	st, _, err := p.ensureDefined(ctx, c, cfg, dt, env, vm)
	if err != nil {
		return withWarnings(warns, err)
	}
	if isActive(st) {
		return withWarnings(warns, nil)
	}
	if err := c.StartDomain(domainName(env.GetUuid(), vm.GetName())); err != nil {
		return withWarnings(warns, errorDiag(vmLabel(env, vm)+": cannot start", err))
	}
	return withWarnings(warns, nil)
}

// StopVM powers the VM off at once (virDomainDestroy) and keeps its
// definition; stopping a stopped or undefined VM is not an error.
func (p *Provider) StopVM(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) error {
	c, _, _, warns, err := p.connect(ctx)
	if err != nil {
		return err
	}
	name := domainName(env.GetUuid(), vm.GetName())
	st, err := c.DomainState(name)
	if errors.Is(err, ErrNotFound) || (err == nil && !isActive(st)) {
		return withWarnings(warns, nil)
	}
	if err == nil {
		err = c.DestroyDomain(name)
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		if st2, e2 := c.DomainState(name); e2 == nil && !isActive(st2) {
			return withWarnings(warns, nil)
		}
		return withWarnings(warns, errorDiag(vmLabel(env, vm)+": cannot stop", err))
	}
	return withWarnings(warns, nil)
}

// shutdownPoll is how often ShutdownVM checks the state, and
// shutdownRepress how often it presses the power button again (a guest
// still booting may miss the first press).
var (
	shutdownPoll    = 250 * time.Millisecond
	shutdownRepress = 10 * time.Second
)

// ShutdownVM presses the ACPI power button and waits until the VM is off.
//
// With reboot it asks the guest agent (virDomainReboot, agent mode) when
// one answers. Otherwise it shuts the VM down the same way and starts it
// again: virDomainReboot's ACPI mode depends on libvirt's "fake reboot"
// (reset after the guest powers off), and on libvirt 9.0 with qemu 7.2 the
// guest was seen powering off and never coming back, and the call to hang
// while a console stream was open.
func (p *Provider) ShutdownVM(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, reboot bool, timeout time.Duration) error {
	c, _, _, warns, err := p.connect(ctx)
	if err != nil {
		return err
	}
	label := vmLabel(env, vm)
	name := domainName(env.GetUuid(), vm.GetName())
	st, err := c.DomainState(name)
	if errors.Is(err, ErrNotFound) || (err == nil && !isActive(st)) {
		if reboot {
			return withWarnings(warns, errorDiag(label+": cannot reboot a VM that is not running", nil))
		}
		return withWarnings(warns, nil)
	}
	if err != nil {
		return withWarnings(warns, errorDiag(label+": cannot read state", err))
	}
	if reboot {
		err := c.RebootDomain(name)
		if err == nil {
			return withWarnings(warns, nil)
		}
		p.log.Debug("no guest agent reboot, power cycling through ACPI", "vm", vm.GetName(), "error", err)
	}
	if timeout <= 0 {
		timeout = defaultShutdownWait * time.Second
	}
	if err := p.acpiShutdown(ctx, c, name, timeout); err != nil {
		what := "shut down"
		if reboot {
			what = "reboot (shut down)"
		}
		return withWarnings(warns, errorDiag(fmt.Sprintf("%s: cannot %s", label, what), err))
	}
	if reboot {
		if err := c.StartDomain(name); err != nil {
			return withWarnings(warns, errorDiag(label+": cannot reboot (start again)", err))
		}
	}
	return withWarnings(warns, nil)
}

// acpiShutdown presses the power button (again every shutdownRepress) until
// the domain is off or timeout passes.
func (p *Provider) acpiShutdown(ctx context.Context, c Conn, name string, timeout time.Duration) error {
	if err := c.ShutdownDomain(name); err != nil {
		return err
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(shutdownPoll)
	defer tick.Stop()
	lastPress := time.Now()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("did not shut down within %s", timeout)
		case <-tick.C:
			st, err := c.DomainState(name)
			if errors.Is(err, ErrNotFound) || (err == nil && !isActive(st)) {
				return nil
			}
			if time.Since(lastPress) >= shutdownRepress {
				_ = c.ShutdownDomain(name)
				lastPress = time.Now()
			}
		}
	}
}

// VMState maps the libvirt state to the reference's words.
func (p *Provider) VMState(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) (string, error) {
	c, _, _, warns, err := p.connect(ctx)
	if err != nil {
		return "", err
	}
	st, err := c.DomainState(domainName(env.GetUuid(), vm.GetName()))
	if errors.Is(err, ErrNotFound) {
		return "down", withWarnings(warns, nil)
	}
	if err != nil {
		return "unknown", withWarnings(warns, errorDiag(vmLabel(env, vm)+": cannot read state", err))
	}
	return stateWord(st), withWarnings(warns, nil)
}

// stateWord is the reference's word for a domain state. A domain being
// shut down is still running.
func stateWord(s DomainState) string {
	switch s {
	case DomainRunning, DomainBlocked, DomainShutdown:
		return "running"
	case DomainPaused:
		return "paused"
	case DomainShutoff:
		return "shut off"
	case DomainCrashed:
		return "crashed"
	case DomainPMSuspended:
		return "suspended"
	}
	return "unknown"
}

// ValidateSpec builds every network and domain definition without touching
// libvirt, so spec mistakes surface at init with the offending name.
func (p *Provider) ValidateSpec(ctx context.Context, env *providerv1.EnvRef, nets []*providerv1.Network, vms []*providerv1.VM) error {
	p.mu.Lock()
	cfg := p.cfg
	if !p.configured {
		cfg, _ = parseSettings(nil)
	}
	p.mu.Unlock()
	// The CPU checks depend on the domain type; resolve auto through
	// libvirt when it answers, and otherwise judge leniently (as kvm):
	// StartVM checks again with the real type.
	dt := cfg.DomainType
	var warns sdk.Diagnostics
	if dt == domainTypeAuto {
		dt = domainTypeKVM
		if _, _, resolved, w, err := p.connectTyped(ctx); err == nil {
			dt, warns = resolved, w
		}
	}
	var diags sdk.Diagnostics
	bad := func(attr, summary string, err error) {
		d := sdk.Diagnostic{Severity: sdk.SeverityError, Attribute: attr, Summary: summary}
		if err != nil {
			d.Detail = err.Error()
		}
		diags = append(diags, d)
	}
	known := map[string]bool{}
	for _, n := range nets {
		known[n.GetName()] = true
		if n.GetName() == "" {
			bad("nets", "a network has no name", nil)
			continue
		}
		if _, err := networkXML(env, n, false); err != nil {
			bad("nets."+n.GetName(), "invalid network", err)
		}
	}
	for _, vm := range vms {
		attr := "domains." + vm.GetName()
		if vm.GetName() == "" {
			bad("domains", "a VM has no name", nil)
			continue
		}
		devs := map[string]bool{}
		for _, d := range vm.GetDisks() {
			if devs[d.GetDev()] {
				bad(attr, fmt.Sprintf("disk device %s is used twice", d.GetDev()), nil)
			}
			devs[d.GetDev()] = true
			switch d.GetType() {
			case "template", "file", "empty", "iso":
			default:
				bad(attr, fmt.Sprintf("disk %q has unknown type %q (want template, file, empty or iso)", d.GetName(), d.GetType()), nil)
			}
			if d.GetType() == "empty" && d.GetSizeBytes() <= 0 {
				bad(attr, fmt.Sprintf("empty disk %q needs a size", d.GetName()), nil)
			}
		}
		for _, nic := range vm.GetNics() {
			if len(nets) > 0 && !known[nic.GetNet()] {
				bad(attr, fmt.Sprintf("nic on unknown network %q", nic.GetNet()), nil)
			}
		}
		// Placeholder paths: only the XML shape is checked here.
		probe := cloneForValidation(vm)
		if _, err := buildDomainXML(cfg, dt, env, probe, "", ""); err != nil {
			bad(attr, "invalid VM", err)
		}
	}
	if cfg.Remote {
		for _, c := range diskVolumeCollisions(env.GetUuid(), vms) {
			bad("domains."+c.VM, c.Summary, nil)
		}
	}
	return withWarnings(warns, diags.Err())
}

func cloneForValidation(vm *providerv1.VM) *providerv1.VM {
	c := &providerv1.VM{
		Name: vm.GetName(), MemoryMib: vm.GetMemoryMib(), Vcpu: vm.GetVcpu(), CpuModel: vm.GetCpuModel(),
		CpuCustom: vm.GetCpuCustom(), Numa: vm.GetNuma(), Nics: vm.GetNics(),
	}
	for _, d := range vm.GetDisks() {
		c.Disks = append(c.Disks, &providerv1.Disk{Name: d.GetName(), Dev: d.GetDev(), Type: d.GetType(),
			Format: d.GetFormat(), Path: "/validate/" + d.GetName(), SourcePath: "/validate/" + d.GetName(), MakeACopy: d.GetMakeACopy()})
	}
	return c
}
