package lago

import (
	"context"
	"sort"

	"github.com/lago-go/lago/core/env"
	"github.com/lago-go/lago/core/pluginhost"
	"github.com/lago-go/lago/sdk"
)

// Service states ServiceState reports.
const (
	ServiceActive   = env.ServiceActive
	ServiceInactive = env.ServiceInactive
	ServiceMissing  = env.ServiceMissing
	ServiceUnknown  = env.ServiceUnknown
)

// ErrNoServiceManager: no service-manager plugin supports the VM's guest
// (set service_provider in the init file, or install one).
var ErrNoServiceManager = env.ErrNoServiceManager

// ServiceState is the state of service in the VM (ServiceActive,
// ServiceInactive, ServiceMissing, ServiceUnknown), asked through its
// service manager: the spec's service_provider, else the first plugin
// whose check passes, recorded in the spec.
func (v *VM) ServiceState(ctx context.Context, service string) (string, error) {
	var st string
	err := v.env.c.onPrefix(v.env.path, func() error {
		var err error
		st, err = v.env.c.mgr.ServiceState(ctx, v.env.path, v.Name, service)
		return err
	})
	return st, err
}

// StartService starts service in the VM.
func (v *VM) StartService(ctx context.Context, service string) error {
	return v.env.c.onPrefix(v.env.path, func() error {
		return v.env.c.mgr.ServiceAction(ctx, v.env.path, v.Name, service, true)
	})
}

// StopService stops service in the VM.
func (v *VM) StopService(ctx context.Context, service string) error {
	return v.env.c.onPrefix(v.env.path, func() error {
		return v.env.c.mgr.ServiceAction(ctx, v.env.path, v.Name, service, false)
	})
}

// onPrefix runs f with the plugins' calls back into the core (a service
// manager running its commands in the guest) acting on the prefix path.
// Such calls name only the VM, so they are serialized per Client.
func (c *Client) onPrefix(path string, f func() error) error {
	if err := c.check(); err != nil {
		return err
	}
	c.callbackMu.Lock()
	defer c.callbackMu.Unlock()
	c.mu.Lock()
	c.callback = path
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.callback = ""
		c.mu.Unlock()
	}()
	return f()
}

// pluginServices implements env.Services with the plugins' service
// components: systemd is tried first (as the original did), then the
// others by name.
type pluginServices struct{ host *pluginhost.Host }

func (p pluginServices) Names() ([]string, error) {
	comps, err := p.host.Components(sdk.KindService)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(comps))
	for _, c := range comps {
		names = append(names, c.Name)
	}
	sort.SliceStable(names, func(i, j int) bool {
		if (names[i] == "systemd") != (names[j] == "systemd") {
			return names[i] == "systemd"
		}
		return names[i] < names[j]
	})
	return names, nil
}

func (p pluginServices) Get(ctx context.Context, name string) (sdk.ServiceManager, error) {
	return p.host.Service(ctx, name, nil)
}
