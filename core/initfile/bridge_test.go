package initfile

import (
	"strings"
	"testing"

	"github.com/lago-go/lago/core/spec"
)

// TestBridgeManagement: as in the original, a bridge net can be the
// management net (the only net of the file, or marked management: true);
// with nat nets around and none marked, a nat net is chosen.
func TestBridgeManagement(t *testing.T) {
	tests := []struct {
		name     string
		nets     string
		nics     string
		wantMgmt string
	}{
		{"only a bridge net", "  lab: {type: bridge}\n", "[{net: lab}]", "lab"},
		{"bridge nets only: alphabetically first", "  zeta: {type: bridge}\n  alpha: {type: bridge}\n", "[{net: alpha}, {net: zeta}]", "alpha"},
		{"a nat net wins over an earlier-named bridge", "  abr: {type: bridge}\n  nat0: {}\n", "[{net: abr}, {net: nat0}]", "nat0"},
		{"a marked bridge wins over a nat net", "  lab: {type: bridge, management: true}\n  nat0: {}\n", "[{net: lab}, {net: nat0}]", "lab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, "domains:\n  vm0:\n    nics: "+tt.nics+"\nnets:\n"+tt.nets)
			if c.MgmtNet != tt.wantMgmt || c.VMs[0].MgmtNet != tt.wantMgmt {
				t.Fatalf("management net %q (vm: %q), want %q", c.MgmtNet, c.VMs[0].MgmtNet, tt.wantMgmt)
			}
			gws := map[string]string{}
			for _, r := range c.SubnetRequests() {
				gws[r.Net] = "192.168.210.1"
			}
			nets, vms, err := c.Allocate(gws)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range nets {
				if n.Type != spec.NetBridge {
					continue
				}
				if n.Management != (n.Name == tt.wantMgmt) || n.DNSDomainName != "" || len(n.DNSRecords) != 0 || n.Gw != "" || n.DHCP != nil {
					t.Errorf("bridge net %+v: want no gateway, DHCP or DNS, management %v", n, n.Name == tt.wantMgmt)
				}
			}
			for _, nic := range vms[0].NICs {
				if b := nets[0].Type == spec.NetBridge && nic.Net == nets[0].Name; b && (nic.IP != "" || nic.MAC != "") {
					t.Errorf("bridge NIC %+v got an address", nic)
				}
			}
		})
	}
}

func TestBridgeNetErrors(t *testing.T) {
	tests := []struct {
		name, nets, want string
	}{
		{"dns domain", "  lab: {type: bridge, dns_domain_name: lab.local}\n",
			"LagoInitFile:5:23: nets.lab.dns_domain_name: a bridge net has no DNS server of lago's: remove dns_domain_name or use type: nat"},
		{"dns records", "  lab: {type: bridge, dns_records: {a: 10.0.0.1}}\n",
			"LagoInitFile:5:23: nets.lab.dns_records: a bridge net has no DNS server of lago's: remove dns_records or use type: nat"},
		{"gateway", "  lab: {type: bridge, gw: 10.0.0.1}\n",
			"LagoInitFile:5:27: nets.lab.gw: a bridge net has no gateway of lago's: remove gw or use type: nat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, "domains:\n  vm0:\n    nics: [{net: lab}]\nnets:\n"+tt.nets)
			if err == nil || strings.TrimSpace(err.Error()) != tt.want {
				t.Errorf("err = %v\nwant %s", err, tt.want)
			}
		})
	}
}
