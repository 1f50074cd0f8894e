package spec

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestMACFromIP(t *testing.T) {
	tests := []struct{ ip, want string }{
		{"192.168.200.2", "54:52:c0:a8:c8:02"},
		{"10.0.0.255", "54:52:0a:00:00:ff"},
		{"", ""},
		{"::1", ""},
		{"garbage", ""},
	}
	for _, tt := range tests {
		if got := MACFromIP(tt.ip); got != tt.want {
			t.Errorf("MACFromIP(%q) = %q, want %q", tt.ip, got, tt.want)
		}
	}
}

func TestPrefixPath(t *testing.T) {
	tests := []struct{ stored, abs string }{
		{"$LAGO_PREFIX_PATH/images/vm0_root.qcow2", "/w/.lago/default/images/vm0_root.qcow2"},
		{"$LAGO_PREFIX_PATH", "/w/.lago/default"},
		{"/elsewhere/x.qcow2", "/elsewhere/x.qcow2"},
	}
	for _, tt := range tests {
		if got := ExpandPrefixPath(tt.stored, "/w/.lago/default"); got != tt.abs {
			t.Errorf("ExpandPrefixPath(%q) = %q, want %q", tt.stored, got, tt.abs)
		}
		if got := CollapsePrefixPath(tt.abs, "/w/.lago/default/"); got != tt.stored {
			t.Errorf("CollapsePrefixPath(%q) = %q, want %q", tt.abs, got, tt.stored)
		}
	}
	if got := ExpandPrefixPath("${LAGO_PREFIX_PATH}/a", "/p"); got != "/p/a" {
		t.Errorf("braced form: got %q", got)
	}
	if got := CollapsePrefixPath("/w/.lago/defaultX/a", "/w/.lago/default"); got != "/w/.lago/defaultX/a" {
		t.Errorf("sibling folder collapsed: %q", got)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"10G", 10 << 30, false},
		{"512M", 512 << 20, false},
		{"512m", 512 << 20, false},
		{"1.5G", 3 << 29, false},
		{"10GiB", 10 << 30, false},
		{"2048", 2048, false},
		{"1T", 1 << 40, false},
		{"", 0, true},
		{"G", 0, true},
		{"-1G", 0, true},
		{"0", 0, true},
		{"ten", 0, true},
		{"99999999999999T", 0, true},
		{"NaNG", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestBuildStepJSONKeepsOrder(t *testing.T) {
	in := `{"virt-customize":{"ssh-inject":"","touch":["/root/file1","/root/file2"],"copy":"dummy_file:/root","selinux-relabel":""}}`
	var s BuildStep
	if err := json.Unmarshal([]byte(in), &s); err != nil {
		t.Fatal(err)
	}
	wantArgs := []string{"--ssh-inject", "--touch", "/root/file1", "--touch", "/root/file2", "--copy", "dummy_file:/root", "--selinux-relabel"}
	if got := s.Args(); !reflect.DeepEqual(got, wantArgs) {
		t.Errorf("Args() = %q, want %q", got, wantArgs)
	}
	out, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Errorf("round trip:\n got %s\nwant %s", out, in)
	}
	for _, bad := range []string{`[]`, `{"a":{"x":{"y":1}}}`, `{"a":1}`, `{"a":{},"b":{}}`} {
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("Unmarshal(%s) succeeded, want error", bad)
		}
	}
}

// TestVMFromOriginal decodes a VM spec as the original writes it.
func TestVMFromOriginal(t *testing.T) {
	in := `{
    "name": "vm0", "memory": 1024, "vcpu": 2, "groups": "web",
    "nics": [{"net": "n0", "ip": "192.168.201.2"}],
    "disks": [{"name": "root", "dev": "vda", "type": "template", "format": "qcow2",
               "path": "$LAGO_PREFIX_PATH/images/vm0_root.qcow2",
               "metadata": {"distro": "cirros"},
               "build": [{"virt-customize": {"ssh-inject": ""}}]}],
    "metadata": {"deploy-scripts": ["/a.sh", "/b.sh"]},
    "mgmt_net": "n0", "ssh-user": "root", "some_unknown_key": {"x": 1}
}`
	var vm VM
	if err := json.Unmarshal([]byte(in), &vm); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(vm.Groups, StringList{"web"}) {
		t.Errorf("groups = %q", vm.Groups)
	}
	if got := vm.DeployScripts(); !reflect.DeepEqual(got, []string{"/a.sh", "/b.sh"}) {
		t.Errorf("deploy scripts = %q", got)
	}
	if !vm.DoBootstrap() {
		t.Error("bootstrap should default to true")
	}
	if vm.MgmtNIC() != 0 {
		t.Errorf("MgmtNIC = %d", vm.MgmtNIC())
	}
	if vm.Disks[0].Build[0].Builder != "virt-customize" {
		t.Errorf("build = %+v", vm.Disks[0].Build)
	}
}

func TestNetPrefix(t *testing.T) {
	n := Net{Gw: "192.168.201.1"}
	p, ok := n.Prefix()
	if !ok || p.String() != "192.168.201.0/24" {
		t.Errorf("Prefix() = %v, %v", p, ok)
	}
	if _, ok := (&Net{Type: NetBridge}).Prefix(); ok {
		t.Error("bridge net without gw has a prefix")
	}
}
