package prefix

import (
	"os"
	"path/filepath"
	"testing"
)

func TestTightenSecret(t *testing.T) {
	tests := []struct {
		name        string
		mode        os.FileMode
		wantChanged bool
	}{
		{"world readable", 0o644, true},
		{"group readable", 0o640, true},
		{"already private", 0o600, false},
		{"read only private", 0o400, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "vm-vm0")
			if err := os.WriteFile(p, []byte(`{"root-password":"x"}`), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tt.mode); err != nil {
				t.Fatal(err)
			}
			changed, err := TightenSecret(p)
			if err != nil {
				t.Fatal(err)
			}
			if changed != tt.wantChanged {
				t.Fatalf("changed = %v, want %v", changed, tt.wantChanged)
			}
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm()&0o077 != 0 {
				t.Fatalf("mode %v after TightenSecret: others may read it", fi.Mode().Perm())
			}
		})
	}
}

// TestLoadRepairsSecretModesOfAnOldPrefix loads a prefix in the original's
// layout, whose VM spec (with its passwords) is 0644: Load leaves it 0600.
func TestLoadRepairsSecretModesOfAnOldPrefix(t *testing.T) {
	project, deep := originalWorkdir(t)
	vm := filepath.Join(project, ".lago", "default", "virt", "vm-vm0")
	if err := os.Chmod(vm, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Find(FindOptions{Cwd: deep})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Load(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(vm)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != SecretMode {
		t.Fatalf("virt/vm-vm0 is %v after Load, want %v", got, SecretMode)
	}
}
