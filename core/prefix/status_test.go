package prefix

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/lago-go/lago/core/output"
	"github.com/lago-go/lago/core/spec"
)

func TestBuildStatus(t *testing.T) {
	project, _ := originalWorkdir(t)
	p, err := Find(FindOptions{Cwd: project})
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Load()
	if err != nil {
		t.Fatal(err)
	}
	live := StateMaps{
		VMs:           map[string]string{"vm0": "running"},
		Nets:          map[string]string{"n0": "up"},
		SnapshotLists: map[string][]string{"vm0": {"a", "b"}},
	}
	st, err := BuildStatus(p, s, live, StatusOptions{DefaultRootPassword: "dflt"})
	if err != nil {
		t.Fatal(err)
	}
	md := map[string]any{"deploy-scripts": []any{"$LAGO_PREFIX_PATH/scripts/_home_user_deploy.sh"}}
	wantStatus := &Status{
		Path: filepath.Join(project, ".lago", "default"),
		UUID: "fe689d3c39d011e5b22b54ee755a00ca",
		Nets: []NetStatus{
			{Name: "n0", Type: spec.NetNAT, Gateway: "192.168.201.1", Subnet: "192.168.201.0/24", Management: true, State: "up"},
			{Name: "br0", Type: spec.NetBridge, State: "unknown"},
		},
		VMs: []VMStatus{{
			Name: "vm0", State: "running", Distro: "cirros", RootPassword: "123456",
			NICs:   []NICStatus{{Net: "n0", IP: "192.168.201.2", MAC: "54:52:c0:a8:c9:02"}, {Net: "br0"}},
			VMType: "default", Provider: "local-libvirt", Groups: []string{"web"}, Metadata: md,
			Disks: []DiskStatus{{Name: "root", Dev: "vda", Type: spec.DiskFile, Format: "qcow2",
				Path: filepath.Join(project, ".lago", "default", "images", "vm0_root.qcow2")}},
			Snapshots: []string{"a", "b"},
		}},
	}
	if !reflect.DeepEqual(st, wantStatus) {
		t.Errorf("status:\n got %#v\nwant %#v", st, wantStatus)
	}
	if got := st.VMs[0].Addresses(); !reflect.DeepEqual(got, map[string]string{"n0": "192.168.201.2"}) {
		t.Errorf("Addresses() = %v", got)
	}
	want := map[string]any{"Prefix": map[string]any{
		"Base directory": filepath.Join(project, ".lago", "default"),
		"UUID":           "fe689d3c39d011e5b22b54ee755a00ca",
		"Networks": map[string]any{
			"n0":  map[string]any{"gateway": "192.168.201.1", "management": true, "status": "up"},
			"br0": map[string]any{"management": false, "status": "unknown"},
		},
		"VMs": map[string]any{
			"vm0": map[string]any{
				"NICs": map[string]any{
					"eth0": map[string]any{"ip": "192.168.201.2", "network": "n0"},
					"eth1": map[string]any{"ip": "N/A", "network": "br0"},
				},
				"distro":        "cirros",
				"root password": "123456",
				"status":        "running",
				"metadata":      md,
				"snapshots":     "a, b",
			},
		},
	}}
	if got := st.Document(); !reflect.DeepEqual(got, want) {
		t.Errorf("status document:\n got %#v\nwant %#v", got, want)
	}
}

// TestBuildStatusStates: a powered-off VM is "down", as the original
// printed (scripts parse the word); a VM or net nobody answered for is
// "unknown" with no snapshots.
func TestBuildStatusStates(t *testing.T) {
	p := fixturePrefix(t)
	specs := &Specs{
		Nets: []spec.Net{{Name: "n0", Type: spec.NetNAT, Gw: "192.0.2.1"}},
		VMs:  []spec.VM{{Name: "vm0"}},
	}
	tests := []struct {
		name    string
		live    LiveState
		vm, net string
	}{
		{"shut off is down", StateMaps{VMs: map[string]string{"vm0": "shut off"}, Nets: map[string]string{"n0": "down"}}, "down", "down"},
		{"paused stays", StateMaps{VMs: map[string]string{"vm0": "paused"}, Nets: map[string]string{"n0": "up"}}, "paused", "up"},
		{"nil live", nil, "unknown", "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := BuildStatus(p, specs, tt.live, StatusOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if st.VMs[0].State != tt.vm || st.Nets[0].State != tt.net {
				t.Errorf("vm %q net %q, want %q %q", st.VMs[0].State, st.Nets[0].State, tt.vm, tt.net)
			}
			v := st.Document()["Prefix"].(map[string]any)["VMs"].(map[string]any)["vm0"].(map[string]any)
			if v["status"] != tt.vm || v["snapshots"] != "" {
				t.Errorf("document vm0 = %v", v)
			}
		})
	}
}

