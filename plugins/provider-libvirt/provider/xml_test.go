package provider

import (
	"strings"
	"testing"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	"libvirt.org/go/libvirtxml"
)

const testUUID = "1a2b3c4d5e6f708192a3b4c5d6e7f809"

var testEnv = &providerv1.EnvRef{PrefixPath: "/work/.lago/default", Uuid: testUUID}

func TestNames(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"domain", domainName(testUUID, "vm0"), "1a2b3c4d-vm0"},
		{"network short", networkName(testUUID, "n0"), "1a2b-n0"},
		{"network exactly 10", networkName(testUUID, "abcdefghij"), "1a2b-abcdefghij"},
		{"bridge short", bridgeName(testUUID, "n0"), "1a2b-n0-nic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
	long := networkName(testUUID, "management-network")
	if len(long) != 15 || !strings.HasPrefix(long, "1a2b-") {
		t.Fatalf("long network name %q: want 15 chars starting 1a2b-", long)
	}
	if long == networkName(testUUID, "management-networ2") {
		t.Fatal("two long network names collide")
	}
	for _, n := range []string{"n0", "abcdefgh", "abcdefgx", "management-network", "x"} {
		if b := bridgeName(testUUID, n); len(b) > maxBridgeNameLen {
			t.Errorf("bridge of %q is %q, longer than %d", n, b, maxBridgeNameLen)
		}
	}
	if bridgeName(testUUID, "abcdefgh") == bridgeName(testUUID, "abcdefgx") {
		t.Fatal("bridges of distinct networks collide")
	}
}

func TestOwnerTagRoundTrip(t *testing.T) {
	s, err := ownerTag{Prefix: "/p", UUID: "u1", Name: "vm0"}.marshal()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		inner  string
		wantOK bool
	}{
		{"ours", s, true},
		{"ours after foreign", `<app xmlns="urn:other"><x/></app>` + s, true},
		{"prefixed form libvirt writes", `<lago:owner xmlns:lago="` + OwnerNamespace + `" prefix="/p" uuid="u1" name="vm0"/>`, true},
		{"foreign only", `<owner xmlns="urn:other" uuid="u1"/>`, false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, ok, err := parseOwner(tt.inner)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if ok && (o.UUID != "u1" || o.Prefix != "/p" || o.Name != "vm0") {
				t.Fatalf("owner = %+v", o)
			}
		})
	}
}

func mgmtNet() *providerv1.Network {
	return &providerv1.Network{
		Name: "n0", Type: "nat", Gateway: "192.168.201.1", PrefixLength: 24,
		DhcpStart: "192.168.201.100", DhcpEnd: "192.168.201.254", Management: true,
		DnsDomainName: "lago.local",
		Hosts: []*providerv1.DhcpHost{
			{Name: "vm0", Mac: "54:52:C0:A8:C9:02", Ip: "192.168.201.2"},
			{Name: "vm1", Mac: "54:52:c0:a8:c9:03", Ip: "192.168.201.3"},
			{Name: "vm0-eth0", Mac: "54:52:c0:a8:c9:02", Ip: "192.168.201.2"},
		},
		DnsRecords: []*providerv1.DnsRecord{
			{Hostname: "vm1", Ip: "192.168.201.3"},
			{Hostname: "vm0", Ip: "192.168.201.2"},
			{Hostname: "vm0-eth0", Ip: "192.168.201.2"},
		},
	}
}

func parseNet(t *testing.T, env *providerv1.EnvRef, n *providerv1.Network) *libvirtxml.Network {
	t.Helper()
	s, err := networkXML(env, n, false)
	if err != nil {
		t.Fatalf("networkXML: %v", err)
	}
	var x libvirtxml.Network
	if err := x.Unmarshal(s); err != nil {
		t.Fatalf("unmarshal generated xml: %v\n%s", err, s)
	}
	return &x
}

