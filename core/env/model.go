package env

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"

	"github.com/lago-go/lago/core/prefix"
	"github.com/lago-go/lago/core/spec"
)

// Names of a prefix's files, as core/prefix (the one reader and writer of
// a prefix, where they are defined) has them.
const (
	fileInitialized = prefix.InitializedFile
	fileUUID        = prefix.UUIDFile
	fileKey         = prefix.PrivateKeyFile
	dirVirt         = prefix.VirtDir
	dirLogs         = prefix.LogsDir
	dirImages       = prefix.ImagesDir
	fileEnv         = prefix.EnvFile
)

// Environment is a prefix loaded from disk.
type Environment struct {
	// Path is the prefix folder, absolute and with symlinks resolved.
	Path string
	UUID string
	// Initialized is false for a half-made prefix.
	Initialized bool
	// Complete is false when virt/env or a spec it names is missing or
	// unreadable (a half-made prefix).
	Complete bool
	Nets     []*spec.Net
	VMs      []*spec.VM
	// incomplete says why Complete is false.
	incomplete error
	// givenPath is the path the caller named (maybe through a symlink).
	givenPath string
}

// dir is e's prefix folder, whose files core/prefix names.
func (e *Environment) dir() *prefix.Prefix { return &prefix.Prefix{Path: e.Path} }

// specs copies e's specs into what core/prefix saves and builds status
// from.
func (e *Environment) specs() *prefix.Specs {
	s := &prefix.Specs{Nets: make([]spec.Net, 0, len(e.Nets)), VMs: make([]spec.VM, 0, len(e.VMs))}
	for _, n := range e.Nets {
		s.Nets = append(s.Nets, *n)
	}
	for _, v := range e.VMs {
		s.VMs = append(s.VMs, *v)
	}
	return s
}

// Ref is the EnvRef providers tag their objects with.
func (e *Environment) Ref() *providerv1.EnvRef {
	return &providerv1.EnvRef{PrefixPath: e.Path, Uuid: e.UUID}
}

