package initfile

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path"

	"github.com/lago-go/lago/core/spec"
)

// SubnetRequest is what the caller must lease for one nat net before
// Allocate: Gw is the explicit gateway the file asks for (lease exactly
// that subnet), or "" for any free subnet.
type SubnetRequest struct {
	Net string
	Gw  string
}

// SubnetRequests lists the nat nets of c in file order; bridge nets need
// no subnet.
func (c *Config) SubnetRequests() []SubnetRequest {
	var out []SubnetRequest
	for _, n := range c.Nets {
		if n.Type == spec.NetNAT {
			out = append(out, SubnetRequest{Net: n.Name, Gw: n.Gw})
		}
	}
	return out
}

// Allocate produces the specs to store in a prefix from a validated
// config and the gateway leased for each nat net (net name -> gateway
// address such as 192.168.201.1; a net with an explicit gw may be left out
// and keeps its own). It does not change c.
//
// Static IPs are honoured (only their last octet counts on a leased
// subnet); the other NICs of nat nets get the lowest free address of
// .2-.254, VMs and NICs taken in file order. Each NIC's MAC derives from
// its IP; bridge NICs get neither. Each net's mapping names every NIC
// (<vm> for the management NIC, <vm>-eth<i>, <vm>-<net>, <vm>-<net>-<n>);
// the management net's DNS records hold every mapping of every net, other
// nat nets forward DNS to the management gateway. Disks get their image
// paths under $LAGO_PREFIX_PATH/images, named <vm>_<disk>.<format>.
func (c *Config) Allocate(gateways map[string]string) ([]spec.Net, []spec.VM, error) {
	nets, err := cloneJSON(c.Nets)
	if err != nil {
		return nil, nil, err
	}
	vms, err := cloneJSON(c.VMs)
	if err != nil {
		return nil, nil, err
	}
	byName := map[string]*spec.Net{}
	subnets := map[string]netip.Prefix{}
	used := map[string]map[byte]bool{}
	for i := range nets {
		n := &nets[i]
		n.Mapping = map[string]string{}
		byName[n.Name] = n
		if n.Type != spec.NetNAT {
			continue
		}
		gw := gateways[n.Name]
		if gw == "" {
			gw = n.Gw
		}
		if gw == "" {
			return nil, nil, fmt.Errorf("allocate addresses: no subnet leased for net %s", n.Name)
		}
		if n.Gw != "" && gw != n.Gw {
			return nil, nil, fmt.Errorf("allocate addresses: net %s asks for gateway %s but %s was leased", n.Name, n.Gw, gw)
		}
		a, err := netip.ParseAddr(gw)
		if err != nil || !a.Is4() {
			return nil, nil, fmt.Errorf("allocate addresses: gateway %q of net %s is not an IPv4 address", gw, n.Name)
		}
		n.Gw = a.String()
		p, _ := n.Prefix()
		subnets[n.Name] = p
		used[n.Name] = map[byte]bool{a.As4()[3]: true}
	}
	// Static IPs first, moved onto the leased subnet.
	for vi := range vms {
		for ni := range vms[vi].NICs {
			nic := &vms[vi].NICs[ni]
			p, ok := subnets[nic.Net]
			if !ok {
				nic.IP = ""
				continue
			}
			if nic.IP == "" {
				continue
			}
			last := netip.MustParseAddr(nic.IP).As4()[3]
			if used[nic.Net][last] {
				return nil, nil, fmt.Errorf("allocate addresses: %s of VM %s clashes on net %s", nic.IP, vms[vi].Name, nic.Net)
			}
			used[nic.Net][last] = true
			nic.IP = withLastOctet(p, last).String()
		}
	}
	for vi := range vms {
		for ni := range vms[vi].NICs {
			nic := &vms[vi].NICs[ni]
			p, ok := subnets[nic.Net]
			if !ok || nic.IP != "" {
				continue
			}
			last := byte(0)
			for o := 2; o <= 254; o++ {
				if !used[nic.Net][byte(o)] {
					last = byte(o)
					break
				}
			}
			if last == 0 {
				return nil, nil, fmt.Errorf("allocate addresses: net %s has no free address left for VM %s", nic.Net, vms[vi].Name)
			}
			used[nic.Net][last] = true
			nic.IP = withLastOctet(p, last).String()
		}
	}
	for vi := range vms {
		vm := &vms[vi]
		perNet := map[string]int{}
		for ni := range vm.NICs {
			nic := &vm.NICs[ni]
			net := byName[nic.Net]
			nic.MAC = spec.MACFromIP(nic.IP)
			if nic.MTU == 0 && net != nil {
				nic.MTU = net.MTU
			}
			n := perNet[nic.Net]
			perNet[nic.Net]++
			if nic.IP == "" || net == nil {
				continue
			}
			if nic.Net == vm.MgmtNet {
				net.Mapping[vm.Name] = nic.IP
			}
			net.Mapping[fmt.Sprintf("%s-eth%d", vm.Name, ni)] = nic.IP
			net.Mapping[fmt.Sprintf("%s-%s-%d", vm.Name, nic.Net, n)] = nic.IP
			if n == 0 {
				net.Mapping[fmt.Sprintf("%s-%s", vm.Name, nic.Net)] = nic.IP
			}
		}
		for di := range vm.Disks {
			disk := &vm.Disks[di]
			if p := imagePath(vm.Name, disk); p != "" {
				if disk.Path != "" {
					disk.SourcePath = disk.Path
				}
				disk.Path = p
			}
		}
	}
	// A bridge management net has no DNS server of lago's to serve records.
	if mgmt := byName[c.MgmtNet]; mgmt != nil && mgmt.Type == spec.NetNAT {
		records := map[string]string{}
		for k, v := range mgmt.DNSRecords {
			records[k] = v
		}
		for _, n := range nets {
			for k, v := range n.Mapping {
				records[k] = v
			}
		}
		mgmt.DNSRecords = records
		for i := range nets {
			if nets[i].Name != mgmt.Name && nets[i].Type == spec.NetNAT {
				nets[i].DNSForward = mgmt.Gw
			}
		}
	}
	return nets, vms, nil
}

// imagePath returns where a disk's image lives in the prefix, or "" when
// the disk is used in place (a file or iso disk given by path without
// make_a_copy).
func imagePath(vm string, d *spec.Disk) string {
	switch d.Type {
	case spec.DiskFile, spec.DiskISO:
		if d.URL == "" && !(d.Type == spec.DiskFile && d.MakeACopy) {
			return ""
		}
	}
	ext := d.Format
	if d.Type == spec.DiskISO {
		ext = "iso"
	}
	return path.Join(spec.PrefixPathVar, "images", fmt.Sprintf("%s_%s.%s", vm, d.Name, ext))
}

func withLastOctet(p netip.Prefix, last byte) netip.Addr {
	o := p.Addr().As4()
	o[3] = last
	return netip.AddrFrom4(o)
}

// cloneJSON deep-copies v through JSON, the form specs are stored in.
func cloneJSON[T any](v T) (T, error) {
	var out T
	b, err := json.Marshal(v)
	if err != nil {
		return out, fmt.Errorf("copy specs: %w", err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return out, fmt.Errorf("copy specs: %w", err)
	}
	return out, nil
}
