package initfile

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/lago-go/lago/core/spec"
)

// checkNetwork enforces the network rules across nets and domains: one
// management net, DNS keys only on it, NICs on nets that exist, exactly
// one management NIC per VM, static IPs unique, inside their subnet and
// never on bridge nets. It sets cfg.MgmtNet, each net's Management and
// default DNS domain, and each VM's MgmtNet.
func (d *decoder) checkNetwork(cfg *Config, nets []*netInfo, vms []*vmInfo) {
	byName := map[string]*netInfo{}
	var names []string
	for _, n := range nets {
		byName[n.net.Name] = n
		names = append(names, n.net.Name)
	}
	mgmt := d.selectMgmt(nets)
	if mgmt != nil {
		cfg.MgmtNet = mgmt.net.Name
		mgmt.net.Management = true
		if mgmt.net.DNSDomainName == "" && mgmt.net.Type == spec.NetNAT {
			mgmt.net.DNSDomainName = spec.DefaultDNSDomainName
		}
	}
	gws := map[string]*netInfo{}
	for _, n := range nets {
		if p, ok := n.net.Prefix(); ok && n.gw != nil {
			if first, dup := gws[p.String()]; dup {
				d.errorf(n.gw, n.path+".gw", "nets %s and %s both ask for subnet %s; give each net its own", first.net.Name, n.net.Name, p)
			} else {
				gws[p.String()] = n
			}
		}
	}
	for _, n := range nets {
		if n == mgmt {
			continue
		}
		for _, k := range n.dnsKeys {
			where := "there is no management net"
			if mgmt != nil {
				where = fmt.Sprintf("the management net is %s", mgmt.net.Name)
			}
			d.errorf(k, n.path+"."+k.value, "%s is allowed only on the management net (%s)", k.value, where)
		}
	}
	type owner struct {
		path string
		line int
	}
	used := map[string]map[string]owner{} // net -> ip key -> first user
	for _, vi := range vms {
		vm := &vi.vm
		if mgmt != nil {
			vm.MgmtNet = mgmt.net.Name
		}
		var mgmtNICs []nicInfo
		for i, ni := range vi.nics {
			if i >= len(vm.NICs) {
				break
			}
			nic := vm.NICs[i]
			if ni.net == nil || nic.Net == "" {
				continue
			}
			net, ok := byName[nic.Net]
			if !ok {
				msg := fmt.Sprintf("unknown net %q", truncate(nic.Net, 40))
				if s := suggest(nic.Net, names); s != "" {
					msg += fmt.Sprintf(", did you mean %q?", s)
				} else if len(names) > 0 {
					msg += "; nets of this file: " + joinSorted(names)
				} else {
					msg += "; this file defines no nets"
				}
				d.errorf(ni.net, ni.path+".net", "%s", msg)
				continue
			}
			if net == mgmt {
				mgmtNICs = append(mgmtNICs, ni)
			}
			if ni.ip == nil {
				continue
			}
			ipPath := ni.path + ".ip"
			if net.net.Type == spec.NetBridge {
				d.errorf(ni.ip, ipPath, "net %s is a bridge net: lago gives bridge NICs no IP; remove ip", net.net.Name)
				continue
			}
			a := netip.MustParseAddr(nic.IP)
			key := a.String()
			if p, has := net.net.Prefix(); has {
				gw := netip.MustParseAddr(net.net.Gw)
				last := a.As4()[3]
				switch {
				case !p.Contains(a):
					d.errorf(ni.ip, ipPath, "%s is outside net %s's subnet %s (gw %s)", a, net.net.Name, p, gw)
					continue
				case a == gw:
					d.errorf(ni.ip, ipPath, "%s is net %s's gateway; use another address of %s", a, net.net.Name, p)
					continue
				case last == 0 || last == 255:
					d.errorf(ni.ip, ipPath, "%s is the network or broadcast address of %s", a, p)
					continue
				}
			} else {
				// A leased subnet: only the last octet counts.
				last := a.As4()[3]
				if last < 2 || last > 254 {
					d.errorf(ni.ip, ipPath, "the last octet of %s must be from 2 to 254: on a leased subnet .1 is the gateway and .0 and .255 are reserved", a)
					continue
				}
				key = fmt.Sprintf(".%d", last)
			}
			if used[nic.Net] == nil {
				used[nic.Net] = map[string]owner{}
			}
			if first, dup := used[nic.Net][key]; dup {
				how := ""
				if key[0] == '.' {
					how = fmt.Sprintf(" (net %s gets its subnet at init, so only the last octet %s counts)", nic.Net, key)
				}
				d.errorf(ni.ip, ipPath, "duplicate static IP %s on net %s: already used by %s at line %d%s", a, nic.Net, first.path, first.line, how)
				continue
			}
			used[nic.Net][key] = owner{path: ni.path, line: ni.ip.line}
		}
		switch {
		case mgmt == nil:
			d.errorf(vi.key, vi.path+".nics", "the file defines no nets: add a nat net under nets and a NIC on it")
		case len(mgmtNICs) == 0:
			d.errorf(vi.key, vi.path+".nics", "the VM needs exactly one NIC on the management net %s; add {net: %s} to its nics", mgmt.net.Name, mgmt.net.Name)
		case len(mgmtNICs) > 1:
			for _, extra := range mgmtNICs[1:] {
				d.errorf(extra.node, extra.path+".net", "the VM has more than one NIC on the management net %s (first: %s); keep exactly one", mgmt.net.Name, mgmtNICs[0].path)
			}
		}
	}
}

// selectMgmt returns the management net: the one marked management: true,
// else the alphabetically first nat net, else (a file with bridge nets
// only, which the original accepts) the alphabetically first bridge net.
// The original takes the alphabetically first net of any type; preferring
// a nat net keeps lago's DHCP, DNS and ssh for the VMs when there is one.
// More than one marked is an error.
func (d *decoder) selectMgmt(nets []*netInfo) *netInfo {
	var marked []*netInfo
	for _, n := range nets {
		if n.mgmtSet {
			marked = append(marked, n)
		}
	}
	if len(marked) > 1 {
		for _, n := range marked[1:] {
			d.errorf(keyOf(n.node, "management"), n.path+".management", "more than one management net: %s and %s both say management: true; keep one", marked[0].net.Name, n.net.Name)
		}
	}
	if len(marked) > 0 {
		return marked[0]
	}
	var first, firstBridge *netInfo
	for _, n := range nets {
		switch {
		case n.net.Type == spec.NetNAT && (first == nil || n.net.Name < first.net.Name):
			first = n
		case n.net.Type == spec.NetBridge && (firstBridge == nil || n.net.Name < firstBridge.net.Name):
			firstBridge = n
		}
	}
	if first == nil {
		return firstBridge
	}
	return first
}

func joinSorted(l []string) string {
	s := append([]string(nil), l...)
	sort.Strings(s)
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}
