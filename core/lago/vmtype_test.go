package lago

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/lago-go/lago/core/config"
	"github.com/lago-go/lago/core/env"
	"github.com/lago-go/lago/core/prefix"
	"github.com/lago-go/lago/core/spec"
	"github.com/lago-go/lago/sdk"
)

type servedTypes []string

func (s servedTypes) Names() ([]string, error) { return s, nil }
func (s servedTypes) Get(context.Context, string) (sdk.VMType, error) {
	return nil, errors.New("not used")
}

// TestWithVMTypeHooksPointsCallbacks: while a verb may call a vm type's
// hooks (a VM has a served type), plugins calling back into the core act
// on that verb's environment, not on the Client's current one; without
// such a VM the verb does not take the callback lock at all.
func TestWithVMTypeHooksPointsCallbacks(t *testing.T) {
	tests := []struct {
		name   string
		vmType string
		served servedTypes
		typed  bool
	}{
		{"served type", "probe", servedTypes{"probe"}, true},
		{"built-in type", "", servedTypes{"probe"}, false},
		{"no plugins", "", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Load(config.Options{})
			if err != nil {
				t.Fatal(err)
			}
			c, err := New(Options{Config: cfg, PluginCacheFile: "-", PluginSearchPath: []string{}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			p, err := prefix.Create(filepath.Join(t.TempDir(), "default"), prefix.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			vm := spec.VM{Name: "vm0", Memory: 256, VMType: tt.vmType}
			if err := p.Save(&prefix.Specs{VMs: []spec.VM{vm}}); err != nil {
				t.Fatal(err)
			}
			if err := p.MarkInitialized(); err != nil {
				t.Fatal(err)
			}
			deps := c.deps
			deps.VMTypes = tt.served
			c.mgr = env.New(c.eopts, deps)
			c.setCurrent("/some/other/prefix")
			e := &Env{c: c, path: p.Path}
			var during string
			if err := e.withVMTypeHooks(func() error {
				during, err = c.currentPrefix()
				return err
			}); err != nil {
				t.Fatal(err)
			}
			want := "/some/other/prefix"
			if tt.typed {
				want = p.Path
			}
			if during != want {
				t.Errorf("callbacks act on %q during the verb, want %q", during, want)
			}
		})
	}
}
