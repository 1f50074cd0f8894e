package inventory

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/spec"
)

const key = "/user/.lago/default/id_rsa"

// specOf decodes a VM spec the way virt/vm-<name> is read.
func specOf(t *testing.T, js string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatalf("bad test spec %s: %v", js, err)
	}
	return m
}

// The original's unit-test fixture (tests/unit/lago/test_lago_ansible.py):
// two VMs of type default in groups, one of type not-default in none.
const (
	vm1JSON = `{"name": "vm1", "groups": ["masters", "vms"],
		"nics": [{"net": "lago", "ip": "192.168.200.2"}],
		"disks": [{"name": "root", "format": "qcow2", "template_name": "el7", "type": "template",
			"metadata": {"distro": "el7", "arch": "x86_64"}}],
		"vm-provider": "local-libvirt", "vm-type": "default", "mgmt_net": "lago"}`
	vm2JSON = `{"name": "vm2", "groups": ["vms"],
		"nics": [{"net": "lago", "ip": "192.168.200.3"}],
		"disks": [{"name": "root", "format": "qcow2", "template_name": "el7", "type": "template",
			"metadata": {"distro": "el7", "arch": "x86_64"}}],
		"vm-provider": "local-libvirt", "vm-type": "default", "mgmt_net": "lago"}`
	vm3JSON = `{"name": "vm3", "groups": [],
		"nics": [{"net": "lago", "ip": "192.168.200.4"}],
		"disks": [{"name": "root", "format": "qcow2", "template_name": "fc25", "type": "template",
			"metadata": {"distro": "fc25", "arch": "aarch64"}}],
		"vm-provider": "local-libvirt", "vm-type": "not-default", "mgmt_net": "lago"}`
)

func fixture(t *testing.T) []Host {
	t.Helper()
	var out []Host
	for i, js := range []string{vm1JSON, vm2JSON, vm3JSON} {
		s := specOf(t, js)
		out = append(out, Host{
			Name: s["name"].(string), Spec: s, KeyFile: key,
			Address: []string{"192.168.200.2", "192.168.200.3", "192.168.200.4"}[i],
			User:    "root", Password: "123456", KeyInstalled: true,
		})
	}
	return out
}

func line(name, ip string) string {
	return name + " ansible_host=" + ip + " ansible_ssh_private_key_file=" + key + " ansible_user=root"
}

var (
	l1 = line("vm1", "192.168.200.2")
	l2 = line("vm2", "192.168.200.3")
	l3 = line("vm3", "192.168.200.4")
)

