// Package pluginhost finds lago plugin binaries on disk, caches their
// describe output, starts them lazily over go-plugin and always reaps them.
//
// API CONTRACT (stub written first so the CLI can be built against it; the
// bodies are filled in by the plugin-host work).
package pluginhost

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lago-go/lago/sdk"
)

// Info is one plugin binary found during discovery.
type Info struct {
	Name    string    `json:"name"` // without the lago-plugin- prefix
	Path    string    `json:"path"`
	Version string    `json:"version"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mtime"`
	// Components from the binary's describe output.
	Components []sdk.ComponentInfo `json:"components"`
	// Shadowed is set when an earlier folder holds a plugin of the same name.
	Shadowed   bool   `json:"shadowed,omitempty"`
	ShadowedBy string `json:"shadowed_by,omitempty"`
	// Refused is set for world-writable binaries, pin mismatches and binaries
	// whose describe failed; Reason says why.
	Refused bool   `json:"refused,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// Options configure a Manager.
type Options struct {
	// SearchPath overrides the discovery folders (DefaultSearchPath).
	SearchPath []string
	// Pins maps a plugin name to the sha256 (hex) its binary must have.
	Pins map[string]string
	// CacheFile stores describe results keyed by path, size and mtime.
	CacheFile string
	Logger    hclog.Logger
	// Host is served to plugins that call back into the core; may be nil.
	Host sdk.Host
}

// ErrNotFound is returned (wrapped) when no plugin serves a component.
var ErrNotFound = errors.New("plugin component not found")

// DefaultSearchPath returns the discovery folders in order: each folder of
// $LAGO_PLUGIN_PATH, <dir of exe>/../libexec/lago/plugins,
// $XDG_DATA_HOME/lago/plugins, /usr/local/libexec/lago/plugins,
// /usr/libexec/lago/plugins.
func DefaultSearchPath(exe string) []string { panic("TODO") }

// Manager discovers plugins and owns the processes it starts.
type Manager struct{ opts Options }

// New returns a Manager; nothing is scanned or started until needed.
func New(opts Options) *Manager { return &Manager{opts: opts} }

// Discover lists every plugin binary, including shadowed and refused ones,
// starting no plugin process when the describe cache is fresh.
func (m *Manager) Discover() ([]Info, error) { return nil, errors.New("TODO") }

// Components lists the usable components of the given kind ("" for all).
func (m *Manager) Components(kind string) ([]sdk.ComponentInfo, error) {
	return nil, errors.New("TODO")
}

// Provider starts (once) the plugin serving the provider component name,
// configures it with config and returns a client for it.
func (m *Manager) Provider(ctx context.Context, name string, config map[string]string) (sdk.Provider, error) {
	return nil, errors.New("TODO")
}

// Output returns the output format component name.
func (m *Manager) Output(ctx context.Context, name string) (sdk.OutputFormat, error) {
	return nil, errors.New("TODO")
}

// VMType returns the vm type component name.
func (m *Manager) VMType(ctx context.Context, name string, config map[string]string) (sdk.VMType, error) {
	return nil, errors.New("TODO")
}

// Service returns the service manager component name.
func (m *Manager) Service(ctx context.Context, name string, config map[string]string) (sdk.ServiceManager, error) {
	return nil, errors.New("TODO")
}

// Builder returns the builder component name.
func (m *Manager) Builder(ctx context.Context, name string, config map[string]string) (sdk.Builder, error) {
	return nil, errors.New("TODO")
}

// Command returns the command component that declares verb.
func (m *Manager) Command(ctx context.Context, verb string) (sdk.Command, error) {
	return nil, errors.New("TODO")
}

// Close kills every plugin process this Manager started. Safe to call twice.
func (m *Manager) Close() {}
