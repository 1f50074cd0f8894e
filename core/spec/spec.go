// Package spec holds the Go types of the specs a prefix keeps on disk
// (virt/env, virt/net-<name>, virt/vm-<name>).
//
// The JSON key names are the original Lago's, which are also the init-file
// key spellings (memory, vcpu, ssh-user, service_provider, dns_domain_name,
// ...): a workdir written by the original loads into these types, and ours is
// readable by anyone who knows the original's format. Decoding ignores keys
// these types do not know, so specs of a newer or older layout still load.
//
// Paths inside specs are stored as "$LAGO_PREFIX_PATH/..." so a prefix can
// be moved; ExpandPrefixPath and CollapsePrefixPath convert.
package spec

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// PrefixPathVar is the variable that stands for the prefix folder inside
// stored specs.
const PrefixPathVar = "$LAGO_PREFIX_PATH"

// Network types.
const (
	NetNAT    = "nat"
	NetBridge = "bridge"
)

// Disk types.
const (
	DiskTemplate = "template"
	DiskFile     = "file"
	DiskEmpty    = "empty"
	DiskISO      = "iso"
)

// Defaults of the original.
const (
	DefaultVCPU          = 2
	DefaultDNSDomainName = "lago.local"
	DefaultPrefixLength  = 24
	DefaultDiskFormat    = "qcow2"
)

// Env is virt/env: the names of the prefix's networks and VMs, each of
// which has its own virt/net-<name> or virt/vm-<name> file.
type Env struct {
	Nets []string `json:"nets"`
	VMs  []string `json:"vms"`
}

// DHCP is a net's DHCP range. Start and End are last octets of addresses in
// the net's /24 (the original's meaning: start: 100 is x.y.z.100).
type DHCP struct {
	Start int `json:"start"`
	End   int `json:"end"`
}

// Net is the spec of one network (virt/net-<name>).
type Net struct {
	Name string `json:"name"`
	// Type is NetNAT or NetBridge.
	Type string `json:"type"`
	// Gw is the gateway address (x.y.z.1 of a leased subnet); empty on a
	// bridge net.
	Gw string `json:"gw,omitempty"`
	// PrefixLength is the subnet's prefix length; 0 means 24, the only
	// length the original knows.
	PrefixLength int   `json:"prefix_length,omitempty"`
	DHCP         *DHCP `json:"dhcp,omitempty"`
	Management   bool  `json:"management"`
	// DNSDomainName is set on the management net only.
	DNSDomainName string `json:"dns_domain_name,omitempty"`
	// DNSRecords maps host names to addresses; the management net serves
	// them in its domain.
	DNSRecords map[string]string `json:"dns_records,omitempty"`
	// DNSForward is, on a non-management net, the address its DNS server
	// forwards to (the management net's gateway).
	DNSForward string `json:"dns_forward,omitempty"`
	MTU        int    `json:"mtu,omitempty"`
	// Mapping names every NIC on this net: <vm> (management NIC),
	// <vm>-eth<i>, <vm>-<net>, <vm>-<net>-<n>, each to its IP.
	Mapping map[string]string `json:"mapping"`
}

// Prefix returns the net's subnet (gateway and prefix length) and whether
// it has one: bridge nets and nets without a gateway have none.
func (n *Net) Prefix() (netip.Prefix, bool) {
	if n.Gw == "" {
		return netip.Prefix{}, false
	}
	a, err := netip.ParseAddr(n.Gw)
	if err != nil || !a.Is4() {
		return netip.Prefix{}, false
	}
	l := n.PrefixLength
	if l == 0 {
		l = DefaultPrefixLength
	}
	p, err := a.Prefix(l)
	if err != nil {
		return netip.Prefix{}, false
	}
	return p, true
}

// NIC is one network interface of a VM.
type NIC struct {
	Net string `json:"net"`
	IP  string `json:"ip,omitempty"`
	// MAC is derived from IP (see MACFromIP); specs of the original lack
	// it, so readers must fall back to MACFromIP(IP).
	MAC string `json:"mac,omitempty"`
	MTU int    `json:"mtu,omitempty"`
}

// TemplateImage names an image of the template store.
type TemplateImage struct {
	Path   string `json:"path"`
	Key    string `json:"key"`
	Hash   string `json:"hash,omitempty"`
	Format string `json:"format,omitempty"`
}

// Disk is one disk of a VM. Before init, Path of a template disk is
// empty; after init every disk has Path (under $LAGO_PREFIX_PATH/images
// unless the user's own file is used in place).
type Disk struct {
	Name string `json:"name,omitempty"`
	Dev  string `json:"dev"`
	// Type is DiskTemplate, DiskFile, DiskEmpty or DiskISO.
	Type   string `json:"type"`
	Format string `json:"format,omitempty"`
	Path   string `json:"path,omitempty"`
	// Size as written by the user, such as "10G" or "512M"; see ParseSize.
	Size            string `json:"size,omitempty"`
	TemplateName    string `json:"template_name,omitempty"`
	TemplateVersion string `json:"template_version,omitempty"`
	// TemplateRepo names the repository to take the template from; empty
	// means the configured one.
	TemplateRepo string `json:"template_repo,omitempty"`
	// TemplateType is "lago" (a repository template) or "qcow2" (Path is
	// the image to overlay), as in the original.
	TemplateType string `json:"template_type,omitempty"`
	URL          string `json:"url,omitempty"`
	MakeACopy    bool   `json:"make_a_copy,omitempty"`
	// SourcePath is the user's image a disk is made from when Path is the
	// prefix's own image: the backing image of a template disk of
	// template_type qcow2, or the file copied for make_a_copy.
	SourcePath string      `json:"source_path,omitempty"`
	Build      []BuildStep `json:"build,omitempty"`
	// Metadata is the template's metadata (distro, root-password, ...)
	// once the disk is made.
	Metadata map[string]any `json:"metadata,omitempty"`
	// TemplateImage is the store image a template disk was made from, as
	// resolved at init: providers that copy templates elsewhere (a remote
	// libvirt uploads it at start) need it after init too.
	TemplateImage *TemplateImage `json:"template_image,omitempty"`
}