// TestRootPasswordRule: the guest's password is the spec's, else the
// template's, else the default; bootstrap sets the spec's, else the
// default, never the template's.
func TestRootPasswordRule(t *testing.T) {
	tests := []struct {
		spec, meta string
		of         RootPasswordFor
		want       string
	}{
		{"s", "m", GuestRootPassword, "s"},
		{"", "m", GuestRootPassword, "m"},
		{"", "", GuestRootPassword, "dflt"},
		{"s", "m", BootstrapRootPassword, "s"},
		{"", "m", BootstrapRootPassword, "dflt"},
		{"", "", BootstrapRootPassword, "dflt"},
	}
	for _, tt := range tests {
		vm := &spec.VM{Name: "vm0", RootPassword: tt.spec, Disks: []spec.Disk{{Dev: "vda"}}}
		if tt.meta != "" {
			vm.Disks[0].Metadata = map[string]any{"root-password": tt.meta}
		}
		if got := RootPassword(vm, "dflt", tt.of); got != tt.want {
			t.Errorf("RootPassword(spec %q, template %q, %d) = %q, want %q", tt.spec, tt.meta, tt.of, got, tt.want)
		}
		// Status shows the guest's.
		if tt.of != GuestRootPassword {
			continue
		}
		st, err := BuildStatus(fixturePrefix(t), &Specs{VMs: []spec.VM{*vm}}, nil, StatusOptions{DefaultRootPassword: "dflt"})
		if err != nil {
			t.Fatal(err)
		}
		if st.VMs[0].RootPassword != tt.want {
			t.Errorf("status of spec %q, template %q shows %q, want %q", tt.spec, tt.meta, st.VMs[0].RootPassword, tt.want)
		}
	}
}

// TestStatusDocumentGoldens: the document BuildStatus and Document make
// renders byte for byte as core/output's status goldens (the layout of
// lago-behaviour.md), in every built-in format.
func TestStatusDocumentGoldens(t *testing.T) {
	p := fixturePrefix(t)
	specs := &Specs{
		Nets: []spec.Net{{Name: "n0", Type: spec.NetNAT, Gw: "192.168.201.1", Management: true}},
		VMs: []spec.VM{{Name: "vm0", MgmtNet: "n0", NICs: []spec.NIC{{Net: "n0", IP: "192.168.201.2"}},
			Disks: []spec.Disk{{Dev: "vda", Metadata: map[string]any{"distro": "cirros"}}}}},
	}
	live := StateMaps{VMs: map[string]string{"vm0": "shut off"}, Nets: map[string]string{"n0": "down"}}
	st, err := BuildStatus(p, specs, live, StatusOptions{DefaultRootPassword: "123456"})
	if err != nil {
		t.Fatal(err)
	}
	st.Path = "/path/to/.lago/default"
	doc := st.Document()
	for _, name := range output.BuiltinNames() {
		golden := filepath.Join("..", "output", "testdata", "status."+name+".golden")
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		f, _ := output.Builtin(name)
		got, err := f.Format(context.Background(), doc)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s output differs from %s:\n--- got\n%s--- want\n%s", name, golden, got, want)
		}
	}
}

// fixturePrefix is a prefix holding only the uuid of the status goldens.
func fixturePrefix(t *testing.T) *Prefix {
	t.Helper()
	p := &Prefix{Path: t.TempDir()}
	if err := os.WriteFile(p.UUIDPath(), []byte("fe689d3c39d011e5b22b54ee755a00ca"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
