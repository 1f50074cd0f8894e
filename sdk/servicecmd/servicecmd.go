// Package servicecmd builds an sdk.ServiceManager out of guest commands: a
// probe that says whether the manager exists in the guest, and argv builders
// for status, start and stop. The first-party systemd and sysvinit plugins
// are two tables for it; a third party can add another init system the same
// way without writing any gRPC or ssh code.
package servicecmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/lago-go/lago/sdk"
)

// Service states reported by State.
const (
	StateActive   = "active"
	StateInactive = "inactive"
	StateMissing  = "missing"
	StateUnknown  = "unknown"
)

// Spec describes one init system.
type Spec struct {
	// Name is used in error messages ("systemd").
	Name string
	// Probe runs in the guest; exit code 0 means the init system is there.
	Probe []string
	// Status, Start and Stop return the argv for a service.
	Status func(service string) []string
	Start  func(service string) []string
	Stop   func(service string) []string
	// Classify maps the status command's exit code and combined output to
	// a state.
	Classify func(exitCode int, output string) string
}

// Manager implements sdk.ServiceManager (and sdk.Configurer) over Spec.
type Manager struct {
	Spec Spec
	host sdk.Host
}

// New returns a Manager for spec.
func New(spec Spec) *Manager { return &Manager{Spec: spec} }

// errNoHost is returned when the core offered no Host service: a service
// manager cannot reach a guest without it.
var errNoHost = errors.New("the core offered no host service to run guest commands")

// Configure keeps the core's Host for later calls.
func (m *Manager) Configure(_ context.Context, _ map[string]string, host sdk.Host) error {
	m.host = host
	return nil
}

func (m *Manager) run(ctx context.Context, vm string, argv []string) (int, string, error) {
	if m.host == nil {
		return 0, "", errNoHost
	}
	var out bytes.Buffer
	code, err := m.host.Exec(ctx, vm, argv, nil, &out, &out)
	if err != nil {
		return 0, "", fmt.Errorf("%s: run %q on %s: %w", m.Spec.Name, strings.Join(argv, " "), vm, err)
	}
	return code, out.String(), nil
}

// Supported reports whether the probe succeeds in vm.
func (m *Manager) Supported(ctx context.Context, vm string) (bool, error) {
	code, _, err := m.run(ctx, vm, m.Spec.Probe)
	if err != nil {
		return false, err
	}
	return code == 0, nil
}

// State returns the service's state in vm.
func (m *Manager) State(ctx context.Context, vm, service string) (string, error) {
	if err := checkName(service); err != nil {
		return "", err
	}
	code, out, err := m.run(ctx, vm, m.Spec.Status(service))
	if err != nil {
		return "", err
	}
	return m.Spec.Classify(code, out), nil
}

// Start starts service in vm.
func (m *Manager) Start(ctx context.Context, vm, service string) error {
	return m.act(ctx, vm, service, "start", m.Spec.Start)
}

// Stop stops service in vm.
func (m *Manager) Stop(ctx context.Context, vm, service string) error {
	return m.act(ctx, vm, service, "stop", m.Spec.Stop)
}

func (m *Manager) act(ctx context.Context, vm, service, verb string, argv func(string) []string) error {
	if err := checkName(service); err != nil {
		return err
	}
	code, out, err := m.run(ctx, vm, argv(service))
	if err != nil {
		return err
	}
	if code != 0 {
		return sdk.Diagnostics{{
			Severity: sdk.SeverityError,
			Summary:  fmt.Sprintf("%s: %s %s on %s failed with status %d", m.Spec.Name, verb, service, vm, code),
			Detail:   strings.TrimSpace(out),
		}}
	}
	return nil
}

// checkName refuses service names that would be read as options by the
// guest's tools; argv is quoted by the core, so no shell escaping is needed.
func checkName(service string) error {
	if service == "" || strings.HasPrefix(service, "-") {
		return sdk.Diagnostics{{Severity: sdk.SeverityError, Summary: fmt.Sprintf("invalid service name %q", service)}}
	}
	return nil
}
