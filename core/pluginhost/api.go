// Package pluginhost finds lago plugin binaries on disk, caches their
// describe output, starts them lazily over go-plugin and always reaps them.
//
// Discovery and the describe cache live in the light package
// pluginhost/discovery (no gRPC, no go-plugin); this package adds the
// process and RPC side.
package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/lago-go/lago/core/pluginhost/discovery"
	"github.com/lago-go/lago/core/pluginhost/prestart"
	"github.com/lago-go/lago/sdk"
)

// Info is one plugin binary found during discovery.
type Info = discovery.Info

// Options configure a Host.
type Options struct {
	// SearchPath overrides the discovery folders (DefaultSearchPath).
	SearchPath []string
	// Pins maps a plugin name to the sha256 (hex) its binary must have;
	// checked at discovery and again, on the file that runs, when the
	// binary starts. A pinned plugin is never reattached
	// (ErrReattachPinned).
	Pins map[string]string
	// CacheFile stores describe results keyed by path, size and mtime
	// (default discovery.DefaultCacheFile(); "-" disables the cache).
	CacheFile string
	// Logger receives the host's own messages (discovery warnings,
	// refused plugins). Nil discards them.
	Logger hclog.Logger
	// PluginLog receives the plugins' own log lines (what they write to
	// stderr, re-emitted at their level under the binary's name) and
	// go-plugin's notes on their processes. They are for a log file, not
	// the terminal: what a plugin wants the user to see it returns as a
	// warning (OnWarning), and a plugin that fails is reported with the
	// tail of its stderr (PluginError). Nil sends them to Logger.
	PluginLog hclog.Logger
	// Host is served to plugins that call back into the core; may be nil.
	Host sdk.Host
	// OnWarning receives the warnings plugins return with their answers,
	// each distinct one once; nil logs them to Logger.
	OnWarning func(plugin string, d sdk.Diagnostic)
	// Prestarted is a plugin process the front-end (bin/lago) started
	// before it exec'd the engine (prestart.Take). The first process of
	// that binary uses it instead of starting one; Close kills it if
	// nothing did.
	Prestarted *prestart.Process
}

// ErrNotFound is returned (wrapped) when no plugin serves a component.
var ErrNotFound = errors.New("plugin component not found")

// ErrClosed is returned when a plugin is needed after Close.
var ErrClosed = errors.New("plugin manager closed")

// DefaultSearchPath returns the discovery folders in order: each folder of
// $LAGO_PLUGIN_PATH, <dir of exe>/../libexec/lago/plugins,
// $XDG_DATA_HOME/lago/plugins, /usr/local/libexec/lago/plugins,
// /usr/libexec/lago/plugins.
func DefaultSearchPath(exe string) []string { return discovery.DefaultSearchPath(exe) }

// Host discovers plugins and owns the processes it starts. It is safe
// for concurrent use.
type Host struct {
	opts Options

	discoverOnce sync.Once
	infos        []Info
	discoverErr  error

	mu      sync.Mutex
	closed  bool
	procs   map[string]*process // by plugin name
	clients map[string]any      // configured component clients by kind/name/config
	// configured maps process slot + component to the settings it holds.
	configured map[string]string
	// prestarted is Options.Prestarted until a process adopts it.
	prestarted *prestart.Process
	// warned holds the warnings handed to OnWarning (see clientOptions).
	warned map[string]bool
}

// New returns a Host; nothing is scanned or started until needed.
func New(opts Options) *Host {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.PluginLog == nil {
		opts.PluginLog = opts.Logger
	}
	if opts.SearchPath == nil {
		exe, _ := os.Executable()
		opts.SearchPath = DefaultSearchPath(exe)
	}
	switch opts.CacheFile {
	case "":
		opts.CacheFile = discovery.DefaultCacheFile()
	case "-":
		opts.CacheFile = ""
	}
	return &Host{opts: opts, procs: map[string]*process{}, clients: map[string]any{}, configured: map[string]string{}, prestarted: opts.Prestarted, warned: map[string]bool{}}
}

