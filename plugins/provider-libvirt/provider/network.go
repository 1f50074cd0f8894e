package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	"github.com/lago-go/lago/sdk"
	"libvirt.org/go/libvirtxml"
)

func netLabel(env *providerv1.EnvRef, n *providerv1.Network) string {
	return fmt.Sprintf("network '%s' (libvirt name %s)", n.GetName(), networkName(env.GetUuid(), n.GetName()))
}

// StartNetwork defines (or updates) and starts the network. An active
// network of ours is left alone; a libvirt network of the same name that
// another environment owns is an error, never taken over.
func (p *Provider) StartNetwork(ctx context.Context, env *providerv1.EnvRef, n *providerv1.Network) error {
	c, cfg, _, warns, err := p.connect(ctx)
	if err != nil {
		return err
	}
	label := netLabel(env, n)
	name := networkName(env.GetUuid(), n.GetName())
	x, err := networkXML(env, n, cfg.BridgeSTP)
	if err != nil {
		return withWarnings(warns, errorDiag(label+": invalid spec", err))
	}
	nets, err := c.ListNetworks()
	if err != nil {
		return withWarnings(warns, errorDiag("cannot list libvirt networks", err))
	}
	existed := false
	for _, ni := range nets {
		if ni.Name != name {
			continue
		}
		existed = true
		if o, ok := ownerOfNetwork(ni.XML); !ok || o.UUID != env.GetUuid() {
			return withWarnings(warns, errorDiag(fmt.Sprintf("%s: a libvirt network of that name exists and belongs to %s", label, describeOwner(o, ok)), nil))
		}
		if ni.Active {
			return withWarnings(warns, nil)
		}
		// Redefining must keep libvirt's uuid, or libvirt refuses.
		if x, err = withNetworkUUID(x, ni.XML); err != nil {
			return withWarnings(warns, errorDiag(label+": cannot update the definition", err))
		}
	}
	if n.GetType() != "bridge" {
		if d := subnetConflict(label, n, name, nets, cfg.Remote); d != nil {
			return withWarnings(warns, d)
		}
	}
	if err := c.DefineNetwork(x); err != nil {
		return withWarnings(warns, errorDiag(label+": cannot define", err))
	}
	if err := c.StartNetwork(name); err != nil {
		if !existed {
			_ = c.UndefineNetwork(name)
		}
		return withWarnings(warns, errorDiag(label+": cannot start", err))
	}
	return withWarnings(warns, nil)
}

func describeOwner(o ownerTag, ok bool) string {
	if !ok {
		return "no lago environment"
	}
	return fmt.Sprintf("the lago environment %s (uuid %s)", o.Prefix, o.UUID)
}

func ownerOfNetwork(x string) (ownerTag, bool) {
	var n libvirtxml.Network
	if err := n.Unmarshal(x); err != nil || n.Metadata == nil {
		return ownerTag{}, false
	}
	o, ok, err := parseOwner(n.Metadata.XML)
	return o, ok && err == nil
}

// subnetConflict reports a network whose subnet an active libvirt network
// or (locally) a host interface already uses, naming the user.
func subnetConflict(label string, n *providerv1.Network, self string, nets []NetworkInfo, remote bool) sdk.Diagnostics {
	gw, err := netip.ParseAddr(n.GetGateway())
	if err != nil {
		return nil
	}
	bits := int(n.GetPrefixLength())
	if bits == 0 {
		bits = 24
	}
	want, err := gw.Prefix(bits)
	if err != nil {
		return nil
	}
	for _, ni := range nets {
		if ni.Name == self || !ni.Active {
			continue
		}
		subs, _ := networkSubnets(ni.XML)
		for _, s := range subs {
			if s.Overlaps(want) {
				return errorDiag(fmt.Sprintf("%s: subnet %s already in use by libvirt network %s", label, want, ni.Name), nil)
			}
		}
	}
	if remote {
		return nil
	}
	for _, u := range localInterfaceSubnets() {
		if u.prefix.Overlaps(want) {
			return errorDiag(fmt.Sprintf("%s: subnet %s already in use by interface %s", label, want, u.iface), nil)
		}
	}
	return nil
}

type ifaceSubnet struct {
	iface  string
	prefix netip.Prefix
}

// localInterfaceSubnets lists IPv4 subnets on this host's interfaces
// (loopback excluded).
func localInterfaceSubnets() []ifaceSubnet {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []ifaceSubnet
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.To4() == nil {
				continue
			}
			pfx, err := netip.ParsePrefix(ipn.String())
			if err != nil {
				continue
			}
			out = append(out, ifaceSubnet{iface: ifc.Name, prefix: pfx.Masked()})
		}
	}
	return out
}

