package lago

import (
	"context"

	"github.com/lago-go/lago/core/env"
	"github.com/lago-go/lago/core/pluginhost"
	"github.com/lago-go/lago/sdk"
)

// ErrUnknownVMType: a VM names a vm-type no plugin serves (and that is
// not the built-in "default"); Init refuses such an init file.
var ErrUnknownVMType = env.ErrUnknownVMType

// pluginVMTypes implements env.VMTypes with the plugins' vm-type
// components.
type pluginVMTypes struct{ host *pluginhost.Host }

func (p pluginVMTypes) Names() ([]string, error) {
	comps, err := p.host.Components(sdk.KindVMType)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(comps))
	for _, c := range comps {
		names = append(names, c.Name)
	}
	return names, nil
}

func (p pluginVMTypes) Get(ctx context.Context, name string) (sdk.VMType, error) {
	return p.host.VMType(ctx, name, nil)
}

// withVMTypeHooks runs f, a verb that may call vm-type hooks of the
// environment's VMs, with the plugins' calls back into the core (a hook
// running a command in the guest) acting on this environment. Without
// such a VM it runs f as is, so verbs of different environments of one
// Client do not wait for each other.
func (e *Env) withVMTypeHooks(f func() error) error {
	if err := e.c.check(); err != nil {
		return err
	}
	hooks, err := e.c.mgr.HasVMTypeHooks(e.path)
	if err != nil || !hooks {
		// A prefix that does not load fails in f with its own error.
		return f()
	}
	return e.c.onPrefix(e.path, f)
}
