package initfile

import (
	"net/netip"
	"regexp"

	"github.com/lago-go/lago/core/spec"
)

var netKeys = []string{"type", "dhcp", "management", "dns_domain_name", "dns_records", "gw", "mtu"}

// netInfo is a decoded net with the nodes later checks point at.
type netInfo struct {
	net  spec.Net
	path string
	key  *node
	node *node
	// mgmtSet is true when the file says management: true.
	mgmtSet bool
	// dnsKeys are the DNS keys the file sets (only the management net
	// may).
	dnsKeys []*node
	gw      *node
}

var domainNameRE = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

func (d *decoder) decodeNets(n *node) []*netInfo {
	if n == nil || n.isNull() {
		return nil
	}
	if !d.wantMap(n, "nets", "nets, a mapping of net name to net") {
		return nil
	}
	var out []*netInfo
	for i, k := range n.keys {
		path := "nets." + k.value
		d.checkName(k, path, "net")
		ni := &netInfo{path: path, key: k, node: n.vals[i], net: spec.Net{Name: k.value, Type: spec.NetNAT}}
		d.decodeNet(ni)
		out = append(out, ni)
	}
	return out
}

func (d *decoder) decodeNet(ni *netInfo) {
	n, path := ni.node, ni.path
	if n.isNull() {
		ni.net.DHCP = &spec.DHCP{Start: 100, End: 254}
		return
	}
	if !d.wantMap(n, path, "a net") {
		return
	}
	d.checkKeys(n, path, netKeys)
	net := &ni.net
	if v := n.get("type"); v != nil {
		if s, ok := d.str(v, path+".type"); ok {
			if s != spec.NetNAT && s != spec.NetBridge {
				d.errorf(v, path+".type", "unknown net type %q: want nat or bridge", truncate(s, 40))
			} else {
				net.Type = s
			}
		}
	}
	bridge := net.Type == spec.NetBridge
	if v := n.get("dhcp"); v != nil {
		p := path + ".dhcp"
		if bridge {
			d.errorf(v, p, "a bridge net has no DHCP server: remove dhcp or use type: nat")
		} else if d.wantMap(v, p, "dhcp: {start: N, end: M}") {
			d.checkKeys(v, p, []string{"start", "end"})
			dh := &spec.DHCP{Start: 100, End: 254}
			if s := v.get("start"); s != nil {
				dh.Start, _ = d.integer(s, p+".start", 2, 254, " (last octet)")
			}
			if e := v.get("end"); e != nil {
				dh.End, _ = d.integer(e, p+".end", 2, 254, " (last octet)")
			}
			if dh.Start > dh.End && dh.Start != 0 && dh.End != 0 {
				d.errorf(v, p, "start %d is after end %d", dh.Start, dh.End)
			}
			net.DHCP = dh
		}
	}
	if v := n.get("management"); v != nil {
		// A bridge net may be the management net, as in the original:
		// its NICs get no address from lago (DHCP, if any, comes from the
		// network outside), so lago reaches such VMs only if it learns
		// their address.
		net.Management, _ = d.boolean(v, path+".management")
		ni.mgmtSet = net.Management
	}
	for _, k := range []string{"dns_domain_name", "dns_records"} {
		if bridge && n.get(k) != nil {
			d.errorf(keyOf(n, k), path+"."+k, "a bridge net has no DNS server of lago's: remove %s or use type: nat", k)
		}
	}
	if v := n.get("dns_domain_name"); v != nil && !bridge {
		ni.dnsKeys = append(ni.dnsKeys, keyOf(n, "dns_domain_name"))
		if s, ok := d.str(v, path+".dns_domain_name"); ok {
			if !domainNameRE.MatchString(s) || len(s) > 253 {
				d.errorf(v, path+".dns_domain_name", "invalid DNS domain %q: want labels of letters, digits and '-' joined by dots, such as lago.local", truncate(s, 40))
			} else {
				net.DNSDomainName = s
			}
		}
	}
	if v := n.get("dns_records"); v != nil && !bridge {
		p := path + ".dns_records"
		ni.dnsKeys = append(ni.dnsKeys, keyOf(n, "dns_records"))
		if d.wantMap(v, p, "dns_records, a mapping of host name to IPv4 address") {
			net.DNSRecords = map[string]string{}
			for i, k := range v.keys {
				kp := p + "." + k.value
				if !domainNameRE.MatchString(k.value) {
					d.errorf(k, kp, "invalid host name %q", truncate(k.value, 40))
				}
				if s, ok := d.str(v.vals[i], kp); ok {
					if a, err := netip.ParseAddr(s); err != nil || !a.Is4() {
						d.errorf(v.vals[i], kp, "want an IPv4 address, got %q", truncate(s, 40))
					} else {
						net.DNSRecords[k.value] = a.String()
					}
				}
			}
		}
	}
	if v := n.get("gw"); v != nil {
		p := path + ".gw"
		ni.gw = v
		if bridge {
			d.errorf(v, p, "a bridge net has no gateway of lago's: remove gw or use type: nat")
		} else if s, ok := d.str(v, p); ok {
			a, err := netip.ParseAddr(s)
			switch {
			case err != nil || !a.Is4():
				d.errorf(v, p, "want an IPv4 address such as 192.168.210.1, got %q", truncate(s, 40))
			case a.As4()[3] == 0 || a.As4()[3] == 255:
				d.errorf(v, p, "%s is the network or broadcast address of its /24; use a host address such as x.y.z.1", s)
			default:
				net.Gw = a.String()
				if d.opts.CheckGateway != nil {
					if err := d.opts.CheckGateway(a); err != nil {
						d.errorf(v, p, "%v", err)
					}
				}
			}
		}
	}
	if v := n.get("mtu"); v != nil {
		net.MTU, _ = d.integer(v, path+".mtu", 68, 65535, "")
	}
	if net.Type == spec.NetNAT && net.DHCP == nil {
		// The original's default range.
		net.DHCP = &spec.DHCP{Start: 100, End: 254}
	}
}

// keyOf returns the key node of key in map n.
func keyOf(n *node, key string) *node {
	for _, k := range n.keys {
		if k.value == key {
			return k
		}
	}
	return n
}
