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
}

func (m StateMaps) VMState(vm string) string     { return orUnknown(m.VMs[vm]) }
func (m StateMaps) NetState(net string) string   { return orUnknown(m.Nets[net]) }
func (m StateMaps) Snapshots(vm string) []string { return m.SnapshotLists[vm] }

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// StatusOptions tune StatusTree.
type StatusOptions struct {
	// DefaultRootPassword is shown for VMs whose spec and template name
	// none (the configured default_root_password).
	DefaultRootPassword string
}

// StatusTree builds the document `lago status` prints, as plain nested
// values (map[string]any, string, bool); the output layer sorts keys and
// drops empty values. Shape:
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
//	                     "snapshots": "<a, b>" (always present, may be "")}}}}
//
// distro comes from the VM spec, else its first disk's template metadata;
// root password from the VM spec, else the first disk's template
// metadata, else opts.DefaultRootPassword.
func StatusTree(p *Prefix, specs *Specs, live LiveState, opts StatusOptions) (map[string]any, error) {
	if live == nil {
		live = StateMaps{}
	}
	uuid, err := p.UUID()
	if err != nil {
		return nil, fmt.Errorf("build status: %w", err)
	}
	nets := map[string]any{}
	bridge := map[string]bool{}
	for _, n := range specs.Nets {
		e := map[string]any{
			"management": n.Management,
			"status":     live.NetState(n.Name),
		}
		if n.Type == spec.NetBridge {
			bridge[n.Name] = true
		} else if n.Gw != "" {
			e["gateway"] = n.Gw
		}
		nets[n.Name] = e
	}
	vms := map[string]any{}
	for _, v := range specs.VMs {
		nics := map[string]any{}
		for i, nic := range v.NICs {
			ip := nic.IP
			if bridge[nic.Net] || ip == "" {
				ip = "N/A"
			}
			nics[fmt.Sprintf("eth%d", i)] = map[string]any{"ip": ip, "network": nic.Net}
		}
		md := map[string]any{}
		for k, x := range v.Metadata {
			md[k] = x
		}
		vms[v.Name] = map[string]any{
			"NICs":          nics,
			"distro":        vmDistro(&v),
			"root password": rootPassword(&v, opts.DefaultRootPassword),
			"status":        live.VMState(v.Name),
			"metadata":      md,
			"snapshots":     strings.Join(live.Snapshots(v.Name), ", "),
		}
	}
	return map[string]any{"Prefix": map[string]any{
		"Base directory": p.Path,
		"UUID":           uuid,
		"Networks":       nets,
		"VMs":            vms,
	}}, nil
}

func firstDiskMeta(v *spec.VM, key string) string {
	if len(v.Disks) == 0 {
		return ""
	}
	if s, ok := v.Disks[0].Metadata[key].(string); ok {
		return s
	}
	return ""
}

func vmDistro(v *spec.VM) string {
	if v.Distro != "" {
		return v.Distro
	}
	return firstDiskMeta(v, "distro")
}

func rootPassword(v *spec.VM, def string) string {
	if v.RootPassword != "" {
		return v.RootPassword
	}
	if s := firstDiskMeta(v, "root-password"); s != "" {
		return s
	}
	return def
}
