package provider

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/lago-go/lago/sdk"
	"libvirt.org/go/libvirtxml"
)

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

// kvmProbeTimeout bounds a KVM probe guest. A working KVM boots the probe
// in well under a second; a broken one either kills qemu at once (qemu
// aborts on "failed to set MSR" when it creates the vCPU) or runs the
// firmware and then hangs the guest for good, printing nothing more.
var kvmProbeTimeout = 4 * time.Second

// probeKVM reports whether a KVM guest really runs on this host: it boots
// the host's own kernel under -accel kvm -cpu host and waits for the
// kernel's banner on the serial port. Booting a kernel is what catches the
// hosts whose KVM runs the firmware and real mode but hangs the guest once
// Linux takes over (seen on CI hosts: SeaBIOS and long mode fine, the
// kernel silent after "Probing EDD"). Where no host kernel is readable it
// boots kvmProbeSector instead, which at least enters long mode.
func probeKVM(ctx context.Context, emulator string) error {
	if k := hostKernel(); k != "" {
		return runKVMProbe(ctx, emulator, "Linux version", "booting the host's kernel "+k,
			"-m", "256", "-kernel", k, "-append", "console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1",
			"-serial", "stdio")
	}
	f, err := os.CreateTemp("", "lago-kvm-probe-*.img")
	if err != nil {
		return fmt.Errorf("kvm probe: %w", err)
	}
	defer os.Remove(f.Name())
	img := make([]byte, 512)
	copy(img, kvmProbeSector)
	img[510], img[511] = 0x55, 0xaa
	_, err = f.Write(img)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("kvm probe: %w", err)
	}
	return runKVMProbe(ctx, emulator, kvmProbeMarker, "booting a long-mode probe sector",
		"-m", "16", "-drive", "file="+f.Name()+",format=raw,if=ide",
		"-chardev", "stdio,id=dbg", "-device", "isa-debugcon,iobase=0x402,chardev=dbg", "-serial", "none")
}

// hostKernel returns a readable kernel image of the host, or "".
func hostKernel() string {
	var cands []string
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		var b strings.Builder
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			b.WriteByte(byte(c))
		}
		cands = append(cands, "/boot/vmlinuz-"+b.String())
	}
	cands = append(cands, "/boot/vmlinuz", "/vmlinuz")
	for _, c := range cands {
		if f, err := os.Open(c); err == nil {
			f.Close()
			return c
		}
	}
	return ""
}

// runKVMProbe runs emulator under KVM with args and waits until its
// standard output shows marker.
func runKVMProbe(pctx context.Context, emulator, marker, what string, args ...string) error {
	ctx, cancel := context.WithTimeout(pctx, kvmProbeTimeout)
	defer cancel()
	argv := append([]string{"-accel", "kvm", "-machine", "pc", "-cpu", "host", "-nodefaults",
		"-display", "none", "-net", "none", "-monitor", "none", "-no-reboot"}, args...)
	cmd := exec.CommandContext(ctx, emulator, argv...)
	// Pipes still open in a child of the emulator must not hold Wait.
	cmd.WaitDelay = 500 * time.Millisecond
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("kvm probe: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", emulator, err)
	}
	found := make(chan bool, 1)
	go func() {
		// Only the marker matters; a line is capped.
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 4096), 64*1024)
		for sc.Scan() {
			if strings.Contains(sc.Text(), marker) {
				found <- true
				return
			}
		}
		found <- false
	}()
	var ok, hung bool
	select {
	case ok = <-found:
	case <-ctx.Done():
		hung = pctx.Err() == nil
	}
	cancel()
	_ = cmd.Wait()
	switch {
	case ok:
		return nil
	case pctx.Err() != nil:
		return pctx.Err()
	case hung:
		return fmt.Errorf("%s -accel kvm: the guest hung (%s printed nothing within %s)", emulator, what, kvmProbeTimeout)
	}
	msg := strings.TrimSpace(stderr.String())
	if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
		msg = msg[i+1:]
	}
	return fmt.Errorf("%s -accel kvm exited early (%s): %s", emulator, what, msg)
}

// kvmProbeMarker is what kvmProbeSector writes to the debug console.
const kvmProbeMarker = "LAGO-KVM-LONG-MODE-OK"

// kvmProbeSector is a boot sector (without its 0x55AA signature) that
// builds identity page tables, enters long mode straight from real mode
// and writes kvmProbeMarker to port 0x402 (isa-debugcon), then halts.
// Assembled with GNU as (--32, ld -Ttext 0x7c00 --oformat binary) from:
//
//	cli; xor %ax,%ax; mov %ax,%ds; mov %ax,%es; mov %ax,%ss; mov $0x7c00,%sp
//	mov $0x1000,%di; mov $0xc00,%cx; xor %eax,%eax; cld; rep stosl
//	movl $0x2003,0x1000; movl $0x3003,0x2000; movl $0x83,0x3000  # PML4, PDPT, 2 MiB PD
//	lgdt gdtr; CR4 |= PAE; CR3 = 0x1000; EFER |= LME (rdmsr/wrmsr 0xC0000080)
//	CR0 |= PG|PE; ljmp $0x08,$long_mode
//	.code64 long_mode: mov $0x402,%dx; lea msg(%rip),%rsi; 1: lodsb; test %al,%al; jz 2f; out %al,%dx; jmp 1b
//	2: hlt; jmp 2b
//	msg: .asciz "LAGO-KVM-LONG-MODE-OK\n"; gdt: .quad 0, 0x00209A0000000000; gdtr: .word 15; .long gdt
var kvmProbeSector = []byte{
	0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0, 0xbc, 0x00, 0x7c, 0xbf, 0x00, 0x10, 0xb9,
	0x00, 0x0c, 0x66, 0x31, 0xc0, 0xfc, 0x66, 0xf3, 0xab, 0x66, 0xc7, 0x06, 0x00, 0x10, 0x03, 0x20,
	0x00, 0x00, 0x66, 0xc7, 0x06, 0x00, 0x20, 0x03, 0x30, 0x00, 0x00, 0x66, 0xc7, 0x06, 0x00, 0x30,
	0x83, 0x00, 0x00, 0x00, 0x0f, 0x01, 0x16, 0xb0, 0x7c, 0x0f, 0x20, 0xe0, 0x66, 0x83, 0xc8, 0x20,
	0x0f, 0x22, 0xe0, 0x66, 0xb8, 0x00, 0x10, 0x00, 0x00, 0x0f, 0x22, 0xd8, 0x66, 0xb9, 0x80, 0x00,
	0x00, 0xc0, 0x0f, 0x32, 0x66, 0x0d, 0x00, 0x01, 0x00, 0x00, 0x0f, 0x30, 0x0f, 0x20, 0xc0, 0x66,
	0x0d, 0x01, 0x00, 0x00, 0x80, 0x0f, 0x22, 0xc0, 0xea, 0x6d, 0x7c, 0x08, 0x00, 0x66, 0xba, 0x02,
	0x04, 0x48, 0x8d, 0x35, 0x0b, 0x00, 0x00, 0x00, 0xac, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8,
	0xf4, 0xeb, 0xfd, 0x4c, 0x41, 0x47, 0x4f, 0x2d, 0x4b, 0x56, 0x4d, 0x2d, 0x4c, 0x4f, 0x4e, 0x47,
	0x2d, 0x4d, 0x4f, 0x44, 0x45, 0x2d, 0x4f, 0x4b, 0x0a, 0x00, 0x8d, 0xb6, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9a, 0x20, 0x00,
	0x0f, 0x00, 0xa0, 0x7c,
}
