package env

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/prefix"
	"github.com/lago-go/lago/core/spec"
	"github.com/lago-go/lago/sdk"
)

// Services finds the service-manager components (systemd, sysvinit, ...)
// the plugins serve.
type Services interface {
	// Names lists the service managers in the order detection tries
	// them.
	Names() ([]string, error)
	// Get starts (once) and returns the service manager called name.
	Get(ctx context.Context, name string) (sdk.ServiceManager, error)
}

// Service states, as service-manager plugins report them.
const (
	ServiceActive   = "active"
	ServiceInactive = "inactive"
	ServiceMissing  = "missing"
	ServiceUnknown  = "unknown"
)

// ErrNoServiceManager is wrapped when no service manager supports a VM.
var ErrNoServiceManager = errors.New("no service manager supports the vm")

// serviceMu serializes the detection that writes a VM's spec.
var serviceMu sync.Mutex

// ServiceManagerOf returns the service manager of vm: the spec's
// service_provider, else the first whose Supported check passes, which is
// then recorded in the VM's spec so it is detected once.
func (m *Manager) ServiceManagerOf(ctx context.Context, prefixPath, vm string) (string, sdk.ServiceManager, error) {
	if m.deps.Services == nil {
		return "", nil, errors.New("service: no service managers configured")
	}
	e, err := m.Load(prefixPath)
	if err != nil {
		return "", nil, err
	}
	v, err := findVM(e, vm)
	if err != nil {
		return "", nil, err
	}
	if name := v.ServiceProvider; name != "" {
		sm, err := m.deps.Services.Get(ctx, name)
		if err != nil {
			return "", nil, fmt.Errorf("vm %s: service manager %q: %w", v.Name, name, err)
		}
		return name, sm, nil
	}
	names, err := m.deps.Services.Names()
	if err != nil {
		return "", nil, err
	}
	var tried []string
	for _, name := range names {
		sm, err := m.deps.Services.Get(ctx, name)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s (%v)", name, err))
			continue
		}
		ok, err := sm.Supported(ctx, v.Name)
		if err != nil {
			if ctx.Err() != nil {
				return "", nil, ctx.Err()
			}
			tried = append(tried, fmt.Sprintf("%s (%v)", name, err))
			continue
		}
		if !ok {
			tried = append(tried, name+" (not in this guest)")
			continue
		}
		if err := m.recordServiceManager(prefixPath, v.Name, name); err != nil {
			return "", nil, err
		}
		return name, sm, nil
	}
	if len(tried) == 0 {
		tried = []string{"no service-manager plugin installed"}
	}
	return "", nil, errs.User(fmt.Errorf("vm %s: %w: tried %s; set service_provider in the init file", v.Name, ErrNoServiceManager, strings.Join(tried, ", ")))
}

// recordServiceManager writes the detected manager into vm's spec.
func (m *Manager) recordServiceManager(prefixPath, vm, name string) error {
	serviceMu.Lock()
	defer serviceMu.Unlock()
	e, err := m.Load(prefixPath)
	if err != nil {
		return err
	}
	v := e.VM(vm)
	if v == nil {
		return nil
	}
	v.ServiceProvider = name
	if err := saveSpecs(&prefix.Prefix{Path: e.Path}, e); err != nil {
		return fmt.Errorf("record the service manager of vm %s: %w", vm, err)
	}
	return nil
}

// ServiceState reports a service's state in vm: ServiceActive,
// ServiceInactive, ServiceMissing or ServiceUnknown.
func (m *Manager) ServiceState(ctx context.Context, prefixPath, vm, service string) (string, error) {
	v, sm, err := m.serviceOn(ctx, prefixPath, vm, service)
	if err != nil {
		return "", err
	}
	st, err := sm.State(ctx, v.Name, service)
	if err != nil {
		return "", fmt.Errorf("vm %s: state of service %s: %w", v.Name, service, err)
	}
	return st, nil
}

// ServiceAction starts (start true) or stops a service in vm.
func (m *Manager) ServiceAction(ctx context.Context, prefixPath, vm, service string, start bool) error {
	v, sm, err := m.serviceOn(ctx, prefixPath, vm, service)
	if err != nil {
		return err
	}
	verb, do := "stop", sm.Stop
	if start {
		verb, do = "start", sm.Start
	}
	if err := do(ctx, v.Name, service); err != nil {
		return fmt.Errorf("vm %s: %s service %s: %w", v.Name, verb, service, err)
	}
	return nil
}

func (m *Manager) serviceOn(ctx context.Context, prefixPath, vm, service string) (*spec.VM, sdk.ServiceManager, error) {
	if strings.TrimSpace(service) == "" {
		return nil, nil, userErrorf("service: no service name")
	}
	e, err := m.Load(prefixPath)
	if err != nil {
		return nil, nil, err
	}
	v, err := findVM(e, vm)
	if err != nil {
		return nil, nil, err
	}
	_, sm, err := m.ServiceManagerOf(ctx, prefixPath, v.Name)
	if err != nil {
		return nil, nil, err
	}
	return v, sm, nil
}