// Discover lists every plugin binary, including shadowed and refused ones,
// starting no plugin process when the describe cache is fresh. Plugins
// named in LAGO_REATTACH_PLUGINS but absent from disk are described over
// their running connection. The result is computed once per Host.
func (m *Host) Discover() ([]Info, error) {
	m.discoverOnce.Do(func() {
		m.infos, m.discoverErr = discovery.Discover(discovery.Options{
			SearchPath: m.opts.SearchPath,
			Pins:       m.opts.Pins,
			CacheFile:  m.opts.CacheFile,
			Logger:     m.opts.Logger,
		})
		if m.discoverErr == nil {
			m.infos, m.discoverErr = m.addReattached(m.infos)
		}
	})
	return m.infos, m.discoverErr
}

// Components lists the usable components of the given kind ("" for all),
// sorted by kind and name.
func (m *Host) Components(kind string) ([]sdk.ComponentInfo, error) {
	infos, err := m.Discover()
	if err != nil {
		return nil, err
	}
	return discovery.UsableComponents(infos, kind), nil
}

// find returns the plugin serving the component kind/name; with verb set it
// looks for the command component declaring verb instead.
func (m *Host) find(kind, name, verb string) (Info, sdk.ComponentInfo, error) {
	infos, err := m.Discover()
	if err != nil {
		return Info{}, sdk.ComponentInfo{}, err
	}
	var refused []string
	for _, in := range infos {
		if in.Shadowed {
			continue
		}
		for _, c := range in.Components {
			if c.Kind != kind {
				continue
			}
			match := c.Name == name
			if verb != "" {
				match = false
				for _, cs := range c.Commands {
					if cs.Name == verb {
						match = true
					}
				}
			}
			if match {
				return in, c, nil
			}
		}
		if in.Refused {
			refused = append(refused, fmt.Sprintf("%s (%s)", in.Path, in.Reason))
		}
	}
	what := fmt.Sprintf("%s component %q", kind, name)
	if verb != "" {
		what = fmt.Sprintf("command %q", verb)
	}
	if len(refused) > 0 {
		sort.Strings(refused)
		return Info{}, sdk.ComponentInfo{}, fmt.Errorf("%s: %w; refused plugins: %v", what, ErrNotFound, refused)
	}
	return Info{}, sdk.ComponentInfo{}, fmt.Errorf("%s: %w", what, ErrNotFound)
}

// component starts (once) the plugin serving kind/name, configures the
// component (once per config) and returns the make result.
func (m *Host) component(ctx context.Context, kind, name, verb string, config map[string]string, mk func(*sdk.PluginClient, string, ...sdk.ClientOption) any) (any, error) {
	info, comp, err := m.find(kind, name, verb)
	if err != nil {
		return nil, err
	}
	key := kind + "\x00" + comp.Name + "\x00" + configKey(config)
	m.mu.Lock()
	if c, ok := m.clients[key]; ok {
		m.mu.Unlock()
		return c, nil
	}
	slot := m.slotLocked(info.Name, kind+"\x00"+comp.Name, configKey(config))
	m.mu.Unlock()
	p, err := m.process(info, slot)
	if err != nil {
		return nil, err
	}
	opts := m.clientOptions(p)
	if err := p.client.Configure(ctx, comp.Name, config, m.opts.Host, opts...); err != nil {
		return nil, fmt.Errorf("configure %s component %q of plugin %s: %w", kind, comp.Name, info.Name, err)
	}
	c := mk(p.client, comp.Name, opts...)
	m.mu.Lock()
	m.clients[key] = c
	m.mu.Unlock()
	return c, nil
}

// slotLocked picks the process of plugin for component configured with
// cfgKey. A component holds one configuration per process, so a second
// named instance of it with other settings (say a remote libvirt next to
// the local one) gets a process of its own; everything else shares the
// plugin's first process. m.mu must be held.
func (m *Host) slotLocked(plugin, component, cfgKey string) string {
	for i := 0; ; i++ {
		slot := plugin
		if i > 0 {
			slot = fmt.Sprintf("%s#%d", plugin, i)
		}
		k := slot + "\x00" + component
		held, ok := m.configured[k]
		if !ok {
			m.configured[k] = cfgKey
			return slot
		}
		if held == cfgKey {
			return slot
		}
	}
}

