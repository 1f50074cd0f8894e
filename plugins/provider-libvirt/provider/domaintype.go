package provider

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/lago-go/lago/sdk"
	"libvirt.org/go/libvirtxml"
)

// kvmProbeWindow is how long a paused KVM probe guest must survive. On
// hosts where KVM is listed but broken (qemu aborts on "failed to set MSR"),
// qemu dies within milliseconds of creating its vCPU, even paused (-S).
const kvmProbeWindow = 1500 * time.Millisecond

// resolveDomainType turns the domain_type setting into kvm or qemu.
func (p *Provider) resolveDomainType(ctx context.Context, c Conn) (string, sdk.Diagnostics, error) {
	switch p.cfg.DomainType {
	case domainTypeKVM, domainTypeQEMU:
		return p.cfg.DomainType, nil, nil
	}
	capsXML, err := c.Capabilities()
	if err != nil {
		return "", nil, errorDiag("cannot read libvirt capabilities", err)
	}
	kvmEmu, hasQEMU, err := kvmEmulator(capsXML)
	if err != nil {
		return "", nil, errorDiag("cannot parse libvirt capabilities", err)
	}
	warn := func(why string) (string, sdk.Diagnostics, error) {
		return domainTypeQEMU, sdk.Diagnostics{{Severity: sdk.SeverityWarning, Attribute: SettingDomainType,
			Summary: "domain_type auto: using qemu (TCG emulation, slow) instead of kvm",
			Detail:  why + "; set domain_type=kvm to force KVM or domain_type=qemu to silence this warning"}}, nil
	}
	switch {
	case kvmEmu == "" && hasQEMU:
		return warn("libvirt lists no kvm domain type on this host")
	case kvmEmu == "":
		return "", nil, errorDiag("libvirt lists neither kvm nor qemu guests for hvm x86_64", nil)
	case p.cfg.Remote:
		if !hasQEMU {
			return domainTypeKVM, nil, nil
		}
		return warn("the host is remote, so KVM cannot be probed")
	}
	probe := kvmEmu
	if p.cfg.KVMProbe != "" {
		if _, err := exec.LookPath(kvmEmu); err != nil {
			probe = p.cfg.KVMProbe
		}
	}
	if err := p.probeKVM(ctx, probe); err != nil {
		if !hasQEMU {
			return "", nil, errorDiag("KVM is listed by libvirt but does not work here, and libvirt lists no qemu (TCG) domain type", err)
		}
		return warn("a KVM probe guest failed: " + err.Error())
	}
	return domainTypeKVM, nil, nil
}

// kvmEmulator returns the emulator of the x86_64 hvm kvm domain type (empty
// when none) and whether a plain qemu domain type exists.
func kvmEmulator(capsXML string) (string, bool, error) {
	var caps libvirtxml.Caps
	if err := caps.Unmarshal(capsXML); err != nil {
		return "", false, err
	}
	kvm, qemu := "", false
	for _, g := range caps.Guests {
		if g.OSType != "hvm" || g.Arch.Name != "x86_64" {
			continue
		}
		for _, d := range g.Arch.Domains {
			switch d.Type {
			case domainTypeKVM:
				kvm = d.Emulator
				if kvm == "" {
					kvm = g.Arch.Emulator
				}
			case domainTypeQEMU:
				qemu = true
			}
		}
	}
	return kvm, qemu, nil
}

// probeKVM starts a paused guest with -accel kvm -cpu host and no devices
// at all. Exiting inside kvmProbeWindow means KVM is unusable.
func probeKVM(ctx context.Context, emulator string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, emulator, "-accel", "kvm", "-machine", "pc", "-cpu", "host",
		"-nodefaults", "-display", "none", "-net", "none", "-monitor", "none", "-serial", "none", "-S")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", emulator, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		msg := strings.TrimSpace(stderr.String())
		if i := strings.IndexByte(msg, '\n'); i > 0 {
			msg = msg[:i]
		}
		return fmt.Errorf("%s -accel kvm exited early (%v): %s", emulator, err, msg)
	case <-time.After(kvmProbeWindow):
		cancel()
		<-done
		return nil
	case <-ctx.Done():
		<-done
		return ctx.Err()
	}
}
