package prefix

import (
	"path/filepath"
	"reflect"
	"testing"
)

func TestStatusTree(t *testing.T) {
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
	got, err := StatusTree(p, s, live, StatusOptions{DefaultRootPassword: "dflt"})
	if err != nil {
		t.Fatal(err)
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
				"metadata":      map[string]any{"deploy-scripts": []any{"$LAGO_PREFIX_PATH/scripts/_home_user_deploy.sh"}},
				"snapshots":     "a, b",
			},
		},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("status tree:\n got %#v\nwant %#v", got, want)
	}

	// Root password: spec, else template metadata, else the default.
	vm := s.VM("vm0")
	tests := []struct {
		spec, meta, want string
	}{
		{"s", "m", "s"},
		{"", "m", "m"},
		{"", "", "dflt"},
	}
	for _, tt := range tests {
		vm.RootPassword = tt.spec
		vm.Disks[0].Metadata = map[string]any{"root-password": tt.meta}
		if tt.meta == "" {
			vm.Disks[0].Metadata = nil
		}
		tree, err := StatusTree(p, s, nil, StatusOptions{DefaultRootPassword: "dflt"})
		if err != nil {
			t.Fatal(err)
		}
		v := tree["Prefix"].(map[string]any)["VMs"].(map[string]any)["vm0"].(map[string]any)
		if v["root password"] != tt.want || v["status"] != "unknown" || v["snapshots"] != "" {
			t.Errorf("spec %q meta %q: %v", tt.spec, tt.meta, v)
		}
	}
}