// NumaCell is one guest NUMA cell.
type NumaCell struct {
	ID     int    `json:"id"`
	CPUs   string `json:"cpus"`
	Memory int    `json:"memory"`
}

// VM is the spec of one VM (virt/vm-<name>).
type VM struct {
	Name string `json:"name"`
	// Memory in MiB.
	Memory   int    `json:"memory"`
	VCPU     int    `json:"vcpu,omitempty"`
	CPUModel string `json:"cpu_model,omitempty"`
	// CPUCustom is the <cpu> element written as YAML ('@attr', '#text').
	CPUCustom map[string]any `json:"cpu_custom,omitempty"`
	Numa      []NumaCell     `json:"numa,omitempty"`
	NICs      []NIC          `json:"nics"`
	Disks     []Disk         `json:"disks"`
	Artifacts []string       `json:"artifacts,omitempty"`
	Groups    StringList     `json:"groups,omitempty"`
	// Bootstrap nil means true.
	Bootstrap       *bool  `json:"bootstrap,omitempty"`
	SSHUser         string `json:"ssh-user,omitempty"`
	SSHPassword     string `json:"ssh-password,omitempty"`
	RootPassword    string `json:"root-password,omitempty"`
	VMProvider      string `json:"vm-provider,omitempty"`
	VMType          string `json:"vm-type,omitempty"`
	ServiceProvider string `json:"service_provider,omitempty"`
	// Metadata is free-form; "deploy-scripts" (a list of paths) is the key
	// lago itself reads.
	Metadata map[string]any `json:"metadata,omitempty"`
	// MgmtNet names the VM's management net.
	MgmtNet string `json:"mgmt_net,omitempty"`
	// Distro comes from the first disk's template metadata.
	Distro string `json:"distro,omitempty"`
	// Bootstrapped is set once init bootstrapped the VM's first disk: the
	// prefix's key is then installed for root (the ansible inventory
	// needs no password for it).
	Bootstrapped bool `json:"bootstrapped,omitempty"`
}

// DoBootstrap reports whether the VM is to be bootstrapped (default true).
func (v *VM) DoBootstrap() bool { return v.Bootstrap == nil || *v.Bootstrap }

// DeployScripts returns metadata.deploy-scripts as strings.
func (v *VM) DeployScripts() []string {
	raw, ok := v.Metadata["deploy-scripts"]
	if !ok {
		return nil
	}
	switch s := raw.(type) {
	case []any:
		out := make([]string, 0, len(s))
		for _, x := range s {
			out = append(out, fmt.Sprint(x))
		}
		return out
	case []string:
		return append([]string(nil), s...)
	case string:
		return []string{s}
	}
	return nil
}

// MgmtNIC returns the index of the VM's NIC on its management net, or -1.
func (v *VM) MgmtNIC() int {
	for i, n := range v.NICs {
		if n.Net == v.MgmtNet {
			return i
		}
	}
	return -1
}

// StringList is a list of strings that also decodes from a single string,
// because the original accepts `groups: web` as well as a list (and then
// iterates it letter by letter; we treat it as one group).
type StringList []string

// UnmarshalJSON accepts a string or a list of strings.
func (l *StringList) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if s == "" {
			*l = nil
		} else {
			*l = StringList{s}
		}
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return fmt.Errorf("decode string list: %w", err)
	}
	*l = ss
	return nil
}

// MACFromIP derives a NIC's MAC from its IPv4 address the way the original
// does: 54:52: then the four octets in hex (192.168.200.2 ->
// 54:52:c0:a8:c8:02). It returns "" for anything but an IPv4 address.
func MACFromIP(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() {
		return ""
	}
	o := a.As4()
	return fmt.Sprintf("54:52:%02x:%02x:%02x:%02x", o[0], o[1], o[2], o[3])
}

// ExpandPrefixPath replaces a leading $LAGO_PREFIX_PATH (or
// ${LAGO_PREFIX_PATH}) of p by prefixPath.
func ExpandPrefixPath(p, prefixPath string) string {
	for _, v := range []string{PrefixPathVar, "${LAGO_PREFIX_PATH}"} {
		if p == v {
			return prefixPath
		}
		if strings.HasPrefix(p, v+"/") {
			return prefixPath + p[len(v):]
		}
	}
	return p
}

// CollapsePrefixPath turns a path inside prefixPath into the
// $LAGO_PREFIX_PATH form; other paths are returned unchanged.
func CollapsePrefixPath(p, prefixPath string) string {
	pp := strings.TrimRight(prefixPath, "/")
	if pp == "" {
		return p
	}
	if p == pp {
		return PrefixPathVar
	}
	if strings.HasPrefix(p, pp+"/") {
		return PrefixPathVar + p[len(pp):]
	}
	return p
}
