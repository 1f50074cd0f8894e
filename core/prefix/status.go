package prefix

import (
	"fmt"
	"strings"

	"github.com/lago-go/lago/core/spec"
)

// LiveState answers what the provider knows right now. A nil LiveState
// reports every VM and net as "unknown" with no snapshots.
type LiveState interface {
	// VMState is down, running, paused, shut off, crashed, suspended or
	// unknown.
	VMState(vm string) string
	// NetState is up or down.
	NetState(net string) string
	Snapshots(vm string) []string
}

// StateMaps is a LiveState over precomputed maps; missing entries are
// "unknown" (VMs and nets) or no snapshots.
type StateMaps struct {
	VMs           map[string]string
	Nets          map[string]string
	SnapshotLists map[string][]string
	// Fields maps a VM name to its vm type's extra status fields.
	Fields map[string]map[string]string
}

func (m StateMaps) VMState(vm string) string     { return orUnknown(m.VMs[vm]) }
func (m StateMaps) NetState(net string) string   { return orUnknown(m.Nets[net]) }
func (m StateMaps) Snapshots(vm string) []string { return m.SnapshotLists[vm] }

// VMFields implements VMFieldsSource.
func (m StateMaps) VMFields(vm string) map[string]string { return m.Fields[vm] }

// VMFieldsSource is a LiveState that also knows the extra status fields
// of VMs (their vm type's StatusFields). It is a separate interface so
// that a LiveState without vm types needs no method for them.
type VMFieldsSource interface {
	VMFields(vm string) map[string]string
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// StatusOptions tune BuildStatus.
type StatusOptions struct {
	// DefaultRootPassword is shown for VMs whose spec and template name
	// none (the configured default_root_password).
	DefaultRootPassword string
}

// Status is what `lago status` reports of a prefix: its specs on disk with
// each VM's and net's state right now. It is the typed form of the status
// document (Document renders it, the one place its layout is decided), so
// a program reading it gets the data `lago -f json status` prints, and
// some the document leaves out (net type and subnet, VM type, groups,
// disks, MACs).
type Status struct {
	// Path is the prefix folder ("Base directory").
	Path string
	UUID string
	// Nets and VMs are in the order virt/env names them.
	Nets []NetStatus
	VMs  []VMStatus
	// Errors are the provider queries that failed (their objects show
	// "unknown"), as the caller that asked the providers records them;
	// BuildStatus leaves it empty and Document does not show it.
	Errors []error
}

// NetStatus is one net of a Status.
type NetStatus struct {
	Name string
	// Type is spec.NetNAT or spec.NetBridge.
	Type string
	// Gateway and Subnet (its CIDR) are empty on a bridge net, whose
	// addresses come from the network outside lago.
	Gateway, Subnet string
	Management      bool
	// State is "up", "down" or "unknown" (the query failed).
	State string
}

// VMStatus is one VM of a Status.
type VMStatus struct {
	Name string
	// State is the provider's word (running, paused, crashed, ...) except
	// that a powered-off VM is "down", as the original printed; "unknown"
	// when the query failed.
	State string
	// Distro is the spec's, else the first disk's template's.
	Distro string
	// RootPassword is the password the guest has (see GuestRootPassword).
	RootPassword string
	// NICs are in the spec's order: NICs[i] is the guest's eth<i>.
	NICs []NICStatus
	// VMType and Provider are the spec's vm-type and vm-provider ("" means
	// the configured default).
	VMType, Provider string
	Groups           []string
	// Metadata is the spec's free-form metadata (never nil).
	Metadata map[string]any
	Disks    []DiskStatus
	// Snapshots are the VM's snapshots, oldest first.
	Snapshots []string
	// Fields are the extra status fields its vm type gave (nil when the
	// VM has no vm type with fields, or is not running). The document
	// shows each under the VM, except one named like a field lago itself
	// shows, which lago's wins.
	Fields map[string]string
}

// NICStatus is one NIC of a VMStatus.
type NICStatus struct {
	Net string
	// IP is the address lago gave the NIC: "" when it gave none, as on a
	// bridge net, where the guest gets one (if any) from outside lago. The
	// document shows "N/A" then.
	IP  string
	MAC string
}

// DiskStatus is one disk of a VMStatus.
type DiskStatus struct {
	Name, Dev, Type, Format string
	// Path is the disk's image, absolute.
	Path string
	// Size is as the init file wrote it ("10G"); "" for the template's.
	Size                      string
	Template, TemplateVersion string
}

// Addresses maps each net the VM has an address on to its first address
// there.
func (v *VMStatus) Addresses() map[string]string {
	out := make(map[string]string, len(v.NICs))
	for _, n := range v.NICs {
		if _, ok := out[n.Net]; !ok && n.IP != "" {
			out[n.Net] = n.IP
		}
	}
	return out
}

// stateShutOff is libvirt's word for a defined, powered-off domain.
const stateShutOff = "shut off"

// BuildStatus builds the status of prefix p from its specs and what live
// says of them: the one builder of what `lago status` shows.
func BuildStatus(p *Prefix, specs *Specs, live LiveState, opts StatusOptions) (*Status, error) {
	if live == nil {
		live = StateMaps{}
	}
	uuid, err := p.UUID()
	if err != nil {
		return nil, fmt.Errorf("build status: %w", err)
	}
	s := &Status{Path: p.Path, UUID: uuid}
	bridge := map[string]bool{}
	for _, n := range specs.Nets {
		ns := NetStatus{Name: n.Name, Type: n.Type, Management: n.Management, State: live.NetState(n.Name)}
		if ns.Type == "" {
			ns.Type = spec.NetNAT
		}
		if ns.Type == spec.NetBridge {
			bridge[n.Name] = true
		} else if n.Gw != "" {
			ns.Gateway = n.Gw
			if sub, ok := n.Prefix(); ok {
				ns.Subnet = sub.Masked().String()
			}
		}
		s.Nets = append(s.Nets, ns)
	}
	for i := range specs.VMs {
		v := &specs.VMs[i]
		vs := VMStatus{
			Name:         v.Name,
			State:        live.VMState(v.Name),
			Distro:       Distro(v),
			RootPassword: RootPassword(v, opts.DefaultRootPassword, GuestRootPassword),
			VMType:       v.VMType,
			Provider:     v.VMProvider,
			Groups:       append([]string(nil), v.Groups...),
			Metadata:     make(map[string]any, len(v.Metadata)),
			Snapshots:    append([]string(nil), live.Snapshots(v.Name)...),
		}
		// Our domains stay defined when powered off (so stopped VMs can
		// be snapshotted), where the original's vanished: the original
		// printed "down" for a stopped VM, and scripts parse that word.
		if vs.State == stateShutOff {
			vs.State = "down"
		}
		if fs, ok := live.(VMFieldsSource); ok {
			if f := fs.VMFields(v.Name); len(f) > 0 {
				vs.Fields = make(map[string]string, len(f))
				for k, x := range f {
					vs.Fields[k] = x
				}
			}
		}
		for _, nic := range v.NICs {
			ns := NICStatus{Net: nic.Net, IP: nic.IP, MAC: nic.MAC}
			if bridge[nic.Net] {
				ns.IP = ""
			}
			if ns.MAC == "" && nic.IP != "" {
				ns.MAC = spec.MACFromIP(nic.IP)
			}
			vs.NICs = append(vs.NICs, ns)
		}
		for k, x := range v.Metadata {
			vs.Metadata[k] = x
		}
		for _, d := range v.Disks {
			vs.Disks = append(vs.Disks, DiskStatus{
				Name: d.Name, Dev: d.Dev, Type: d.Type, Format: d.Format, Path: p.Expand(d.Path), Size: d.Size,
				Template: d.TemplateName, TemplateVersion: d.TemplateVersion,
			})
		}
		s.VMs = append(s.VMs, vs)
	}
	return s, nil
}

// Document renders s as the document `lago status` prints, as plain
// nested values (map[string]any, string, bool); the output layer sorts
// keys and drops empty values. It keeps the original's layout, which
// scripts parse, so it shows less than s holds:
//
//	{"Prefix": {
//	    "Base directory": "<prefix path>",
//	    "UUID": "<uuid>",
//	    "Networks": {"<net>": {"gateway": "<gw>" (absent on bridge nets),
//	                            "management": true|false,
//	                            "status": "up"|"down"|...}},
//	    "VMs": {"<vm>": {"NICs": {"eth<i>": {"ip": "<ip>" or "N/A",
//	                                         "network": "<net>"}},
//	                     "distro": "<distro>",
//	                     "root password": "<password>",
//	                     "status": "<state>",
//	                     "metadata": {...} (always present, may be empty),
//	                     "snapshots": "<a, b>" (always present, may be ""),
//	                     "<field>": "<value>" (each of the vm type's status
//	                                fields, when it has any)}}}}
func (s *Status) Document() map[string]any {
	nets := map[string]any{}
	for _, n := range s.Nets {
		e := map[string]any{
			"management": n.Management,
			"status":     n.State,
		}
		if n.Gateway != "" {
			e["gateway"] = n.Gateway
		}
		nets[n.Name] = e
	}
	vms := map[string]any{}
	for _, v := range s.VMs {
		nics := map[string]any{}
		for i, nic := range v.NICs {
			ip := nic.IP
			if ip == "" {
				ip = "N/A"
			}
			nics[fmt.Sprintf("eth%d", i)] = map[string]any{"ip": ip, "network": nic.Net}
		}
		md := make(map[string]any, len(v.Metadata))
		for k, x := range v.Metadata {
			md[k] = x
		}
		vm := map[string]any{
			"NICs":          nics,
			"distro":        v.Distro,
			"root password": v.RootPassword,
			"status":        v.State,
			"metadata":      md,
			"snapshots":     strings.Join(v.Snapshots, ", "),
		}
		for k, x := range v.Fields {
			if _, taken := vm[k]; !taken {
				vm[k] = x
			}
		}
		vms[v.Name] = vm
	}
	return map[string]any{"Prefix": map[string]any{
		"Base directory": s.Path,
		"UUID":           s.UUID,
		"Networks":       nets,
		"VMs":            vms,
	}}
}