// StopNetwork destroys the running network and keeps its definition (so
// the environment can start again); RemoveOwned undefines it.
func (p *Provider) StopNetwork(ctx context.Context, env *providerv1.EnvRef, n *providerv1.Network) error {
	c, _, _, warns, err := p.connect(ctx)
	if err != nil {
		return err
	}
	name := networkName(env.GetUuid(), n.GetName())
	if err := c.DestroyNetwork(name); err != nil && !errors.Is(err, ErrNotFound) && !isNotActive(c, name) {
		return withWarnings(warns, errorDiag(netLabel(env, n)+": cannot stop", err))
	}
	return withWarnings(warns, nil)
}

func isNotActive(c Conn, name string) bool {
	nets, err := c.ListNetworks()
	if err != nil {
		return false
	}
	for _, n := range nets {
		if n.Name == name {
			return !n.Active
		}
	}
	return true
}

// NetworkState is "up" when the libvirt network is active, else "down".
func (p *Provider) NetworkState(ctx context.Context, env *providerv1.EnvRef, n *providerv1.Network) (string, error) {
	c, _, _, warns, err := p.connect(ctx)
	if err != nil {
		return "", err
	}
	active, err := c.NetworkActive(networkName(env.GetUuid(), n.GetName()))
	if errors.Is(err, ErrNotFound) || (err == nil && !active) {
		return "down", withWarnings(warns, nil)
	}
	if err != nil {
		return "", withWarnings(warns, errorDiag("cannot read the state of libvirt network "+networkName(env.GetUuid(), n.GetName()), err))
	}
	return "up", withWarnings(warns, nil)
}

// UsedSubnets reports the IPv4 subnets of every libvirt network on the
// hypervisor (active or not: an inactive one will clash when started) and
// of the host's interfaces: locally from the kernel (net.Interfaces), on a
// remote host from libvirt's interface driver when it has one (otherwise
// only the networks are known, and a warning says so).
func (p *Provider) UsedSubnets(ctx context.Context) ([]*providerv1.UsedSubnet, error) {
	c, cfg, _, warns, err := p.connect(ctx)
	if err != nil {
		return nil, err
	}
	nets, err := c.ListNetworks()
	if err != nil {
		return nil, withWarnings(warns, errorDiag("cannot list libvirt networks", err))
	}
	seen := map[string]bool{}
	var out []*providerv1.UsedSubnet
	add := func(pfx netip.Prefix, reason string) {
		k := pfx.String() + "|" + reason
		if seen[k] {
			return
		}
		seen[k] = true
		out = append(out, &providerv1.UsedSubnet{Cidr: pfx.String(), Reason: reason})
	}
	for _, ni := range nets {
		subs, err := networkSubnets(ni.XML)
		if err != nil {
			continue
		}
		for _, s := range subs {
			add(s, "libvirt network "+ni.Name)
		}
	}
	if !cfg.Remote {
		for _, u := range localInterfaceSubnets() {
			add(u.prefix, "interface "+u.iface)
		}
	} else {
		ifs, err := c.ListInterfaceXML()
		if err != nil {
			warns = append(warns, sdk.Diagnostic{Severity: sdk.SeverityWarning,
				Summary: "the remote libvirt cannot list host interfaces; only libvirt networks are known as used subnets",
				Detail:  err.Error()})
		}
		for _, x := range ifs {
			for _, u := range interfaceSubnets(x) {
				add(u.prefix, "interface "+u.iface)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Cidr < out[j].Cidr })
	return out, withWarnings(warns, nil)
}

// interfaceSubnets reads IPv4 subnets out of a libvirt interface XML.
func interfaceSubnets(x string) []ifaceSubnet {
	var ifc libvirtxml.Interface
	if err := ifc.Unmarshal(x); err != nil {
		return nil
	}
	var out []ifaceSubnet
	for _, proto := range ifc.Protocol {
		if proto.Family != "ipv4" {
			continue
		}
		for _, ip := range proto.IPs {
			a, err := netip.ParseAddr(ip.Address)
			if err != nil || !a.Is4() {
				continue
			}
			bits := int(ip.Prefix)
			if bits == 0 {
				bits = 32
			}
			if pfx, err := a.Prefix(bits); err == nil {
				out = append(out, ifaceSubnet{iface: ifc.Name, prefix: pfx})
			}
		}
	}
	return out
}

// withNetworkUUID copies the uuid of the existing definition old into x.
func withNetworkUUID(x, old string) (string, error) {
	var o, n libvirtxml.Network
	if err := o.Unmarshal(old); err != nil {
		return "", fmt.Errorf("parse existing network: %w", err)
	}
	if err := n.Unmarshal(x); err != nil {
		return "", fmt.Errorf("parse network: %w", err)
	}
	n.UUID = o.UUID
	return n.Marshal()
}
