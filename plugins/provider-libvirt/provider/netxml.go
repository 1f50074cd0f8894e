package provider

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	"libvirt.org/go/libvirtxml"
)

// defaultDNSDomain is the reference's default dns_domain_name.
const defaultDNSDomain = "lago.local"

// networkXML builds the libvirt definition of a lago network.
//
// NAT networks get the gateway, a DHCP range, one DHCP host entry per NIC
// (mac -> ip -> name) and, on the management network, a local DNS domain
// with a record per name, so `hostname -f` answers <vm>.<domain> and VMs
// resolve each other; other NAT networks have DNS disabled so guests do not
// get a second, conflicting resolver.
//
// Bridge networks: the original created a Linux bridge with brctl on the
// client host and pointed a libvirt <forward mode='bridge'> network at it.
// That cannot work with a remote (or namespaced) libvirtd, so we define an
// isolated libvirt network instead (no <forward>, no <ip>): libvirt creates
// and removes the bridge itself, guests get plain L2 connectivity and no
// addresses, as in the original.
//
// The bridge runs without STP unless stp is set. libvirt's default
// (stp='on' delay='0') does not give a zero delay: the kernel raises the
// forward delay to its 2 s minimum when STP starts, so every new port, which
// means every VM start and every revert (qemu is restarted with a new tap),
// spends 2 s listening and 2 s learning before the guest's packets pass.
// A first DHCP request in that window is lost; after a revert the VM was
// unreachable for 3-4 s. The bridges hold only the environment's own taps.
func networkXML(env *providerv1.EnvRef, n *providerv1.Network, stp bool) (string, error) {
	owner, err := ownerTag{Prefix: env.GetPrefixPath(), UUID: env.GetUuid(), Name: n.GetName()}.marshal()
	if err != nil {
		return "", err
	}
	x := &libvirtxml.Network{
		Name:     networkName(env.GetUuid(), n.GetName()),
		Metadata: &libvirtxml.NetworkMetadata{XML: owner},
		Bridge:   &libvirtxml.NetworkBridge{Name: bridgeName(env.GetUuid(), n.GetName()), STP: "off", Delay: "0"},
	}
	if stp {
		x.Bridge.STP = "on"
	}
	if n.GetMtu() > 0 && n.GetMtu() != 1500 {
		x.MTU = &libvirtxml.NetworkMTU{Size: uint(n.GetMtu())}
	}
	switch n.GetType() {
	case "bridge":
		// Isolated: no forward, no IP, no DHCP, no DNS.
		x.DNS = &libvirtxml.NetworkDNS{Enable: "no"}
	case "", "nat":
		if err := natNetwork(x, n); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("network %q: unknown type %q (want nat or bridge)", n.GetName(), n.GetType())
	}
	return x.Marshal()
}

func natNetwork(x *libvirtxml.Network, n *providerv1.Network) error {
	gw, err := netip.ParseAddr(n.GetGateway())
	if err != nil || !gw.Is4() {
		return fmt.Errorf("network %q: gateway %q is not an IPv4 address", n.GetName(), n.GetGateway())
	}
	prefix := uint(n.GetPrefixLength())
	if prefix == 0 {
		prefix = 24
	}
	x.Forward = &libvirtxml.NetworkForward{
		Mode: "nat",
		NAT:  &libvirtxml.NetworkForwardNAT{Ports: []libvirtxml.NetworkForwardNATPort{{Start: 1024, End: 65535}}},
	}
	ip4 := libvirtxml.NetworkIP{Address: gw.String(), Prefix: prefix}
	dhcp := &libvirtxml.NetworkDHCP{}
	if n.GetDhcpStart() != "" || n.GetDhcpEnd() != "" {
		start, err := dhcpAddr(gw, n.GetDhcpStart())
		if err != nil {
			return fmt.Errorf("network %q: dhcp start: %w", n.GetName(), err)
		}
		end, err := dhcpAddr(gw, n.GetDhcpEnd())
		if err != nil {
			return fmt.Errorf("network %q: dhcp end: %w", n.GetName(), err)
		}
		dhcp.Ranges = append(dhcp.Ranges, libvirtxml.NetworkDHCPRange{Start: start, End: end})
	}
	seenMAC := map[string]bool{}
	seenIP := map[string]bool{}
	for _, h := range n.GetHosts() {
		mac := strings.ToLower(h.GetMac())
		if h.GetIp() == "" || seenMAC[mac] || seenIP[h.GetIp()] {
			continue
		}
		seenMAC[mac], seenIP[h.GetIp()] = true, true
		dhcp.Hosts = append(dhcp.Hosts, libvirtxml.NetworkDHCPHost{MAC: mac, IP: h.GetIp(), Name: h.GetName()})
	}
	if len(dhcp.Ranges) > 0 || len(dhcp.Hosts) > 0 {
		ip4.DHCP = dhcp
	}
	x.IPs = append(x.IPs, ip4)
	var v6 *netip.Prefix
	if g6 := n.GetIpv6Gateway(); g6 != "" {
		a, err := netip.ParseAddr(g6)
		if err != nil || !a.Is6() {
			return fmt.Errorf("network %q: ipv6 gateway %q is not an IPv6 address", n.GetName(), g6)
		}
		bits := int(n.GetIpv6PrefixLength())
		if bits == 0 {
			bits = 64
		}
		if bits > 96 {
			return fmt.Errorf("network %q: ipv6 prefix /%d leaves no room for the embedded IPv4 addresses (at most /96)", n.GetName(), bits)
		}
		pfx, _ := a.Prefix(bits)
		v6 = &pfx
		ip6 := libvirtxml.NetworkIP{Family: "ipv6", Address: a.String(), Prefix: uint(bits)}
		// As the original: every IPv4 address A of the net has the IPv6
		// twin <prefix>::A, DHCPv6 hands them out by DUID-LL.
		dhcp6 := &libvirtxml.NetworkDHCP{}
		for _, r := range dhcp.Ranges {
			dhcp6.Ranges = append(dhcp6.Ranges, libvirtxml.NetworkDHCPRange{Start: embed4(pfx, r.Start), End: embed4(pfx, r.End)})
		}
		for _, h := range dhcp.Hosts {
			dhcp6.Hosts = append(dhcp6.Hosts, libvirtxml.NetworkDHCPHost{ID: "0:3:0:1:" + h.MAC, IP: embed4(pfx, h.IP), Name: h.Name})
		}
		if len(dhcp6.Ranges) > 0 || len(dhcp6.Hosts) > 0 {
			ip6.DHCP = dhcp6
		}
		x.IPs = append(x.IPs, ip6)
	}
	if !n.GetManagement() {
		x.DNS = &libvirtxml.NetworkDNS{Enable: "no"}
		return nil
	}
	domain := n.GetDnsDomainName()
	if domain == "" {
		domain = defaultDNSDomain
	}
	x.Domain = &libvirtxml.NetworkDomain{Name: domain, LocalOnly: "yes"}
	recs := n.GetDnsRecords()
	if v6 != nil {
		for _, r := range n.GetDnsRecords() {
			if a := embed4(*v6, r.GetIp()); a != "" {
				recs = append(recs, &providerv1.DnsRecord{Hostname: r.GetHostname(), Ip: a})
			}
		}
	}
	x.DNS = &libvirtxml.NetworkDNS{ForwardPlainNames: "no", Host: dnsHosts(recs)}
	return nil
}