func TestNetworkXMLManagementNAT(t *testing.T) {
	x := parseNet(t, testEnv, mgmtNet())
	if x.Name != "1a2b-n0" || x.Bridge == nil || x.Bridge.Name != "1a2b-n0-nic" {
		t.Fatalf("name %q bridge %+v", x.Name, x.Bridge)
	}
	if x.Forward == nil || x.Forward.Mode != "nat" {
		t.Fatalf("forward = %+v, want nat", x.Forward)
	}
	if len(x.IPs) != 1 || x.IPs[0].Address != "192.168.201.1" || x.IPs[0].Prefix != 24 {
		t.Fatalf("ips = %+v", x.IPs)
	}
	dhcp := x.IPs[0].DHCP
	if dhcp == nil || len(dhcp.Ranges) != 1 || dhcp.Ranges[0].Start != "192.168.201.100" || dhcp.Ranges[0].End != "192.168.201.254" {
		t.Fatalf("dhcp = %+v", dhcp)
	}
	// One host entry per MAC/IP: the duplicate name for vm0's NIC is dropped.
	if len(dhcp.Hosts) != 2 || dhcp.Hosts[0].MAC != "54:52:c0:a8:c9:02" || dhcp.Hosts[0].IP != "192.168.201.2" || dhcp.Hosts[0].Name != "vm0" {
		t.Fatalf("dhcp hosts = %+v", dhcp.Hosts)
	}
	if x.Domain == nil || x.Domain.Name != "lago.local" || x.Domain.LocalOnly != "yes" {
		t.Fatalf("domain = %+v", x.Domain)
	}
	if x.DNS == nil || x.DNS.Enable == "no" || len(x.DNS.Host) != 2 {
		t.Fatalf("dns = %+v", x.DNS)
	}
	h := x.DNS.Host[0]
	if h.IP != "192.168.201.2" || len(h.Hostnames) != 2 || h.Hostnames[0].Hostname != "vm0" || h.Hostnames[1].Hostname != "vm0-eth0" {
		t.Fatalf("first dns host = %+v", h)
	}
	o, ok, err := parseOwner(x.Metadata.XML)
	if err != nil || !ok || o.UUID != testUUID || o.Prefix != testEnv.PrefixPath || o.Name != "n0" {
		t.Fatalf("owner = %+v %v %v", o, ok, err)
	}
	if x.MTU != nil {
		t.Fatalf("mtu set without being asked: %+v", x.MTU)
	}
}

// TestNetworkXMLBridgeSTP: without bridge_stp the bridge runs no spanning
// tree (with it, Linux holds each new VM port 4 s before forwarding); the
// setting turns it back on for guests that bridge NICs into a loop.
func TestNetworkXMLBridgeSTP(t *testing.T) {
	for _, typ := range []string{"nat", "bridge"} {
		for _, stp := range []bool{false, true} {
			n := mgmtNet()
			n.Type = typ
			s, err := networkXML(testEnv, n, stp)
			if err != nil {
				t.Fatalf("%s stp=%v: %v", typ, stp, err)
			}
			var x libvirtxml.Network
			if err := x.Unmarshal(s); err != nil {
				t.Fatal(err)
			}
			want := "off"
			if stp {
				want = "on"
			}
			if x.Bridge == nil || x.Bridge.STP != want || x.Bridge.Delay != "0" {
				t.Errorf("%s stp=%v: bridge %+v, want stp=%s delay=0", typ, stp, x.Bridge, want)
			}
		}
	}
}

