package provider

import (
	"fmt"
	"strings"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	"libvirt.org/go/libvirtxml"
)

// Domain types accepted by the domain_type setting once resolved.
const (
	domainTypeKVM  = "kvm"
	domainTypeQEMU = "qemu"
)

// guestAgentChannel is the virtio-serial port qemu-guest-agent listens on.
const guestAgentChannel = "org.qemu.guest_agent.0"

// diskSource is where a VM disk lives once prepared: a file (local mode) or
// a volume in a storage pool (remote mode).
type diskSource struct {
	Path   string
	Pool   string
	Volume string
	Format string
}

// domainSpec is everything domainXML needs beyond the VM itself.
type domainSpec struct {
	Env        *providerv1.EnvRef
	VM         *providerv1.VM
	DomainType string
	Disks      []diskSource
	// SerialLog is the file the serial console is logged to; empty in
	// remote mode, where the hypervisor cannot write into the prefix.
	SerialLog string
	// UUID of the existing definition when redefining: libvirt refuses a
	// definition of the same name with another (or a new random) uuid.
	UUID string
}

// domainXML builds the persistent libvirt definition of a VM.
func domainXML(s domainSpec) (string, error) {
	vm := s.VM
	if len(s.Disks) != len(vm.GetDisks()) {
		return "", fmt.Errorf("vm %q: %d disk sources for %d disks", vm.GetName(), len(s.Disks), len(vm.GetDisks()))
	}
	owner, err := ownerTag{Prefix: s.Env.GetPrefixPath(), UUID: s.Env.GetUuid(), Name: vm.GetName()}.marshal()
	if err != nil {
		return "", err
	}
	cpu, err := cpuXML(vm, s.DomainType)
	if err != nil {
		return "", err
	}
	mem := vm.GetMemoryMib()
	if mem <= 0 {
		return "", fmt.Errorf("vm %q: memory must be positive (MiB), got %d", vm.GetName(), mem)
	}
	d := &libvirtxml.Domain{
		Type:     s.DomainType,
		Name:     domainName(s.Env.GetUuid(), vm.GetName()),
		UUID:     s.UUID,
		Metadata: &libvirtxml.DomainMetadata{XML: owner},
		Memory:   &libvirtxml.DomainMemory{Value: uint(mem), Unit: "MiB"},
		VCPU:     &libvirtxml.DomainVCPU{Value: uint(vcpus(vm))},
		CPU:      cpu,
		OS: &libvirtxml.DomainOS{
			Type:     &libvirtxml.DomainOSType{Type: "hvm"},
			BootMenu: &libvirtxml.DomainBootMenu{Enable: "no"},
		},
		Features: &libvirtxml.DomainFeatureList{
			ACPI: &libvirtxml.DomainFeature{},
			APIC: &libvirtxml.DomainFeatureAPIC{},
		},
		Clock:      &libvirtxml.DomainClock{Offset: "utc"},
		OnPoweroff: "destroy",
		OnReboot:   "restart",
		OnCrash:    "destroy",
		PM: &libvirtxml.DomainPM{
			SuspendToMem:  &libvirtxml.DomainPMPolicy{Enabled: "no"},
			SuspendToDisk: &libvirtxml.DomainPMPolicy{Enabled: "no"},
		},
		Devices: &libvirtxml.DomainDeviceList{},
	}
	dev := d.Devices
	needSCSI := false
	for i, disk := range vm.GetDisks() {
		dd, scsi, err := diskXML(disk, s.Disks[i], uint(i+1))
		if err != nil {
			return "", fmt.Errorf("vm %q: %w", vm.GetName(), err)
		}
		needSCSI = needSCSI || scsi
		dev.Disks = append(dev.Disks, dd)
	}
	if needSCSI {
		dev.Controllers = append(dev.Controllers, libvirtxml.DomainController{Type: "scsi", Model: "virtio-scsi"})
	}
	for _, nic := range vm.GetNics() {
		if nic.GetNet() == "" {
			return "", fmt.Errorf("vm %q: nic without a network", vm.GetName())
		}
		iface := libvirtxml.DomainInterface{
			Source: &libvirtxml.DomainInterfaceSource{
				Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: networkName(s.Env.GetUuid(), nic.GetNet())},
			},
			// No <driver name='vhost'>: hosts without /dev/vhost-net refuse it.
			Model: &libvirtxml.DomainInterfaceModel{Type: "virtio"},
		}
		if nic.GetMac() != "" {
			iface.MAC = &libvirtxml.DomainInterfaceMAC{Address: strings.ToLower(nic.GetMac())}
		}
		if nic.GetMtu() > 0 {
			iface.MTU = &libvirtxml.DomainInterfaceMTU{Size: uint(nic.GetMtu())}
		}
		dev.Interfaces = append(dev.Interfaces, iface)
	}
	port := uint(0)
	serial := libvirtxml.DomainSerial{
		Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
		Target: &libvirtxml.DomainSerialTarget{Port: &port},
	}
	if s.SerialLog != "" {
		serial.Log = &libvirtxml.DomainChardevLog{File: s.SerialLog, Append: "on"}
	}
	dev.Serials = append(dev.Serials, serial)
	cport := uint(0)
	dev.Consoles = append(dev.Consoles, libvirtxml.DomainConsole{
		Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
		Target: &libvirtxml.DomainConsoleTarget{Type: "serial", Port: &cport},
	})
	dev.Channels = append(dev.Channels, libvirtxml.DomainChannel{
		Source: &libvirtxml.DomainChardevSource{UNIX: &libvirtxml.DomainChardevSourceUNIX{Mode: "bind"}},
		Target: &libvirtxml.DomainChannelTarget{VirtIO: &libvirtxml.DomainChannelTargetVirtIO{Name: guestAgentChannel}},
	})
	dev.RNGs = append(dev.RNGs, libvirtxml.DomainRNG{
		Model:   "virtio",
		Backend: &libvirtxml.DomainRNGBackend{Random: &libvirtxml.DomainRNGBackendRandom{Device: "/dev/urandom"}},
	})
	dev.MemBalloon = &libvirtxml.DomainMemBalloon{Model: "none"}
	return d.Marshal()
}

