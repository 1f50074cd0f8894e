package prefix

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/lago-go/lago/core/spec"
)

// writeVirt writes virt/ files of p as given (name to content).
func writeVirt(t *testing.T, p *Prefix, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(p.VirtDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(p.VirtPath(name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLoadDefaults: what a stored spec leaves out gets the one set of
// defaults, through Load and LoadPartial alike: a net without a type is
// nat, a spec without a name gets its file's.
func TestLoadDefaults(t *testing.T) {
	tests := []struct {
		name     string
		net      string
		wantType string
	}{
		{"no type", `{"name": "n0", "gw": "192.0.2.1"}`, spec.NetNAT},
		{"empty type", `{"name": "n0", "type": ""}`, spec.NetNAT},
		{"no name", `{"type": "nat"}`, spec.NetNAT},
		{"bridge", `{"name": "n0", "type": "bridge"}`, spec.NetBridge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Prefix{Path: t.TempDir()}
			writeVirt(t, p, map[string]string{
				EnvFile:  `{"nets": ["n0"], "vms": ["vm0"]}`,
				"net-n0": tt.net,
				"vm-vm0": `{"memory": 512, "nics": [{"net": "n0"}]}`,
			})
			for name, load := range map[string]func() (*Specs, error){"Load": p.Load, "LoadPartial": p.LoadPartial} {
				s, err := load()
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if n := s.Net("n0"); n == nil || n.Type != tt.wantType {
					t.Errorf("%s: net n0 = %+v, want type %q", name, n, tt.wantType)
				}
				if v := s.VM("vm0"); v == nil || v.Memory != 512 {
					t.Errorf("%s: vm0 = %+v", name, v)
				}
			}
		})
	}
}

// TestLoadPartial: a half-made prefix gives what it holds and an error
// naming each file it lacks; Load fails on it.
func TestLoadPartial(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string]string
		nets, vms int
		wantErr   []string
	}{
		{"complete", map[string]string{EnvFile: `{"nets": ["n0"], "vms": ["vm0"]}`, "net-n0": `{}`, "vm-vm0": `{}`}, 1, 1, nil},
		{"no virt/env", map[string]string{"net-n0": `{}`}, 0, 0, []string{"virt/env"}},
		{"a spec missing", map[string]string{EnvFile: `{"nets": ["n0", "n1"], "vms": ["vm0", "vm1"]}`, "net-n0": `{}`, "vm-vm1": `{}`}, 1, 1, []string{"virt/net-n1", "virt/vm-vm0"}},
		{"a spec broken", map[string]string{EnvFile: `{"nets": ["n0"], "vms": ["vm0"]}`, "net-n0": `{`, "vm-vm0": `{}`}, 0, 1, []string{"decode", "virt/net-n0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Prefix{Path: t.TempDir()}
			writeVirt(t, p, tt.files)
			s, err := p.LoadPartial()
			if s == nil || len(s.Nets) != tt.nets || len(s.VMs) != tt.vms {
				t.Fatalf("LoadPartial = %+v", s)
			}
			for _, w := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("LoadPartial error %v does not name %q", err, w)
				}
			}
			if tt.wantErr == nil && err != nil {
				t.Errorf("LoadPartial: %v", err)
			}
			if _, lerr := p.Load(); (lerr != nil) != (tt.wantErr != nil) {
				t.Errorf("Load error %v, LoadPartial's %v", lerr, err)
			}
			if tt.name == "a spec missing" && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %v is not fs.ErrNotExist", err)
			}
		})
	}
}