func TestNetworkXMLVariants(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(n *providerv1.Network)
		check func(t *testing.T, x *libvirtxml.Network)
	}{
		{"non-management has dns disabled and no domain", func(n *providerv1.Network) { n.Management = false }, func(t *testing.T, x *libvirtxml.Network) {
			if x.DNS == nil || x.DNS.Enable != "no" || x.Domain != nil {
				t.Fatalf("dns %+v domain %+v", x.DNS, x.Domain)
			}
		}},
		{"default dns domain", func(n *providerv1.Network) { n.DnsDomainName = "" }, func(t *testing.T, x *libvirtxml.Network) {
			if x.Domain == nil || x.Domain.Name != "lago.local" {
				t.Fatalf("domain %+v", x.Domain)
			}
		}},
		{"mtu", func(n *providerv1.Network) { n.Mtu = 9000 }, func(t *testing.T, x *libvirtxml.Network) {
			if x.MTU == nil || x.MTU.Size != 9000 {
				t.Fatalf("mtu %+v", x.MTU)
			}
		}},
		{"octet dhcp range", func(n *providerv1.Network) { n.DhcpStart, n.DhcpEnd = "100", "200" }, func(t *testing.T, x *libvirtxml.Network) {
			r := x.IPs[0].DHCP.Ranges[0]
			if r.Start != "192.168.201.100" || r.End != "192.168.201.200" {
				t.Fatalf("range %+v", r)
			}
		}},
		{"ipv6", func(n *providerv1.Network) { n.Ipv6Gateway, n.Ipv6PrefixLength = "fd8f:1391:3a82:201::1", 64 }, func(t *testing.T, x *libvirtxml.Network) {
			if len(x.IPs) != 2 || x.IPs[1].Family != "ipv6" || x.IPs[1].Address != "fd8f:1391:3a82:201::1" || x.IPs[1].Prefix != 64 {
				t.Fatalf("ips %+v", x.IPs)
			}
			d6 := x.IPs[1].DHCP
			if d6 == nil || len(d6.Ranges) != 1 || d6.Ranges[0].Start != "fd8f:1391:3a82:201::c0a8:c964" ||
				len(d6.Hosts) != 2 || d6.Hosts[0].ID != "0:3:0:1:54:52:c0:a8:c9:02" || d6.Hosts[0].IP != "fd8f:1391:3a82:201::c0a8:c902" {
				t.Fatalf("dhcpv6 %+v", d6)
			}
			var aaaa bool
			for _, h := range x.DNS.Host {
				aaaa = aaaa || (h.IP == "fd8f:1391:3a82:201::c0a8:c902" && h.Hostnames[0].Hostname == "vm0")
			}
			if !aaaa {
				t.Fatalf("no IPv6 dns record for vm0: %+v", x.DNS.Host)
			}
		}},
		{"bridge is isolated", func(n *providerv1.Network) { *n = providerv1.Network{Name: "br", Type: "bridge"} }, func(t *testing.T, x *libvirtxml.Network) {
			if x.Forward != nil || len(x.IPs) != 0 || x.Domain != nil {
				t.Fatalf("bridge net has forward %+v ips %+v domain %+v", x.Forward, x.IPs, x.Domain)
			}
			if x.Bridge == nil || x.Bridge.Name != "1a2b-br-nic" {
				t.Fatalf("bridge %+v", x.Bridge)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := mgmtNet()
			tt.edit(n)
			tt.check(t, parseNet(t, testEnv, n))
		})
	}
}

