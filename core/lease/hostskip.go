package lease

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	mathbits "math/bits"
	"net"
	"net/netip"
	"os"
	"strings"
)

// HostNet is a subnet the host already uses: an interface address or a route.
type HostNet struct {
	Prefix netip.Prefix
	What   string // e.g. "address 192.168.201.1/24 on virbr3", "route via eth0"
}

// HostSkip returns a Request.Skip that passes over the subnets overlapping
// nets, saying which host network is in the way.
func HostSkip(nets []HostNet) func(netip.Prefix) (string, bool) {
	return func(subnet netip.Prefix) (string, bool) {
		for _, n := range nets {
			if n.Prefix.Overlaps(subnet) {
				return n.What, true
			}
		}
		return "", false
	}
}

// LocalHostNets lists the IPv4 subnets this host's interfaces and routing
// table use, for a local hypervisor: leasing one of them would make a network
// libvirt refuses to start, or one that hijacks the host's own traffic.
// Default routes are left out since they overlap everything. It only reads
// kernel state; it sends nothing.
func LocalHostNets() ([]HostNet, error) {
	var out []HostNet
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list host interfaces: %w", err)
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, fmt.Errorf("addresses of host interface %s: %w", ifc.Name, err)
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			p, ok := netipPrefix(ipn)
			if !ok || !p.Addr().Is4() || p.Addr().IsLoopback() {
				continue
			}
			out = append(out, HostNet{Prefix: p.Masked(), What: fmt.Sprintf("address %s on %s", p, ifc.Name)})
		}
	}
	f, err := os.Open("/proc/net/route")
	if err != nil {
		if os.IsNotExist(err) {
			return out, nil
		}
		return nil, fmt.Errorf("read host routes: %w", err)
	}
	defer f.Close()
	routes, err := parseRoutes(f)
	if err != nil {
		return nil, fmt.Errorf("read host routes /proc/net/route: %w", err)
	}
	return append(out, routes...), nil
}

func netipPrefix(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	a = a.Unmap()
	if a.Is4() && ones > 32 {
		ones -= 96
	}
	return netip.PrefixFrom(a, ones), true
}

// parseRoutes reads /proc/net/route: a header line, then per route
// "Iface Destination Gateway Flags RefCnt Use Metric Mask ..." with
// addresses as little-endian hex.
func parseRoutes(r io.Reader) ([]HostNet, error) {
	var out []HostNet
	sc := bufio.NewScanner(r)
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 8 {
			continue
		}
		dst, err1 := leAddr(f[1])
		mask, err2 := leAddr(f[7])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad route line %q", sc.Text())
		}
		m := mask.As4()
		bits := 0
		for _, b := range m {
			bits += mathbits.OnesCount8(b)
		}
		if bits == 0 {
			continue // default route
		}
		p := netip.PrefixFrom(dst, bits).Masked()
		out = append(out, HostNet{Prefix: p, What: fmt.Sprintf("route to %s via %s", p, f[0])})
	}
	return out, sc.Err()
}

func leAddr(s string) (netip.Addr, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return netip.Addr{}, fmt.Errorf("bad address %q", s)
	}
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], binary.LittleEndian.Uint32(b))
	return netip.AddrFrom4(a), nil
}
