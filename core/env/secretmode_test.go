package env

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lago-go/lago/core/prefix"
)

// TestLoadMakesOldVMSpecsPrivate: a prefix written by an earlier version
// holds each VM's passwords in a 0644 virt/vm-* file; loading it (any verb)
// makes them 0600.
func TestLoadMakesOldVMSpecsPrivate(t *testing.T) {
	f := newFixture(t) // writes virt/vm-* 0644, as earlier versions did
	if _, err := f.m.Load(f.prefix); err != nil {
		t.Fatal(err)
	}
	for _, vm := range []string{"vm0", "vm1", "vm2"} {
		fi, err := os.Stat(filepath.Join(f.prefix, dirVirt, "vm-"+vm))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != prefix.SecretMode {
			t.Errorf("virt/vm-%s is %v after Load, want %v", vm, got, prefix.SecretMode)
		}
	}
}