func TestNetworkXMLErrors(t *testing.T) {
	tests := []struct {
		name string
		n    *providerv1.Network
		want string
	}{
		{"bad type", &providerv1.Network{Name: "n", Type: "ovs"}, "unknown type"},
		{"no gateway", &providerv1.Network{Name: "n", Type: "nat"}, "gateway"},
		{"bad dhcp", &providerv1.Network{Name: "n", Gateway: "192.168.1.1", DhcpStart: "x", DhcpEnd: "5"}, "dhcp start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := networkXML(testEnv, tt.n, false)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func testVM() *providerv1.VM {
	return &providerv1.VM{
		Name: "vm0", MemoryMib: 512, Vcpu: 2,
		Nics: []*providerv1.Nic{{Net: "n0", Ip: "192.168.201.2", Mac: "54:52:C0:A8:C9:02"}, {Net: "n1", Mac: "54:52:c0:a8:ca:02", Mtu: 9000}},
		Disks: []*providerv1.Disk{
			{Name: "root", Dev: "vda", Type: "template", Path: "/p/images/vm0_root.qcow2", TemplatePath: "/store/t", TemplateFormat: "raw"},
			{Name: "data", Dev: "sdb", Type: "empty", Path: "/p/images/vm0_data.qcow2", SizeBytes: 1 << 30},
			{Name: "cd", Dev: "vdc", Type: "iso", SourcePath: "/isos/x.iso"},
			{Name: "f", Dev: "vdd", Type: "file", SourcePath: "/img/f.raw", Format: "raw"},
		},
		SerialLogPath: "/p/logs/vm0.serial.log",
	}
}

func parseDom(t *testing.T, cfg settings, dt string, vm *providerv1.VM) *libvirtxml.Domain {
	t.Helper()
	s, err := buildDomainXML(cfg, dt, testEnv, vm, "", remoteSerialLogForTest)
	if err != nil {
		t.Fatalf("buildDomainXML: %v", err)
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(s); err != nil {
		t.Fatalf("unmarshal: %v\n%s", err, s)
	}
	return &d
}

func TestDomainXMLLocal(t *testing.T) {
	d := parseDom(t, settings{}, domainTypeQEMU, testVM())
	if d.Type != "qemu" || d.Name != "1a2b3c4d-vm0" {
		t.Fatalf("type %q name %q", d.Type, d.Name)
	}
	if d.Memory.Value != 512 || d.Memory.Unit != "MiB" || d.VCPU.Value != 2 {
		t.Fatalf("memory %+v vcpu %+v", d.Memory, d.VCPU)
	}
	disks := d.Devices.Disks
	if len(disks) != 4 {
		t.Fatalf("%d disks", len(disks))
	}
	wantDisks := []struct{ dev, bus, device, file, format string }{
		{"vda", "virtio", "disk", "/p/images/vm0_root.qcow2", "qcow2"},
		{"sdb", "scsi", "disk", "/p/images/vm0_data.qcow2", "qcow2"},
		{"hdc", "ide", "cdrom", "/isos/x.iso", "raw"},
		{"vdd", "virtio", "disk", "/img/f.raw", "raw"},
	}
	for i, w := range wantDisks {
		g := disks[i]
		if g.Target.Dev != w.dev || g.Target.Bus != w.bus || g.Device != w.device || g.Source.File == nil || g.Source.File.File != w.file || g.Driver.Type != w.format {
			t.Errorf("disk %d = dev %s bus %s device %s src %+v fmt %s, want %+v", i, g.Target.Dev, g.Target.Bus, g.Device, g.Source.File, g.Driver.Type, w)
		}
		if g.Boot == nil || g.Boot.Order != uint(i+1) {
			t.Errorf("disk %d boot %+v", i, g.Boot)
		}
	}
	if disks[2].ReadOnly == nil {
		t.Error("cdrom is not read-only")
	}
	scsi := 0
	for _, c := range d.Devices.Controllers {
		if c.Type == "scsi" && c.Model == "virtio-scsi" {
			scsi++
		}
	}
	if scsi != 1 {
		t.Errorf("%d virtio-scsi controllers, want 1", scsi)
	}
	ifs := d.Devices.Interfaces
	if len(ifs) != 2 || ifs[0].Source.Network.Network != "1a2b-n0" || ifs[0].MAC.Address != "54:52:c0:a8:c9:02" || ifs[0].Model.Type != "virtio" {
		t.Fatalf("interfaces %+v", ifs)
	}
	if ifs[0].Driver != nil {
		t.Errorf("nic has a driver element %+v; vhost is unavailable here", ifs[0].Driver)
	}
	if ifs[1].MTU == nil || ifs[1].MTU.Size != 9000 {
		t.Errorf("nic mtu %+v", ifs[1].MTU)
	}
	if len(d.Devices.Serials) != 1 || d.Devices.Serials[0].Source.Pty == nil || d.Devices.Serials[0].Log == nil ||
		d.Devices.Serials[0].Log.File != "/p/logs/vm0.serial.log" || d.Devices.Serials[0].Log.Append != "on" {
		t.Errorf("serial %+v", d.Devices.Serials)
	}
	if len(d.Devices.Channels) != 1 || d.Devices.Channels[0].Target.VirtIO == nil || d.Devices.Channels[0].Target.VirtIO.Name != guestAgentChannel {
		t.Errorf("channels %+v", d.Devices.Channels)
	}
	if len(d.Devices.RNGs) != 1 || d.Devices.RNGs[0].Model != "virtio" || d.Devices.RNGs[0].Backend.Random == nil {
		t.Errorf("rng %+v", d.Devices.RNGs)
	}
	o, ok, err := parseOwner(d.Metadata.XML)
	if err != nil || !ok || o.UUID != testUUID || o.Name != "vm0" {
		t.Errorf("owner %+v %v %v", o, ok, err)
	}
}

func TestDomainXMLRemoteUsesVolumes(t *testing.T) {
	cfg := settings{Remote: true, Pool: "lago"}
	d := parseDom(t, cfg, domainTypeQEMU, testVM())
	for i, disk := range d.Devices.Disks {
		if disk.Source.Volume == nil || disk.Source.Volume.Pool != "lago" || !strings.HasPrefix(disk.Source.Volume.Volume, "lago-"+testUUID+"-vm0-") {
			t.Errorf("disk %d source %+v, want a volume in pool lago", i, disk.Source)
		}
	}
	if l := d.Devices.Serials[0].Log; l == nil || l.File != remoteSerialLogForTest {
		t.Errorf("remote serial log %+v, want %s (not the client's path)", l, remoteSerialLogForTest)
	}
}

// remoteSerialLogForTest is the serial log file parseDom passes for remote
// domains.
const remoteSerialLogForTest = "/pool/lago-" + testUUID + "-vm0.serial.log"

func TestCPUChoice(t *testing.T) {
	tests := []struct {
		name      string
		dt        string
		model     string
		custom    string
		numa      []*providerv1.NumaCell
		wantMode  string
		wantModel string
		wantErr   string
		check     func(t *testing.T, c *libvirtxml.DomainCPU)
	}{
		{name: "kvm default is host-passthrough", dt: "kvm", wantMode: "host-passthrough"},
		{name: "tcg default is never host-passthrough, and has no 5-level paging", dt: "qemu", wantMode: "maximum",
			check: func(t *testing.T, c *libvirtxml.DomainCPU) {
				if len(c.Features) != 1 || c.Features[0].Name != "la57" || c.Features[0].Policy != "disable" {
					t.Fatalf("features %+v, want la57 disabled", c.Features)
				}
			}},
		{name: "named model", dt: "qemu", model: "Westmere", wantMode: "custom", wantModel: "Westmere"},
		{name: "custom verbatim gets topology", dt: "qemu",
			custom:   `<cpu mode="custom" match="exact"><model fallback="allow">Westmere</model><feature policy="optional" name="vmx"/></cpu>`,
			wantMode: "custom", wantModel: "Westmere",
			check: func(t *testing.T, c *libvirtxml.DomainCPU) {
				if len(c.Features) != 1 || c.Features[0].Name != "vmx" {
					t.Fatalf("features %+v", c.Features)
				}
			}},
		{name: "custom topology kept", dt: "qemu",
			custom:   `<cpu mode="custom"><model>qemu64</model><topology sockets="1" cores="2" threads="1"/></cpu>`,
			wantMode: "custom", wantModel: "qemu64",
			check: func(t *testing.T, c *libvirtxml.DomainCPU) {
				if c.Topology.Cores != 2 || c.Topology.Sockets != 1 {
					t.Fatalf("topology %+v", c.Topology)
				}
			}},
		{name: "custom host-passthrough refused under tcg", dt: "qemu", custom: `<cpu mode="host-passthrough"/>`, wantErr: "host-passthrough"},
		{name: "custom garbage", dt: "qemu", custom: `<cpu mode=`, wantErr: "cpu_custom"},
		{name: "numa cells", dt: "qemu", numa: []*providerv1.NumaCell{{Id: 0, Cpus: "0", MemoryMib: 256}, {Id: 1, Cpus: "1", MemoryMib: 256}},
			wantMode: "maximum",
			check: func(t *testing.T, c *libvirtxml.DomainCPU) {
				if c.Numa == nil || len(c.Numa.Cell) != 2 || *c.Numa.Cell[1].ID != 1 || c.Numa.Cell[1].Memory != 256 || c.Numa.Cell[1].Unit != "MiB" {
					t.Fatalf("numa %+v", c.Numa)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm := &providerv1.VM{Name: "vm0", Vcpu: 2, CpuModel: tt.model, CpuCustom: tt.custom, Numa: tt.numa}
			c, err := cpuXML(vm, tt.dt)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Mode != tt.wantMode {
				t.Fatalf("mode %q, want %q", c.Mode, tt.wantMode)
			}
			if tt.wantModel != "" && (c.Model == nil || c.Model.Value != tt.wantModel) {
				t.Fatalf("model %+v, want %q", c.Model, tt.wantModel)
			}
			if c.Topology == nil {
				t.Fatal("no topology")
			}
			if tt.custom == "" && (c.Topology.Sockets != 2 || c.Topology.Cores != 1 || c.Topology.Threads != 1) {
				t.Fatalf("topology %+v, want sockets=vcpu", c.Topology)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestDomainXMLErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(vm *providerv1.VM)
		want string
	}{
		{"no memory", func(vm *providerv1.VM) { vm.MemoryMib = 0 }, "memory"},
		{"bad dev", func(vm *providerv1.VM) { vm.Disks[0].Dev = "xvda" }, "xvda"},
		{"template without path", func(vm *providerv1.VM) { vm.Disks[0].Path = "" }, "no path"},
		{"nic without net", func(vm *providerv1.VM) { vm.Nics[0].Net = "" }, "nic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm := testVM()
			tt.edit(vm)
			_, err := buildDomainXML(settings{}, domainTypeQEMU, testEnv, vm, "", "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