// VM returns the VM named name, or nil.
func (e *Environment) VM(name string) *spec.VM {
	for _, v := range e.VMs {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// Net returns the net named name, or nil.
func (e *Environment) Net(name string) *spec.Net {
	for _, n := range e.Nets {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// SerialLogPath is where a VM's serial console is logged.
func (e *Environment) SerialLogPath(vm string) string { return e.dir().SerialLogPath(vm) }

// KeyPath is the prefix's private ssh key.
func (e *Environment) KeyPath() string { return e.dir().PrivateKeyPath() }

// UUIDPath is the file leases are tied to.
func (e *Environment) UUIDPath() string { return e.dir().UUIDPath() }

// KnownHostsPath is the prefix's own known_hosts: its guests reuse
// addresses that other prefixes' guests had.
func (e *Environment) KnownHostsPath() string { return e.dir().KnownHostsPath() }

// vmProvider is the provider instance a VM runs on.
func (m *Manager) vmProvider(vm *spec.VM) string {
	if vm.VMProvider != "" {
		return vm.VMProvider
	}
	return m.opts.DefaultProvider
}

// netProviders are the provider instances a net must exist on: those of
// the VMs with a NIC on it, or the default one for a net no VM uses.
func (m *Manager) netProviders(e *Environment, net string) []string {
	seen := map[string]bool{}
	var out []string
	for _, vm := range e.VMs {
		for _, nic := range vm.NICs {
			if nic.Net == net && !seen[m.vmProvider(vm)] {
				seen[m.vmProvider(vm)] = true
				out = append(out, m.vmProvider(vm))
			}
		}
	}
	if len(out) == 0 {
		out = []string{m.opts.DefaultProvider}
	}
	sort.Strings(out)
	return out
}

// providersOf lists every provider instance the environment uses.
func (m *Manager) providersOf(e *Environment) []string {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, vm := range e.VMs {
		add(m.vmProvider(vm))
	}
	for _, n := range e.Nets {
		for _, p := range m.netProviders(e, n.Name) {
			add(p)
		}
	}
	sort.Strings(out)
	return out
}

// Load reads the prefix at path. A missing or uninitialized prefix is a
// user error.
func (m *Manager) Load(path string) (*Environment, error) {
	e, err := loadLenient(path)
	if err != nil {
		return nil, err
	}
	if !e.Initialized {
		return nil, userErrorf("prefix %s is not initialized (run lago init, or lago destroy to remove it)", e.Path)
	}
	if !e.Complete {
		return nil, fmt.Errorf("load prefix %s: specs are incomplete; destroy and init it again: %w", e.Path, e.incomplete)
	}
	return e, nil
}

// loadLenient reads whatever a prefix holds, for Destroy of half-made
// prefixes: missing specs leave Complete false instead of failing. The
// files are read by core/prefix, so a spec gets the same defaults here as
// everywhere (a net without a type is nat).
func loadLenient(path string) (*Environment, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolve prefix path %s: %w", path, err)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	st, err := os.Stat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, userErrorf("prefix %s does not exist", abs)
	}
	if err != nil {
		return nil, fmt.Errorf("stat prefix %s: %w", abs, err)
	}
	if !st.IsDir() {
		return nil, userErrorf("prefix %s is not a folder", abs)
	}
	p := &prefix.Prefix{Path: abs}
	e := &Environment{Path: abs, Initialized: p.Initialized()}
	if e.UUID, err = p.UUID(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("prefix %s: %w", abs, err)
	}
	specs, err := p.LoadPartial()
	e.Complete, e.incomplete = err == nil, err
	for i := range specs.Nets {
		e.Nets = append(e.Nets, &specs.Nets[i])
	}
	for i := range specs.VMs {
		e.VMs = append(e.VMs, &specs.VMs[i])
	}
	return e, nil
}

// saveSpecs writes e's specs back to its prefix: init's bootstrap records
// in each VM spec the root password it set, which status shows and ssh
// uses.
func saveSpecs(p *prefix.Prefix, e *Environment) error {
	return p.Save(e.specs())
}

// rootPassword is the root password the guest of vm has, by the one rule
// (prefix.RootPassword): status shows it, ssh tries it.
func rootPassword(vm *spec.VM, def string) string {
	return prefix.RootPassword(vm, def, prefix.GuestRootPassword)
}

// selectVMs returns the named VMs (all when names is empty), each given
// by its full name or a unique suffix of it.
func selectVMs(e *Environment, names []string) ([]*spec.VM, error) {
	if len(names) == 0 {
		return append([]*spec.VM(nil), e.VMs...), nil
	}
	var out []*spec.VM
	seen := map[string]bool{}
	for _, n := range names {
		vm, err := findVM(e, n)
		if err != nil {
			return nil, err
		}
		if !seen[vm.Name] {
			seen[vm.Name] = true
			out = append(out, vm)
		}
	}
	return out, nil
}

// findVM resolves a VM by exact name or unique name suffix, as the
// original's shell verb does.
func findVM(e *Environment, name string) (*spec.VM, error) {
	if vm := e.VM(name); vm != nil {
		return vm, nil
	}
	var matches []string
	var found *spec.VM
	for _, vm := range e.VMs {
		if strings.HasSuffix(vm.Name, name) {
			matches = append(matches, vm.Name)
			found = vm
		}
	}
	switch len(matches) {
	case 1:
		return found, nil
	case 0:
		return nil, userErrorf("no vm named %q in prefix %s", name, e.Path)
	default:
		return nil, userErrorf("vm name %q is ambiguous: %s", name, strings.Join(matches, ", "))
	}
}

// toProviderNet converts a net spec to what providers take.
// ipv6ULAPrefix is the original's IPv6 prefix of nat nets.
const ipv6ULAPrefix = "fd8f:1391:3a82:"

func toProviderNet(e *Environment, n *spec.Net) *providerv1.Network {
	pn := &providerv1.Network{
		Name:          n.Name,
		Type:          n.Type,
		Gateway:       n.Gw,
		Management:    n.Management,
		DnsDomainName: n.DNSDomainName,
		Mtu:           int32(n.MTU),
	}
	if pn.Type == "" {
		pn.Type = spec.NetNAT
	}
	if p, ok := n.Prefix(); ok {
		pn.PrefixLength = int32(p.Bits())
		if pn.Type == spec.NetNAT && p.Addr().Is4() {
			// As the original: every nat net also has an IPv6 ULA /64
			// named after its subnet's third octet, written in decimal
			// digits (192.168.201.0/24 -> fd8f:1391:3a82:201::/64).
			pn.Ipv6Gateway = fmt.Sprintf("%s%d::1", ipv6ULAPrefix, p.Addr().As4()[2])
			pn.Ipv6PrefixLength = 64
		}
		if n.DHCP != nil {
			pn.DhcpStart = octet(p, n.DHCP.Start)
			pn.DhcpEnd = octet(p, n.DHCP.End)
		}
	}
	for _, vm := range e.VMs {
		eth := 0
		for i, nic := range vm.NICs {
			if nic.Net != n.Name {
				continue
			}
			if nic.IP != "" {
				name := fmt.Sprintf("%s-eth%d", vm.Name, i)
				if i == vm.MgmtNIC() || (vm.MgmtNet == "" && eth == 0) {
					name = vm.Name
				}
				mac := nic.MAC
				if mac == "" {
					mac = spec.MACFromIP(nic.IP)
				}
				pn.Hosts = append(pn.Hosts, &providerv1.DhcpHost{Name: name, Mac: mac, Ip: nic.IP})
			}
			eth++
		}
	}
	if n.Management {
		names := make([]string, 0, len(n.DNSRecords))
		for h := range n.DNSRecords {
			names = append(names, h)
		}
		sort.Strings(names)
		for _, h := range names {
			pn.DnsRecords = append(pn.DnsRecords, &providerv1.DnsRecord{Hostname: h, Ip: n.DNSRecords[h]})
		}
	}
	return pn
}

// octet returns the address of p whose last octet is last ("" if invalid).
func octet(p netip.Prefix, last int) string {
	if last <= 0 || last > 255 {
		return ""
	}
	a := p.Masked().Addr().As4()
	a[3] = byte(last)
	return netip.AddrFrom4(a).String()
}

// toProviderVM converts a VM spec to what providers take: paths are made
// absolute (providers may not know $LAGO_PREFIX_PATH) and the serial log
// goes to <prefix>/logs/<vm>.serial.log.
func toProviderVM(e *Environment, vm *spec.VM) (*providerv1.VM, error) {
	raw, err := json.Marshal(vm)
	if err != nil {
		return nil, fmt.Errorf("encode spec of vm %s: %w", vm.Name, err)
	}
	pv := &providerv1.VM{
		Name:          vm.Name,
		MemoryMib:     int64(vm.Memory),
		Vcpu:          int32(vm.VCPU),
		CpuModel:      vm.CPUModel,
		VmType:        vm.VMType,
		SerialLogPath: e.SerialLogPath(vm.Name),
		SpecJson:      raw,
	}
	if pv.Vcpu == 0 {
		pv.Vcpu = spec.DefaultVCPU
	}
	cpu, err := cpuCustomXML(vm.CPUCustom)
	if err != nil {
		return nil, fmt.Errorf("vm %s: %w", vm.Name, err)
	}
	pv.CpuCustom = cpu
	for _, c := range vm.Numa {
		pv.Numa = append(pv.Numa, &providerv1.NumaCell{Id: int32(c.ID), Cpus: c.CPUs, MemoryMib: int64(c.Memory)})
	}
	for _, nic := range vm.NICs {
		mac := nic.MAC
		if mac == "" {
			mac = spec.MACFromIP(nic.IP)
		}
		pv.Nics = append(pv.Nics, &providerv1.Nic{Net: nic.Net, Ip: nic.IP, Mac: mac, Mtu: int32(nic.MTU)})
	}
	for i, d := range vm.Disks {
		pd := &providerv1.Disk{
			Name:      d.Name,
			Dev:       d.Dev,
			Type:      d.Type,
			Format:    d.Format,
			Path:      spec.ExpandPrefixPath(d.Path, e.Path),
			MakeACopy: d.MakeACopy,
		}
		switch {
		case d.SourcePath != "":
			pd.SourcePath = spec.ExpandPrefixPath(d.SourcePath, e.Path)
		case d.Type == spec.DiskFile || d.Type == spec.DiskISO:
			pd.SourcePath = pd.Path
		}
		if d.Type == spec.DiskTemplate && d.TemplateType == "qcow2" {
			pd.TemplatePath, pd.TemplateFormat = pd.SourcePath, "qcow2"
		}
		if t := d.TemplateImage; t != nil {
			pd.TemplatePath, pd.TemplateFormat, pd.TemplateKey, pd.TemplateHash = t.Path, t.Format, t.Key, t.Hash
		}
		if pd.Name == "" {
			pd.Name = d.Dev
		}
		if pd.Name == "" {
			pd.Name = fmt.Sprintf("disk%d", i)
		}
		if d.Size != "" {
			n, err := spec.ParseSize(d.Size)
			if err != nil {
				return nil, fmt.Errorf("vm %s disk %s: %w", vm.Name, pd.Name, err)
			}
			pd.SizeBytes = n
		}
		pv.Disks = append(pv.Disks, pd)
	}
	if len(vm.Metadata) > 0 {
		pv.Metadata = map[string]string{}
		for k, v := range vm.Metadata {
			switch x := v.(type) {
			case string:
				pv.Metadata[k] = x
			default:
				b, err := json.Marshal(x)
				if err == nil {
					pv.Metadata[k] = string(b)
				}
			}
		}
	}
	return pv, nil
}

// withProvider pairs an object with the provider it lives on.
type boundVM struct {
	spec     *spec.VM
	pv       *providerv1.VM
	instance string
}

type boundNet struct {
	spec     *spec.Net
	pn       *providerv1.Network
	instance string
}

func (b boundNet) key() string { return b.instance + "/" + b.spec.Name }

// loadBound loads the prefix and binds the named VMs (all when vms is
// empty) to their provider instances: the preamble of every verb that acts
// on a selection of VMs.
func (m *Manager) loadBound(prefix string, vms []string) (*Environment, []*spec.VM, []boundVM, error) {
	e, err := m.Load(prefix)
	if err != nil {
		return nil, nil, nil, err
	}
	sel, err := selectVMs(e, vms)
	if err != nil {
		return nil, nil, nil, err
	}
	bound, err := m.bindVMs(e, sel)
	if err != nil {
		return nil, nil, nil, err
	}
	return e, sel, bound, nil
}

// bindVMs converts VMs and pairs them with their providers.
func (m *Manager) bindVMs(e *Environment, vms []*spec.VM) ([]boundVM, error) {
	out := make([]boundVM, 0, len(vms))
	for _, vm := range vms {
		pv, err := toProviderVM(e, vm)
		if err != nil {
			return nil, err
		}
		out = append(out, boundVM{spec: vm, pv: pv, instance: m.vmProvider(vm)})
	}
	return out, nil
}

// bindNets pairs each net with each provider it must exist on; names
// limits the nets (nil for all).
func (m *Manager) bindNets(e *Environment, names map[string]bool) []boundNet {
	var out []boundNet
	for _, n := range e.Nets {
		if names != nil && !names[n.Name] {
			continue
		}
		for _, inst := range m.netProviders(e, n.Name) {
			out = append(out, boundNet{spec: n, pn: toProviderNet(e, n), instance: inst})
		}
	}
	return out
}

// resolveAll resolves every instance once.
func (m *Manager) resolveAll(ctx context.Context, instances []string) (map[string]providerHandle, error) {
	out := map[string]providerHandle{}
	for _, inst := range instances {
		if _, ok := out[inst]; ok {
			continue
		}
		p, err := m.provider(ctx, inst)
		if err != nil {
			return nil, err
		}
		out[inst] = providerHandle{p}
	}
	return out, nil
}
