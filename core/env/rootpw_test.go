package env

import (
	"context"
	"testing"
)

// TestRootPassword: bootstrap sets the spec's root-password, else the
// configured default, never the template's (the original's rule: its
// users log into bootstrapped VMs with 123456); status and ssh then use
// the password the VM really has. A VM not bootstrapped keeps its
// template's password, which status shows and ssh tries.
func TestRootPassword(t *testing.T) {
	tests := []struct {
		name          string
		skipBootstrap bool
		// want is the password of each VM: bootstrap's (when it runs),
		// status's and ssh's.
		want map[string]string
	}{
		{"bootstrapped", false, map[string]string{"vm0": DefaultSSHPassword, "vm1": "secret"}},
		{"not bootstrapped", true, map[string]string{"vm0": "fromtemplate", "vm1": "secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newInitFixture(t)
			o := f.opts()
			o.SkipBootstrap = tt.skipBootstrap
			if _, err := f.m.Init(context.Background(), o); err != nil {
				t.Fatalf("Init: %v", err)
			}
			if !tt.skipBootstrap {
				if len(f.boot.reqs) != len(tt.want) {
					t.Fatalf("bootstrap requests = %+v", f.boot.reqs)
				}
				for _, r := range f.boot.reqs {
					if r.RootPassword != tt.want[r.VM] {
						t.Errorf("bootstrap of %s sets root password %q, want %q", r.VM, r.RootPassword, tt.want[r.VM])
					}
				}
			}
			doc, err := f.m.StatusDocument(context.Background(), f.prefix())
			if err != nil {
				t.Fatal(err)
			}
			vms := doc["Prefix"].(map[string]any)["VMs"].(map[string]any)
			e, err := f.m.Load(f.prefix())
			if err != nil {
				t.Fatal(err)
			}
			for vm, want := range tt.want {
				if got := vms[vm].(map[string]any)["root password"]; got != want {
					t.Errorf("status of %s shows root password %v, want %q", vm, got, want)
				}
				target, err := f.m.Target(e, vm)
				if err != nil {
					t.Fatal(err)
				}
				if target.Password != want {
					t.Errorf("ssh to %s tries password %q, want %q", vm, target.Password, want)
				}
			}
		})
	}
}
