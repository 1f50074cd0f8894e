package initfile

import (
	"reflect"
	"strings"
	"testing"

	"github.com/lago-go/lago/core/spec"
)

const allocSrc = `
domains:
  vm0:
    nics:
      - net: lago
      - net: n2
      - net: n2
    disks:
      - {template_name: el7, dev: vda, name: root}
      - {type: empty, size: 10G, dev: vdb, name: data, format: raw}
      - {type: iso, url: "http://h/x.iso", dev: hdc, name: cd}
  vm1:
    nics:
      - {net: lago, ip: 192.168.99.2}
      - {net: br}
  vm2:
    nics:
      - {net: n2, ip: 192.168.210.3}
      - {net: lago}
nets:
  lago: {management: true, mtu: 9000}
  n2: {gw: 192.168.210.1}
  br: {type: bridge}
`

func TestSubnetRequests(t *testing.T) {
	c := mustParse(t, allocSrc)
	want := []SubnetRequest{{Net: "lago"}, {Net: "n2", Gw: "192.168.210.1"}}
	if got := c.SubnetRequests(); !reflect.DeepEqual(got, want) {
		t.Errorf("SubnetRequests() = %+v, want %+v", got, want)
	}
}

func TestAllocate(t *testing.T) {
	c := mustParse(t, allocSrc)
	nets, vms, err := c.Allocate(map[string]string{"lago": "192.168.201.1"})
	if err != nil {
		t.Fatal(err)
	}
	ips := func(vm spec.VM) []string {
		var out []string
		for _, n := range vm.NICs {
			out = append(out, n.IP)
		}
		return out
	}
	tests := []struct {
		vm   int
		want []string
	}{
		// vm1's static .2 is taken first (moved onto the leased subnet),
		// vm2's .3 on n2; the rest lowest free in file order.
		{0, []string{"192.168.201.3", "192.168.210.2", "192.168.210.4"}},
		{1, []string{"192.168.201.2", ""}},
		{2, []string{"192.168.210.3", "192.168.201.4"}},
	}
	for _, tt := range tests {
		if got := ips(vms[tt.vm]); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("vm%d IPs = %q, want %q", tt.vm, got, tt.want)
		}
	}
	if got := vms[0].NICs[0].MAC; got != "54:52:c0:a8:c9:03" {
		t.Errorf("MAC = %q", got)
	}
	if vms[1].NICs[1].MAC != "" {
		t.Errorf("bridge NIC got MAC %q", vms[1].NICs[1].MAC)
	}
	if vms[0].NICs[0].MTU != 9000 || vms[0].NICs[1].MTU != 0 {
		t.Errorf("MTU from net: %d %d", vms[0].NICs[0].MTU, vms[0].NICs[1].MTU)
	}
	wantLago := map[string]string{
		"vm0": "192.168.201.3", "vm0-eth0": "192.168.201.3", "vm0-lago": "192.168.201.3", "vm0-lago-0": "192.168.201.3",
		"vm1": "192.168.201.2", "vm1-eth0": "192.168.201.2", "vm1-lago": "192.168.201.2", "vm1-lago-0": "192.168.201.2",
		"vm2": "192.168.201.4", "vm2-eth1": "192.168.201.4", "vm2-lago": "192.168.201.4", "vm2-lago-0": "192.168.201.4",
	}
	if !reflect.DeepEqual(nets[0].Mapping, wantLago) {
		t.Errorf("lago mapping = %v", nets[0].Mapping)
	}
	wantN2 := map[string]string{
		"vm0-eth1": "192.168.210.2", "vm0-n2": "192.168.210.2", "vm0-n2-0": "192.168.210.2",
		"vm0-eth2": "192.168.210.4", "vm0-n2-1": "192.168.210.4",
		"vm2-eth0": "192.168.210.3", "vm2-n2": "192.168.210.3", "vm2-n2-0": "192.168.210.3",
	}
	if !reflect.DeepEqual(nets[1].Mapping, wantN2) {
		t.Errorf("n2 mapping = %v", nets[1].Mapping)
	}
	if len(nets[2].Mapping) != 0 || nets[2].Gw != "" {
		t.Errorf("bridge net: %+v", nets[2])
	}
	if len(nets[0].DNSRecords) != len(wantLago)+len(wantN2) || nets[0].DNSRecords["vm0-n2-1"] != "192.168.210.4" {
		t.Errorf("dns records = %v", nets[0].DNSRecords)
	}
	if nets[1].DNSForward != "192.168.201.1" || nets[1].DNSRecords != nil {
		t.Errorf("n2 dns: forward %q records %v", nets[1].DNSForward, nets[1].DNSRecords)
	}
	paths := []string{vms[0].Disks[0].Path, vms[0].Disks[1].Path, vms[0].Disks[2].Path}
	wantPaths := []string{"$LAGO_PREFIX_PATH/images/vm0_root.qcow2", "$LAGO_PREFIX_PATH/images/vm0_data.raw", "$LAGO_PREFIX_PATH/images/vm0_cd.iso"}
	if !reflect.DeepEqual(paths, wantPaths) {
		t.Errorf("disk paths = %q", paths)
	}
	// The config itself is untouched.
	if c.VMs[0].NICs[0].IP != "" || c.Nets[0].Mapping != nil {
		t.Error("Allocate changed its config")
	}
}