// embed4 puts the IPv4 address s in the last 32 bits of the IPv6 prefix
// (fd8f:1391:3a82:201:: + 192.168.201.2 = fd8f:1391:3a82:201::c0a8:c902);
// empty when s is not IPv4.
func embed4(pfx netip.Prefix, s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return ""
	}
	b := pfx.Masked().Addr().As16()
	v4 := a.As4()
	copy(b[12:], v4[:])
	return netip.AddrFrom16(b).String()
}

// dnsHosts groups records by address, one <host> per IP with its names
// sorted, in address order so the XML is stable.
func dnsHosts(recs []*providerv1.DnsRecord) []libvirtxml.NetworkDNSHost {
	byIP := map[string][]string{}
	for _, r := range recs {
		if r.GetIp() == "" || r.GetHostname() == "" {
			continue
		}
		byIP[r.GetIp()] = append(byIP[r.GetIp()], r.GetHostname())
	}
	ips := make([]string, 0, len(byIP))
	for ip := range byIP {
		ips = append(ips, ip)
	}
	sort.Slice(ips, func(i, j int) bool {
		a, errA := netip.ParseAddr(ips[i])
		b, errB := netip.ParseAddr(ips[j])
		if errA != nil || errB != nil {
			return ips[i] < ips[j]
		}
		return a.Less(b)
	})
	var out []libvirtxml.NetworkDNSHost
	for _, ip := range ips {
		names := byIP[ip]
		sort.Strings(names)
		h := libvirtxml.NetworkDNSHost{IP: ip}
		prev := ""
		for _, nm := range names {
			if nm != prev {
				h.Hostnames = append(h.Hostnames, libvirtxml.NetworkDNSHostHostname{Hostname: nm})
			}
			prev = nm
		}
		out = append(out, h)
	}
	return out
}

// dhcpAddr accepts a full address or, like the init file, the last octet
// on the gateway's /24.
func dhcpAddr(gw netip.Addr, s string) (string, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.String(), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 254 {
		return "", fmt.Errorf("%q is neither an address nor an octet 1-254", s)
	}
	b := gw.As4()
	b[3] = byte(n)
	return netip.AddrFrom4(b).String(), nil
}

// networkSubnets returns the IPv4 subnets of a libvirt network definition.
func networkSubnets(xmlDoc string) ([]netip.Prefix, error) {
	var x libvirtxml.Network
	if err := x.Unmarshal(xmlDoc); err != nil {
		return nil, fmt.Errorf("parse network xml: %w", err)
	}
	var out []netip.Prefix
	for _, ip := range x.IPs {
		if ip.Family != "" && ip.Family != "ipv4" {
			continue
		}
		a, err := netip.ParseAddr(ip.Address)
		if err != nil || !a.Is4() {
			continue
		}
		bits := int(ip.Prefix)
		if ip.Netmask != "" {
			m, err := netip.ParseAddr(ip.Netmask)
			if err != nil {
				continue
			}
			bits = maskBits(m)
		}
		if bits == 0 {
			bits = 24
		}
		p, err := a.Prefix(bits)
		if err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

func maskBits(m netip.Addr) int {
	n := 0
	for _, b := range m.AsSlice() {
		for i := 7; i >= 0; i-- {
			if b&(1<<i) == 0 {
				return n
			}
			n++
		}
	}
	return n
}