func TestBuildINI(t *testing.T) {
	tests := []struct {
		name string
		keys []string
		// edit changes the fixture before the build.
		edit func(t *testing.T, hs []Host) []Host
		want []string
	}{
		{
			// Groups in the order the original's dict got them: VM by
			// VM, key by key, bare groups last.
			name: "default keys",
			want: []string{
				"[vm-type=default]", l1, l2,
				"[groups=masters]", l1,
				"[groups=vms]", l1, l2,
				"[vm-provider=local-libvirt]", l1, l2, l3,
				"[masters]", l1,
				"[vms]", l1, l2,
				"[vm-type=not-default]", l3,
			},
		},
		{
			name: "empty keys mean the defaults",
			keys: []string{},
			want: []string{
				"[vm-type=default]", l1, l2, "[groups=masters]", l1, "[groups=vms]", l1, l2,
				"[vm-provider=local-libvirt]", l1, l2, l3, "[masters]", l1, "[vms]", l1, l2,
				"[vm-type=not-default]", l3,
			},
		},
		{
			// The key is written as given, leading '/' and all.
			name: "leading slash and a plain key",
			keys: []string{"/disks/0/template_name", "mgmt_net"},
			want: []string{
				"[/disks/0/template_name=el7]", l1, l2,
				"[mgmt_net=lago]", l1, l2, l3,
				"[masters]", l1, "[vms]", l1, l2,
				"[/disks/0/template_name=fc25]", l3,
			},
		},
		{
			name: "documentation's distro and arch",
			keys: []string{"/disks/0/metadata/distro", "disks/0/metadata/arch"},
			want: []string{
				"[/disks/0/metadata/distro=el7]", l1, l2,
				"[disks/0/metadata/arch=x86_64]", l1, l2,
				"[masters]", l1, "[vms]", l1, l2,
				"[/disks/0/metadata/distro=fc25]", l3,
				"[disks/0/metadata/arch=aarch64]", l3,
			},
		},
		{
			name: "negative index counts from the end",
			keys: []string{"/disks/-1/template_name"},
			want: []string{
				"[/disks/-1/template_name=el7]", l1, l2,
				"[masters]", l1, "[vms]", l1, l2,
				"[/disks/-1/template_name=fc25]", l3,
			},
		},
		{
			// A VM without the path is in no group of that key; vm3,
			// in no group at all, is not in the inventory.
			name: "missing keys",
			keys: []string{"/f", "groups/1/2/3", "disks/5/name", "disks/x", "vm-type/0"},
			want: []string{"[masters]", l1, "[vms]", l1, l2},
		},
		{
			name: "groups key by itself",
			keys: []string{"groups"},
			want: []string{
				"[groups=masters]", l1, "[groups=vms]", l1, l2, "[masters]", l1, "[vms]", l1, l2,
			},
		},
		{
			// The original's documentation example: groups: web-server.
			// The original made groups w, e, b, ... of it.
			name: "groups string is one group",
			keys: []string{"groups"},
			edit: func(t *testing.T, hs []Host) []Host {
				hs[0].Spec["groups"] = "web-server"
				hs[1].Spec["groups"] = "db-server"
				return hs
			},
			want: []string{
				"[groups=web-server]", l1, "[web-server]", l1,
				"[groups=db-server]", l2, "[db-server]", l2,
			},
		},
		{
			name: "list value gives a group per item; nulls and repeats dropped",
			keys: []string{"metadata/roles"},
			edit: func(t *testing.T, hs []Host) []Host {
				hs[0].Spec["groups"] = []any{"vms", "vms", nil, ""}
				hs[0].Spec["metadata"] = specOf(t, `{"roles": ["db", null, "web", "db"]}`)
				hs[2].Spec["metadata"] = specOf(t, `{"roles": "web"}`)
				return hs
			},
			want: []string{
				"[metadata/roles=db]", l1, "[metadata/roles=web]", l1, l3,
				"[vms]", l1, l2,
			},
		},
		{
			name: "numbers and booleans as the original's str()",
			keys: []string{"vcpu", "memory", "metadata/ratio", "metadata/on", "metadata/big", "metadata/0"},
			edit: func(t *testing.T, hs []Host) []Host {
				hs[0].Spec = specOf(t, `{"name": "vm1", "vcpu": 2, "memory": 1024, "metadata": {"ratio": 1.5, "on": true, "big": 1e-7, "0": "zero"}}`)
				hs[1].Spec = map[string]any{"vcpu": json.Number("4"), "memory": 2048, "metadata": map[string]any{"on": false}}
				return hs[:2]
			},
			want: []string{
				"[vcpu=2]", l1, "[memory=1024]", l1, "[metadata/ratio=1.5]", l1, "[metadata/on=True]", l1,
				"[metadata/big=1e-07]", l1, "[metadata/0=zero]", l1,
				"[vcpu=4]", l2, "[memory=2048]", l2, "[metadata/on=False]", l2,
			},
		},
		{
			name: "null value is no group",
			keys: []string{"vm-type"},
			edit: func(t *testing.T, hs []Host) []Host {
				hs[0].Spec["vm-type"] = nil
				return hs
			},
			want: []string{"[masters]", l1, "[vms]", l1, l2, "[vm-type=default]", l2, "[vm-type=not-default]", l3},
		},
		{
			// The original crashed (KeyError in its mgmt net's mapping).
			name: "host without an address",
			keys: []string{"vm-type"},
			edit: func(t *testing.T, hs []Host) []Host {
				hs[2].Address = ""
				return hs
			},
			want: []string{
				"[vm-type=default]", l1, l2, "[masters]", l1, "[vms]", l1, l2,
				"[vm-type=not-default]", "vm3 ansible_ssh_private_key_file=" + key + " ansible_user=root",
			},
		},
		{
			name: "password where the key is not installed, quoted; caller's vars in name order",
			keys: []string{"vm-type"},
			edit: func(t *testing.T, hs []Host) []Host {
				hs[0].KeyInstalled = false
				hs[1].KeyInstalled = false
				hs[1].Password = "s3cret"
				hs[2].Vars = map[string]string{"z_var": "1", "ansible_ssh_common_args": "-o UserKnownHostsFile=/p/known_hosts"}
				return hs
			},
			want: []string{
				"[vm-type=default]", l1 + ` ansible_password='"123456"'`, l2 + " ansible_password=s3cret",
				"[masters]", l1 + ` ansible_password='"123456"'`,
				"[vms]", l1 + ` ansible_password='"123456"'`, l2 + " ansible_password=s3cret",
				"[vm-type=not-default]", l3 + ` ansible_ssh_common_args='"-o UserKnownHostsFile=/p/known_hosts"' z_var='"1"'`,
			},
		},
		{
			name: "hosts sorted within a group whatever the VM order",
			keys: []string{"vm-provider"},
			edit: func(t *testing.T, hs []Host) []Host {
				return []Host{hs[2], hs[0], hs[1]}
			},
			want: []string{"[vm-provider=local-libvirt]", l1, l2, l3, "[masters]", l1, "[vms]", l1, l2},
		},
		{
			name: "no hosts",
			edit: func(t *testing.T, hs []Host) []Host { return nil },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := fixture(t)
			if tt.edit != nil {
				hs = tt.edit(t, hs)
			}
			inv, err := Build(hs, tt.keys)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			want := ""
			if len(tt.want) > 0 {
				want = strings.Join(tt.want, "\n") + "\n"
			}
			if got := inv.INI(); got != want {
				t.Errorf("INI:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestBuildGroupsAndHosts(t *testing.T) {
	hs := fixture(t)
	hs[1].Address = ""
	hs[1].KeyInstalled = false
	inv, err := Build(hs, []string{"groups"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := inv.Group("vms"), []string{"vm1", "vm2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Group(vms) = %v, want %v", got, want)
	}
	if got := inv.Group("nope"); got != nil {
		t.Errorf("Group(nope) = %v, want nil", got)
	}
	var names []string
	for _, h := range inv.Hosts {
		names = append(names, h.Name)
	}
	if want := []string{"vm1", "vm2"}; !reflect.DeepEqual(names, want) {
		t.Errorf("Hosts = %v, want %v (vm3 is in no group)", names, want)
	}
	if want := []string{"vm2"}; !reflect.DeepEqual(inv.NoAddress, want) {
		t.Errorf("NoAddress = %v, want %v", inv.NoAddress, want)
	}
	want := map[string]string{VarKeyFile: key, VarUser: "root", VarPassword: "123456"}
	if got := inv.HostVarsOf("vm2"); !reflect.DeepEqual(got, want) {
		t.Errorf("HostVarsOf(vm2) = %v, want %v", got, want)
	}
	if got := inv.HostVarsOf("vm3"); got != nil {
		t.Errorf("HostVarsOf(vm3) = %v, want nil", got)
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name   string
		keys   []string
		edit   func(t *testing.T, hs []Host) []Host
		errKey string
		errVM  string
		want   string
	}{
		{name: "empty key", keys: []string{"vm-type", ""}, want: "empty key path"},
		{name: "whole spec", keys: []string{"/"}, errKey: "/", want: "empty key path"},
		{name: "empty component", keys: []string{"disks//name"}, errKey: "disks//name", want: "component 2 is empty"},
		{name: "trailing slash", keys: []string{"disks/"}, errKey: "disks/", want: "component 2 is empty"},
		{name: "space in key", keys: []string{"vm type"}, errKey: "vm type", want: "white space"},
		{name: "colon in key", keys: []string{"a:b"}, errKey: "a:b", want: `':' cannot be`},
		{name: "bracket in key", keys: []string{"a]"}, errKey: "a]", want: `']' cannot be`},
		{
			name: "mapping value", keys: []string{"disks/0/metadata"}, errKey: "disks/0/metadata", errVM: "vm1",
			want: "the value is a mapping; name a key inside it (disks/0/metadata/KEY)",
		},
		{
			name: "list of mappings", keys: []string{"nics"}, errKey: "nics", errVM: "vm1",
			want: "item 0 of the list is a mapping; name a key inside it (nics/0/...)",
		},
		{
			name: "value ansible cannot have in a group name", keys: []string{"metadata/x"}, errKey: "metadata/x", errVM: "vm2",
			edit: func(t *testing.T, hs []Host) []Host {
				hs[1].Spec["metadata"] = map[string]any{"x": "a b"}
				return hs
			},
			want: `group "metadata/x=a b": white space`,
		},
		{
			name: "ipv6 value", keys: []string{"nics/0/ip"}, errKey: "nics/0/ip", errVM: "vm1",
			edit: func(t *testing.T, hs []Host) []Host {
				hs[0].Spec["nics"] = []any{map[string]any{"ip": "fd00::2"}}
				return hs
			},
			want: `':' cannot be`,
		},
		{
			name: "groups mapping", keys: []string{"vm-type"}, errVM: "vm3",
			edit: func(t *testing.T, hs []Host) []Host {
				hs[2].Spec["groups"] = map[string]any{"a": 1}
				return hs
			},
			want: "groups: want a group name or a list of them, got a mapping",
		},
		{
			name: "groups list of lists", keys: []string{"vm-type"}, errVM: "vm3",
			edit: func(t *testing.T, hs []Host) []Host {
				hs[2].Spec["groups"] = []any{"a", []any{"b"}}
				return hs
			},
			want: "groups: item 1 is a list",
		},
		{
			name: "bad bare group", keys: []string{"vm-type"}, errVM: "vm1",
			edit: func(t *testing.T, hs []Host) []Host {
				hs[0].Spec["groups"] = []any{"web:prod"}
				return hs
			},
			want: `groups: "web:prod"`,
		},
		{
			name: "reserved group", keys: []string{"vm-type"}, errVM: "vm1",
			edit: func(t *testing.T, hs []Host) []Host {
				hs[0].Spec["groups"] = "_meta"
				return hs
			},
			want: "reserved",
		},
		{
			name: "host name", errVM: "vm:1",
			edit: func(t *testing.T, hs []Host) []Host {
				hs[0].Name = "vm:1"
				return hs
			},
			want: "invalid host name",
		},
		{
			name: "duplicate host", errVM: "vm1",
			edit: func(t *testing.T, hs []Host) []Host {
				return append(hs, hs[0])
			},
			want: "two VMs have this name",
		},
		{
			name: "bad var name", errVM: "vm1",
			edit: func(t *testing.T, hs []Host) []Host {
				hs[0].Vars = map[string]string{"a-b": "x"}
				return hs
			},
			want: `invalid host variable name "a-b"`,
		},
		{
			name: "own var", errVM: "vm1",
			edit: func(t *testing.T, hs []Host) []Host {
				hs[0].Vars = map[string]string{VarHost: "x"}
				return hs
			},
			want: "ansible_host is the inventory's own",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := fixture(t)
			if tt.edit != nil {
				hs = tt.edit(t, hs)
			}
			_, err := Build(hs, tt.keys)
			if err == nil {
				t.Fatal("Build succeeded, want an error")
			}
			var ie *Error
			if !errors.As(err, &ie) {
				t.Fatalf("error %v (%T) is not an *inventory.Error", err, err)
			}
			if !errs.IsUser(err) {
				t.Errorf("error %v is not a user error", err)
			}
			if ie.Key != tt.errKey || ie.VM != tt.errVM {
				t.Errorf("error names key %q vm %q, want key %q vm %q", ie.Key, ie.VM, tt.errKey, tt.errVM)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if tt.errKey != "" && !strings.Contains(err.Error(), `key "`+tt.errKey+`"`) {
				t.Errorf("error %q does not name the key %q", err, tt.errKey)
			}
		})
	}
}

func TestINIValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.168.200.2", "192.168.200.2"},
		{"/home/u/.lago/default/id_rsa", "/home/u/.lago/default/id_rsa"},
		{"root", "root"},
		{"s3cret", "s3cret"},
		{"el7.6", "el7.6"},
		{"a-1", "a-1"},
		{"1.2.3", "1.2.3"},
		{"123456", `'"123456"'`},
		{"-1", `'"-1"'`},
		{"1.5", `'"1.5"'`},
		{".5", `'".5"'`},
		{"1e5", `'"1e5"'`},
		{"0x10", `'"0x10"'`},
		{"1_000", `'"1_000"'`},
		{"1j", `'"1j"'`},
		{"...", `'"..."'`},
		{"True", `'"True"'`},
		{"None", `'"None"'`},
		{"", `'""'`},
		{"-", `'"-"'`},
		{"[1]", `'"[1]"'`},
		{"1,2", `'"1,2"'`},
		{"a b", `'"a b"'`},
		{"a#b", `'"a#b"'`},
		{"it's", `'"it\x27s"'`},
		{`say "hi"`, `'"say \x22hi\x22"'`},
		{`back\slash`, `'"back\\slash"'`},
		{"tab\there\nnl", `'"tab\x09here\x0anl"'`},
		{"para\u2029graph", `'"para\u2029graph"'`},
		{"pässword", `'"pässword"'`},
	}
	for _, tt := range tests {
		if got := iniValue(tt.in); got != tt.want {
			t.Errorf("iniValue(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestDocument(t *testing.T) {
	hs := fixture(t)
	hs[0].Spec["groups"] = []any{"all", "vms"}
	inv, err := Build(hs[:2], []string{"vm-type"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	hv := func(ip string) string {
		return `{"ansible_host":"` + ip + `","ansible_ssh_private_key_file":"` + key + `","ansible_user":"root"}`
	}
	want := `{"_meta":{"hostvars":{"vm1":` + hv("192.168.200.2") + `,"vm2":` + hv("192.168.200.3") + `}},` +
		`"all":{"children":["vm-type=default","vms"],"hosts":["vm1"]},` +
		`"vm-type=default":{"hosts":["vm1","vm2"]},"vms":{"hosts":["vm1","vm2"]}}`
	if string(got) != want {
		t.Errorf("JSON:\n%s\nwant:\n%s", got, want)
	}
	empty, err := Build(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = json.Marshal(empty)
	if want := `{"_meta":{"hostvars":{}},"all":{"children":[]}}`; string(got) != want {
		t.Errorf("empty JSON = %s, want %s", got, want)
	}
}

func TestSpecMap(t *testing.T) {
	d := SpecDefaults{VMType: "default", VMProvider: "local-libvirt", SSHUser: "root"}
	vm := &spec.VM{
		Name: "vm0", Memory: 1024, Groups: spec.StringList{"web"}, SSHUser: "admin",
		Disks: []spec.Disk{{Dev: "vda", Type: "template", Metadata: map[string]any{"distro": "el7"}}},
	}
	m, err := SpecMap(vm, d)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := Build([]Host{{Name: "vm0", Spec: m, Address: "192.168.200.2"}},
		[]string{"vm-type", "vm-provider", "ssh-user", "memory", "disks/0/metadata/distro"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range inv.Groups {
		got = append(got, g.Name)
	}
	want := []string{"vm-type=default", "vm-provider=local-libvirt", "ssh-user=admin", "memory=1024", "disks/0/metadata/distro=el7", "web"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("groups = %v, want %v", got, want)
	}
	vm.VMType, vm.VMProvider = "ost", "remote"
	if m, _ = SpecMap(vm, d); m["vm-type"] != "ost" || m["vm-provider"] != "remote" {
		t.Errorf("SpecMap overrode the spec's own vm-type/vm-provider: %v %v", m["vm-type"], m["vm-provider"])
	}
}

// BenchmarkBuild builds and renders the inventory of 100 VMs by the
// default keys.
func BenchmarkBuild(b *testing.B) {
	var hs []Host
	for i := 0; i < 100; i++ {
		var s map[string]any
		_ = json.Unmarshal([]byte(vm1JSON), &s)
		name := "vm" + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + string(rune('a'+i/26))
		hs = append(hs, Host{Name: name, Spec: s, Address: "192.168.200.2", KeyFile: key, User: "root"})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		inv, err := Build(hs, nil)
		if err != nil {
			b.Fatal(err)
		}
		_ = inv.INI()
		if _, err := json.Marshal(inv); err != nil {
			b.Fatal(err)
		}
	}
}