func configKey(c map[string]string) string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var s string
	for _, k := range keys {
		s += fmt.Sprintf("%q=%q;", k, c[k])
	}
	return s
}

// Provider starts (once) the plugin serving the provider component name,
// configures it with config and returns a client for it.
func (m *Host) Provider(ctx context.Context, name string, config map[string]string) (sdk.Provider, error) {
	c, err := m.component(ctx, sdk.KindProvider, name, "", config, func(p *sdk.PluginClient, n string, o ...sdk.ClientOption) any { return p.Provider(n, o...) })
	if err != nil {
		return nil, err
	}
	return c.(sdk.Provider), nil
}

// Output returns the output format component name.
func (m *Host) Output(ctx context.Context, name string) (sdk.OutputFormat, error) {
	c, err := m.component(ctx, sdk.KindOutput, name, "", nil, func(p *sdk.PluginClient, n string, o ...sdk.ClientOption) any { return p.Output(n, o...) })
	if err != nil {
		return nil, err
	}
	return c.(sdk.OutputFormat), nil
}

// VMType returns the vm type component name.
func (m *Host) VMType(ctx context.Context, name string, config map[string]string) (sdk.VMType, error) {
	c, err := m.component(ctx, sdk.KindVMType, name, "", config, func(p *sdk.PluginClient, n string, o ...sdk.ClientOption) any { return p.VMType(n, o...) })
	if err != nil {
		return nil, err
	}
	return c.(sdk.VMType), nil
}

// Service returns the service manager component name.
func (m *Host) Service(ctx context.Context, name string, config map[string]string) (sdk.ServiceManager, error) {
	c, err := m.component(ctx, sdk.KindService, name, "", config, func(p *sdk.PluginClient, n string, o ...sdk.ClientOption) any { return p.Service(n, o...) })
	if err != nil {
		return nil, err
	}
	return c.(sdk.ServiceManager), nil
}

// Builder returns the builder component name.
func (m *Host) Builder(ctx context.Context, name string, config map[string]string) (sdk.Builder, error) {
	c, err := m.component(ctx, sdk.KindBuilder, name, "", config, func(p *sdk.PluginClient, n string, o ...sdk.ClientOption) any { return p.Builder(n, o...) })
	if err != nil {
		return nil, err
	}
	return c.(sdk.Builder), nil
}

// Command returns the command component that declares verb.
func (m *Host) Command(ctx context.Context, verb string) (sdk.Command, error) {
	c, err := m.component(ctx, sdk.KindCommand, "", verb, nil, func(p *sdk.PluginClient, n string, o ...sdk.ClientOption) any { return p.Command(n, o...) })
	if err != nil {
		return nil, err
	}
	return c.(sdk.Command), nil
}

// CloseWhenDone calls Close as soon as ctx ends (Ctrl-C through
// signal.NotifyContext, a deadline), even while the caller is blocked in a
// plugin call: plugins ignore SIGINT and would otherwise keep running.
// stop releases the watcher.
func (m *Host) CloseWhenDone(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			m.Close()
		case <-done:
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}

// Close kills every plugin process this Host started (in parallel) and
// waits for them. Safe to call twice; later starts fail with ErrClosed.
func (m *Host) Close() {
	m.mu.Lock()
	m.closed = true
	procs := m.procs
	m.procs = map[string]*process{}
	m.clients = map[string]any{}
	m.configured = map[string]string{}
	unused := m.prestarted
	m.prestarted = nil
	m.mu.Unlock()
	var wg sync.WaitGroup
	if unused != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.opts.Logger.Debug("killing the prestarted plugin nothing used", "path", unused.Path, "pid", unused.Pid)
			unused.Discard()
		}()
	}
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.kill()
		}()
	}
	wg.Wait()
}