func TestAllocateErrors(t *testing.T) {
	c := mustParse(t, allocSrc)
	tests := []struct {
		name string
		gws  map[string]string
		want string
	}{
		{"missing lease", map[string]string{}, "no subnet leased for net lago"},
		{"explicit gw overridden", map[string]string{"lago": "192.168.201.1", "n2": "192.168.211.1"}, "net n2 asks for gateway 192.168.210.1 but 192.168.211.1 was leased"},
		{"bad gateway", map[string]string{"lago": "x"}, `gateway "x" of net lago`},
	}
	for _, tt := range tests {
		_, _, err := c.Allocate(tt.gws)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestAllocateFull(t *testing.T) {
	var b strings.Builder
	b.WriteString("domains:\n")
	for i := 0; i < 254; i++ {
		b.WriteString("  vm" + strings.Repeat("x", 0) + itoa(i) + ": {nics: [{net: lago}]}\n")
	}
	b.WriteString("nets:\n  lago: {}\n")
	c := mustParse(t, b.String())
	_, _, err := c.Allocate(map[string]string{"lago": "192.168.200.1"})
	if err == nil || !strings.Contains(err.Error(), "no free address left") {
		t.Errorf("error = %v", err)
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

func TestFileDiskInPlaceAndCopy(t *testing.T) {
	src := `
domains:
  vm0:
    nics: [{net: lago}]
    disks:
      - {type: file, path: /srv/a.qcow2, dev: vda, name: a}
      - {type: file, path: /srv/b.qcow2, dev: vdb, name: b, make_a_copy: true}
nets: {lago: {}}
`
	c := mustParse(t, src)
	_, vms, err := c.Allocate(map[string]string{"lago": "192.168.200.1"})
	if err != nil {
		t.Fatal(err)
	}
	d := vms[0].Disks
	if d[0].Path != "/srv/a.qcow2" || d[0].SourcePath != "" {
		t.Errorf("in-place disk: %+v", d[0])
	}
	if d[1].Path != "$LAGO_PREFIX_PATH/images/vm0_b.qcow2" || d[1].SourcePath != "/srv/b.qcow2" {
		t.Errorf("copied disk: %+v", d[1])
	}
}

// BenchmarkParseAllocate measures parse, validation and allocation of a
// file of 100 VMs with two NICs each.
func BenchmarkParseAllocate(b *testing.B) {
	var s strings.Builder
	s.WriteString("domains:\n")
	for i := 0; i < 100; i++ {
		s.WriteString("  vm" + itoa(i) + ":\n    memory: 512\n    nics: [{net: lago}, {net: n2}]\n    disks: [{template_name: el7, dev: vda}]\n")
	}
	s.WriteString("nets:\n  lago: {management: true}\n  n2: {}\n")
	data := []byte(s.String())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := Parse("f", data, Options{SkipPathChecks: true})
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.Allocate(map[string]string{"lago": "192.168.200.1", "n2": "192.168.201.1"}); err != nil {
			b.Fatal(err)
		}
	}
}
