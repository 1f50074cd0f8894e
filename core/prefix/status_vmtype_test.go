package prefix

import (
	"reflect"
	"testing"

	"github.com/lago-go/lago/core/spec"
)

// TestStatusVMTypeFields: a vm type's status fields show under the VM in
// the document, never over a field lago itself shows; a VM without
// fields shows exactly what it showed before (the goldens).
func TestStatusVMTypeFields(t *testing.T) {
	specs := &Specs{VMs: []spec.VM{{Name: "vm0"}, {Name: "vm1"}}}
	tests := []struct {
		name   string
		fields map[string]map[string]string
		vm     string
		want   map[string]any // keys beyond lago's own, with values
		status string
	}{
		{"none", nil, "vm0", map[string]any{}, "running"},
		{"added", map[string]map[string]string{"vm0": {"engine version": "4.4", "url": "https://x"}}, "vm0",
			map[string]any{"engine version": "4.4", "url": "https://x"}, "running"},
		{"other vm untouched", map[string]map[string]string{"vm0": {"a": "b"}}, "vm1", map[string]any{}, "running"},
		{"lago's own field wins", map[string]map[string]string{"vm0": {"status": "great", "x": "y"}}, "vm0",
			map[string]any{"x": "y"}, "running"},
	}
	own := map[string]bool{"NICs": true, "distro": true, "root password": true, "status": true, "metadata": true, "snapshots": true}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live := StateMaps{VMs: map[string]string{"vm0": "running", "vm1": "running"}, Fields: tt.fields}
			st, err := BuildStatus(fixturePrefix(t), specs, live, StatusOptions{})
			if err != nil {
				t.Fatal(err)
			}
			vms := st.Document()["Prefix"].(map[string]any)["VMs"].(map[string]any)
			vm := vms[tt.vm].(map[string]any)
			extra := map[string]any{}
			for k, x := range vm {
				if !own[k] {
					extra[k] = x
				}
			}
			if !reflect.DeepEqual(extra, tt.want) {
				t.Errorf("extra fields = %v, want %v", extra, tt.want)
			}
			if vm["status"] != tt.status {
				t.Errorf("status = %v, want %v", vm["status"], tt.status)
			}
		})
	}
}
