package env

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/sdk"
)

// fakeService is a service manager that supports the VMs in supports and
// keeps services' states in a map.
type fakeService struct {
	mu       sync.Mutex
	supports map[string]bool
	states   map[string]string // vm/service -> state
	checks   int
}

func (f *fakeService) Supported(_ context.Context, vm string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks++
	return f.supports[vm], nil
}

func (f *fakeService) State(_ context.Context, vm, service string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st, ok := f.states[vm+"/"+service]; ok {
		return st, nil
	}
	return ServiceMissing, nil
}

func (f *fakeService) Start(_ context.Context, vm, service string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states[vm+"/"+service] = ServiceActive
	return nil
}

func (f *fakeService) Stop(_ context.Context, vm, service string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states[vm+"/"+service] = ServiceInactive
	return nil
}

type fakeServices map[string]*fakeService

func (f fakeServices) Names() ([]string, error) { return []string{"systemd", "sysvinit"}, nil }

func (f fakeServices) Get(_ context.Context, name string) (sdk.ServiceManager, error) {
	s, ok := f[name]
	if !ok {
		return nil, errors.New("not installed")
	}
	return s, nil
}

// TestServiceManagerDetectedOnceAndRecorded: the first manager whose check
// passes serves the VM and is written into its spec, so the next call
// asks no check; start/stop/state go through it.
func TestServiceManagerDetectedOnceAndRecorded(t *testing.T) {
	f := newFixture(t)
	sysd := &fakeService{supports: map[string]bool{}, states: map[string]string{}}
	sysv := &fakeService{supports: map[string]bool{"vm0": true}, states: map[string]string{}}
	m := f.manager(Options{})
	m.deps.Services = fakeServices{"systemd": sysd, "sysvinit": sysv}
	ctx := context.Background()

	name, _, err := m.ServiceManagerOf(ctx, f.prefix, "vm0")
	if err != nil || name != "sysvinit" {
		t.Fatalf("ServiceManagerOf = %q, %v; want sysvinit", name, err)
	}
	e, err := m.Load(f.prefix)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.VM("vm0").ServiceProvider; got != "sysvinit" {
		t.Fatalf("recorded service_provider = %q", got)
	}
	checks := sysd.checks + sysv.checks
	if st, err := m.ServiceState(ctx, f.prefix, "vm0", "sshd"); err != nil || st != ServiceMissing {
		t.Fatalf("state = %q %v", st, err)
	}
	if err := m.ServiceAction(ctx, f.prefix, "vm0", "sshd", true); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.ServiceState(ctx, f.prefix, "vm0", "sshd"); st != ServiceActive {
		t.Fatalf("after start: %q", st)
	}
	if err := m.ServiceAction(ctx, f.prefix, "vm0", "sshd", false); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.ServiceState(ctx, f.prefix, "vm0", "sshd"); st != ServiceInactive {
		t.Fatalf("after stop: %q", st)
	}
	if n := sysd.checks + sysv.checks; n != checks {
		t.Fatalf("%d more Supported checks after detection, want none", n-checks)
	}
}

func TestServiceManagerErrors(t *testing.T) {
	f := newFixture(t)
	m := f.manager(Options{})
	m.deps.Services = fakeServices{"systemd": {supports: map[string]bool{}, states: map[string]string{}}}
	_, _, err := m.ServiceManagerOf(context.Background(), f.prefix, "vm1")
	if !errors.Is(err, ErrNoServiceManager) || !errs.IsUser(err) {
		t.Fatalf("err = %v, want a user error wrapping ErrNoServiceManager", err)
	}
	if _, err := m.ServiceState(context.Background(), f.prefix, "vm1", ""); err == nil || !errs.IsUser(err) {
		t.Fatalf("empty service name: %v", err)
	}
	if _, err := m.ServiceState(context.Background(), f.prefix, "nope", "sshd"); err == nil || !errs.IsUser(err) {
		t.Fatalf("unknown vm: %v", err)
	}
}