func vcpus(vm *providerv1.VM) int32 {
	if vm.GetVcpu() > 0 {
		return vm.GetVcpu()
	}
	return 2 // the reference's default
}

// diskBus maps a device name to its bus as the original did: vd* virtio,
// sd* virtio-scsi, hd* ide.
func diskBus(dev string) (string, error) {
	switch {
	case strings.HasPrefix(dev, "vd"):
		return "virtio", nil
	case strings.HasPrefix(dev, "sd"):
		return "scsi", nil
	case strings.HasPrefix(dev, "hd"):
		return "ide", nil
	}
	return "", fmt.Errorf("disk device %q: want a vd*, sd* or hd* name", dev)
}

func diskXML(disk *providerv1.Disk, src diskSource, boot uint) (libvirtxml.DomainDisk, bool, error) {
	dev := disk.GetDev()
	bus, err := diskBus(dev)
	if err != nil {
		return libvirtxml.DomainDisk{}, false, err
	}
	dd := libvirtxml.DomainDisk{
		Device: "disk",
		Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: src.Format},
		Boot:   &libvirtxml.DomainDeviceBoot{Order: boot},
	}
	if disk.GetType() == "iso" {
		dd.Device = "cdrom"
		dd.ReadOnly = &libvirtxml.DomainDiskReadOnly{}
		dd.Driver.Type = "raw"
		if bus == "virtio" {
			// virtio-blk has no removable media: put the cdrom on IDE
			// under the matching hd* name.
			bus, dev = "ide", "hd"+strings.TrimPrefix(dev, "vd")
		}
	}
	dd.Target = &libvirtxml.DomainDiskTarget{Dev: dev, Bus: bus}
	switch {
	case src.Volume != "":
		dd.Source = &libvirtxml.DomainDiskSource{Volume: &libvirtxml.DomainDiskSourceVolume{Pool: src.Pool, Volume: src.Volume}}
	case src.Path != "":
		dd.Source = &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: src.Path}}
	default:
		return dd, false, fmt.Errorf("disk %q: no prepared path", disk.GetName())
	}
	return dd, bus == "scsi", nil
}

// cpuXML chooses the <cpu> element:
//   - cpu_custom: the user's element verbatim, with a topology added when
//     missing (as the original did);
//   - cpu_model: that model, exact match, fallback allowed;
//   - neither: host-passthrough under KVM; under TCG (domain type qemu)
//     host-passthrough is impossible, so mode='maximum' gives the guest
//     every feature TCG can emulate (x86-64-v3, so EL9 and newer guests
//     boot) except la57: with 5-level paging every guest page walk the
//     emulator does is one level longer. Three tiny guests booting at once
//     on two cores took 17.2 and 17.7 s without it against 19.6 and 18.8 s
//     with it (interleaved runs; plain qemu64, which EL9 refuses: 16.2 and
//     16.9 s).
//
// NUMA cells from the spec are added when the element has none.
func cpuXML(vm *providerv1.VM, domainType string) (*libvirtxml.DomainCPU, error) {
	n := vcpus(vm)
	topo := &libvirtxml.DomainCPUTopology{Sockets: int(n), Cores: 1, Threads: 1}
	var cpu *libvirtxml.DomainCPU
	switch {
	case strings.TrimSpace(vm.GetCpuCustom()) != "":
		cpu = &libvirtxml.DomainCPU{}
		if err := cpu.Unmarshal(vm.GetCpuCustom()); err != nil {
			return nil, fmt.Errorf("vm %q: cpu_custom is not a libvirt <cpu> element: %w", vm.GetName(), err)
		}
		if cpu.Mode == "host-passthrough" && domainType != domainTypeKVM {
			return nil, fmt.Errorf("vm %q: cpu_custom asks for host-passthrough, which needs domain type kvm (this provider uses %s)", vm.GetName(), domainType)
		}
		if cpu.Topology == nil {
			cpu.Topology = topo
		}
	case vm.GetCpuModel() != "":
		cpu = &libvirtxml.DomainCPU{
			Mode:     "custom",
			Match:    "exact",
			Model:    &libvirtxml.DomainCPUModel{Fallback: "allow", Value: vm.GetCpuModel()},
			Topology: topo,
		}
	case domainType == domainTypeKVM:
		cpu = &libvirtxml.DomainCPU{Mode: "host-passthrough", Topology: topo}
	default:
		cpu = &libvirtxml.DomainCPU{Mode: "maximum", Topology: topo,
			Features: []libvirtxml.DomainCPUFeature{{Policy: "disable", Name: "la57"}}}
	}
	if len(vm.GetNuma()) > 0 && cpu.Numa == nil {
		cpu.Numa = &libvirtxml.DomainNuma{}
		for _, c := range vm.GetNuma() {
			id := uint(c.GetId())
			cpu.Numa.Cell = append(cpu.Numa.Cell, libvirtxml.DomainCell{
				ID: &id, CPUs: c.GetCpus(), Memory: uint(c.GetMemoryMib()), Unit: "MiB",
			})
		}
	}
	return cpu, nil
}
