package env

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lago-go/lago/core/spec"
)

// TestLoadNetWithoutType: a stored net spec without a type (the
// original's older layout) loads as nat through every loader of env, as
// through core/prefix: Load, the lenient load destroy and cleanup use,
// and the status report.
func TestLoadNetWithoutType(t *testing.T) {
	f := newFixture(t)
	path := filepath.Join(f.prefix, dirVirt, "net-n1")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	untyped := strings.Replace(string(raw), `"type": "nat",`, "", 1)
	if untyped == string(raw) {
		t.Fatalf("fixture net spec has no type to remove: %s", raw)
	}
	mustWrite(t, path, untyped)

	loaders := []struct {
		name string
		load func() (*Environment, error)
	}{
		{"Load", func() (*Environment, error) { return f.m.Load(f.prefix) }},
		{"loadLenient", func() (*Environment, error) { return loadLenient(f.prefix) }},
	}
	for _, l := range loaders {
		t.Run(l.name, func(t *testing.T) {
			e, err := l.load()
			if err != nil {
				t.Fatal(err)
			}
			if n := e.Net("n1"); n == nil || n.Type != spec.NetNAT {
				t.Errorf("net n1 = %+v, want type nat", n)
			}
		})
	}
	st, err := f.m.StatusReport(context.Background(), f.prefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st.Nets {
		if n.Name == "n1" && (n.Type != spec.NetNAT || n.Subnet != "192.168.201.0/24" || n.Gateway != "192.168.201.1") {
			t.Errorf("status of n1 = %+v", n)
		}
	}
}

// TestLoadIncompleteSaysWhy: a prefix whose specs are incomplete fails to
// load with the file it lacks named.
func TestLoadIncompleteSaysWhy(t *testing.T) {
	f := newFixture(t)
	if err := os.Remove(filepath.Join(f.prefix, dirVirt, "vm-vm1")); err != nil {
		t.Fatal(err)
	}
	_, err := f.m.Load(f.prefix)
	if err == nil || !strings.Contains(err.Error(), "incomplete") || !strings.Contains(err.Error(), "vm-vm1") {
		t.Errorf("Load = %v, want an incomplete-specs error naming vm-vm1", err)
	}
	e, err := loadLenient(f.prefix)
	if err != nil || e.Complete || len(e.VMs) != 2 || len(e.Nets) != 2 {
		t.Errorf("loadLenient = %+v, %v", e, err)
	}
}
