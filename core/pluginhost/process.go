package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"

	"github.com/lago-go/lago/core/pluginhost/discovery"
	"github.com/lago-go/lago/core/pluginhost/prestart"
	"github.com/lago-go/lago/sdk"
)

// ReattachEnv names the environment variable holding a JSON object that
// maps a plugin name (without lago-plugin-) to the reattach configuration
// printed by a plugin started by hand with LAGO_PLUGIN_DEBUG=1:
//
//	$ LAGO_PLUGIN_DEBUG=1 libexec/lago/plugins/lago-plugin-output-json
//	{"protocol":"grpc","protocol_version":1,"pid":4242,"addr":{"network":"unix","string":"/tmp/plugin123"},"test":true}
//	$ LAGO_REATTACH_PLUGINS='{"output-json": {...}}' bin/lago -f json status
//
// lago then talks to that process instead of starting the binary, and
// leaves it running when it exits.
const ReattachEnv = prestart.ReattachEnv

// StartTimeout bounds a plugin's start-up handshake.
var StartTimeout = 20 * time.Second

// binaryOpened, when set (by tests), runs between the checks of a plugin
// binary and its exec: the window a swapped binary would use.
var binaryOpened func(path string)

// process is one plugin binary's process (or reattached connection).
type process struct {
	name  string
	path  string
	ready chan struct{} // closed when start finished

	plugin *plugin.Client
	client *sdk.PluginClient
	err    error
	tail   *tailBuffer
}

// process returns the running process for info, starting it on first use.
func (m *Host) process(info Info, slot string) (*process, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("start plugin %s: %w", info.Name, ErrClosed)
	}
	p, ok := m.procs[slot]
	if !ok {
		p = &process{name: info.Name, path: info.Path, ready: make(chan struct{}), tail: newTailBuffer(20)}
		var adopt *prestart.Process
		if ps := m.prestarted; ps != nil && slot == info.Name && ps.Path == info.Path && m.opts.Pins[info.Name] == "" {
			adopt, m.prestarted = ps, nil
		}
		m.procs[slot] = p
		m.mu.Unlock()
		reattach, rerr := m.reattachConfig(info.Name, info.Pin)
		if rerr != nil {
			if adopt != nil {
				adopt.Discard()
			}
			p.err = rerr
		} else if adopt != nil && reattach == nil {
			p.err = p.adopt(m.opts, info, adopt)
			if p.err != nil {
				// It died or broke before its handshake: start a fresh one.
				m.opts.Logger.Warn("prestarted plugin unusable; starting it again", "plugin", info.Name, "err", p.err)
				p.tail = newTailBuffer(20)
				p.err = p.start(m.opts, info, nil)
			}
		} else {
			if adopt != nil {
				adopt.Discard()
			}
			p.err = p.start(m.opts, info, reattach)
		}
		close(p.ready)
	} else {
		m.mu.Unlock()
		<-p.ready
	}
	if p.err != nil {
		return nil, p.err
	}
	return p, nil
}

// ErrReattachPinned is returned (wrapped) for a pinned plugin (in
// [plugins], or installed with `lago plugins install`, which pins it in
// its folder) that LAGO_REATTACH_PLUGINS names: a process started by hand
// cannot be checked against the pin, so lago refuses to talk to it rather
// than attach to an unknown process (or silently start the binary
// instead).
var ErrReattachPinned = errors.New("a pinned plugin cannot be replaced through " + ReattachEnv)

// reattachConfig returns the reattach configuration for name from the
// environment, or nil; an error (ErrReattachPinned) when name is pinned
// in the configuration or (pin) in its folder.
func (m *Host) reattachConfig(name, pin string) (*plugin.ReattachConfig, error) {
	all, err := parseReattach(os.Getenv(ReattachEnv))
	if err != nil {
		m.opts.Logger.Warn("ignoring "+ReattachEnv, "error", err)
		return nil, nil
	}
	ri, ok := all[name]
	if !ok {
		return nil, nil
	}
	if err := m.checkReattachPin(name, pin); err != nil {
		return nil, err
	}
	rc, err := ri.ToConfig()
	if err != nil {
		m.opts.Logger.Warn("ignoring "+ReattachEnv+" entry", "plugin", name, "error", err)
		return nil, nil
	}
	return rc, nil
}

func (m *Host) checkReattachPin(name, pin string) error {
	if m.opts.Pins[name] == "" && pin == "" {
		return nil
	}
	return fmt.Errorf("plugin %s: %w; unset %s (or remove its pin) to use it", name, ErrReattachPinned, ReattachEnv)
}

func parseReattach(s string) (map[string]sdk.ReattachInfo, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var all map[string]sdk.ReattachInfo
	if err := json.Unmarshal([]byte(s), &all); err != nil {
		return nil, fmt.Errorf("parse %s: %w", ReattachEnv, err)
	}
	return all, nil
}

// addReattached adds the plugins of LAGO_REATTACH_PLUGINS that are not on
// disk, described over their connection.
func (m *Host) addReattached(infos []Info) ([]Info, error) {
	all, err := parseReattach(os.Getenv(ReattachEnv))
	if err != nil {
		m.opts.Logger.Warn("ignoring "+ReattachEnv, "error", err)
		return infos, nil
	}
	for name := range all {
		found := false
		for _, in := range infos {
			found = found || (in.Name == name && !in.Shadowed)
		}
		if found {
			continue
		}
		info := Info{Name: name, Path: "reattached:" + name}
		if err := m.checkReattachPin(name, ""); err != nil {
			m.opts.Logger.Warn("refusing to attach to a pinned plugin", "plugin", name, "error", err)
			info.Refused, info.Reason = true, err.Error()
			infos = append(infos, info)
			continue
		}
		p, err := m.process(info, info.Name)
		if err != nil {
			m.opts.Logger.Warn("cannot attach to plugin", "plugin", name, "error", err)
			continue
		}
		ctx, cancel := contextWithTimeout(StartTimeout)
		d, err := p.client.Describe(ctx)
		cancel()
		if err != nil {
			m.opts.Logger.Warn("cannot describe attached plugin", "plugin", name, "error", err)
			continue
		}
		info.Version, info.Components = d.Version, d.Components
		infos = append(infos, info)
	}
	return infos, nil
}

// start launches (or attaches to) the plugin and dispenses its client.
// The binary is opened once: the trust checks, the pin's hash and the
// process all use that open file (discovery.OpenBinary), so a binary
// swapped after discovery, or between the check and the exec, never runs.
func (p *process) start(opts Options, info Info, reattach *plugin.ReattachConfig) error {
	cfg := p.clientConfig(opts)
	if reattach != nil {
		cfg.Reattach = reattach
		return p.connect(cfg)
	}
	bin, err := discovery.OpenBinary(info.Path, opts.Pins[info.Name])
	if err != nil {
		return fmt.Errorf("plugin %s: %w", info.Name, err)
	}
	if binaryOpened != nil {
		binaryOpened(info.Path)
	}
	// Closed once the handshake is over (or failed): the child has its
	// own copy of the descriptor.
	defer bin.Close()
	cfg.RunnerFunc = func(logger hclog.Logger, spec *exec.Cmd, _ string) (runner.Runner, error) {
		r, err := newBinaryRunner(bin, spec)
		if r != nil {
			r.logger = logger
		}
		return r, err
	}
	return p.connect(cfg)
}

// adopt takes over a process the front-end started (see package
// prestart): go-plugin reads its handshake and logs from the inherited
// pipes, and stops and reaps it like one it started.
func (p *process) adopt(opts Options, info Info, ps *prestart.Process) error {
	cfg := p.clientConfig(opts)
	cfg.RunnerFunc = func(hclog.Logger, *exec.Cmd, string) (runner.Runner, error) {
		return adoptedRunner{ps}, nil
	}
	opts.Logger.Debug("using the plugin process the front-end started", "plugin", info.Name, "pid", ps.Pid)
	return p.connect(cfg)
}

// clientConfig is the go-plugin configuration shared by every start.
func (p *process) clientConfig(opts Options) *plugin.ClientConfig {
	return &plugin.ClientConfig{
		HandshakeConfig:  sdk.HandshakeConfig,
		Plugins:          sdk.PluginSet(nil),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		// go-plugin re-emits the plugin's own log lines (its stderr)
		// through this logger, under the binary's name.
		Logger: opts.PluginLog,
		Stderr: p.tail,
		// go-plugin redirects the plugin's os.Stdout/os.Stderr over gRPC;
		// keep what arrives for error messages too.
		SyncStdout:   p.tail,
		SyncStderr:   p.tail,
		StartTimeout: StartTimeout,
	}
}

// connect starts the go-plugin client of cfg and dispenses the plugin set.
func (p *process) connect(cfg *plugin.ClientConfig) error {
	pc := plugin.NewClient(cfg)
	p.plugin = pc
	rpc, err := pc.Client()
	if err != nil {
		pc.Kill()
		return p.wrap(fmt.Errorf("start: %w", err))
	}
	raw, err := rpc.Dispense(sdk.PluginSetKey)
	if err != nil {
		pc.Kill()
		return p.wrap(fmt.Errorf("dispense: %w", err))
	}
	c, ok := raw.(*sdk.PluginClient)
	if !ok {
		pc.Kill()
		return p.wrap(fmt.Errorf("dispense: unexpected client %T", raw))
	}
	p.client = c
	return nil
}

// binaryRunner is the go-plugin runner of a binary opened by
// discovery.OpenBinary: what go-plugin's own command runner does, except
// that it runs the open file (Binary.Command) and is named after the
// binary's path (go-plugin names the plugin's logger after the runner).
type binaryRunner struct {
	bin            *discovery.Binary
	cmd            *exec.Cmd
	stdout, stderr io.ReadCloser
	pid            int
	// logger says which binary starts, as go-plugin's own runner does
	// ("starting plugin", "plugin started"): -l debug shows it.
	logger hclog.Logger
}

// newBinaryRunner prepares bin's command with what go-plugin set up in
// spec (environment with the handshake variables, stdin).
func newBinaryRunner(bin *discovery.Binary, spec *exec.Cmd) (*binaryRunner, error) {
	cmd := bin.Command()
	cmd.Env, cmd.Stdin = spec.Env, spec.Stdin
	setProcAttr(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	return &binaryRunner{bin: bin, cmd: cmd, stdout: stdout, stderr: stderr}, nil
}

func (r *binaryRunner) Start(context.Context) error {
	if r.logger != nil {
		r.logger.Debug("starting plugin", "path", r.bin.Path, "args", r.cmd.Args)
	}
	if err := r.cmd.Start(); err != nil {
		return err
	}
	r.pid = r.cmd.Process.Pid
	if r.logger != nil {
		r.logger.Debug("plugin started", "path", r.bin.Path, "pid", r.pid)
	}
	return nil
}

func (r *binaryRunner) Wait(context.Context) error { return r.cmd.Wait() }

func (r *binaryRunner) Kill(context.Context) error {
	if r.cmd.Process == nil {
		return nil
	}
	if err := r.cmd.Process.Kill(); !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

func (r *binaryRunner) Stdout() io.ReadCloser { return r.stdout }
func (r *binaryRunner) Stderr() io.ReadCloser { return r.stderr }
func (r *binaryRunner) Name() string          { return r.bin.Path }
func (r *binaryRunner) ID() string            { return strconv.Itoa(r.pid) }

// Diagnose is what go-plugin adds to an unrecognised handshake line.
func (r *binaryRunner) Diagnose(context.Context) string {
	return "the binary may be built for another architecture, miss shared libraries, or not be a lago plugin (" + r.bin.Path + ")"
}

func (r *binaryRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (r *binaryRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// adoptedRunner is the go-plugin runner of a prestarted process: it is
// running already; the rest is what go-plugin's own command runner does.
type adoptedRunner struct{ ps *prestart.Process }

func (r adoptedRunner) Start(context.Context) error     { return nil }
func (r adoptedRunner) Diagnose(context.Context) string { return "" }
func (r adoptedRunner) Stdout() io.ReadCloser           { return r.ps.Stdout }
func (r adoptedRunner) Stderr() io.ReadCloser           { return r.ps.Stderr }
func (r adoptedRunner) Name() string                    { return r.ps.Path }
func (r adoptedRunner) ID() string                      { return strconv.Itoa(r.ps.Pid) }
func (r adoptedRunner) Kill(context.Context) error      { return r.ps.Kill() }

// Wait reaps the process, then closes the pipes as exec.Cmd.Wait does: a
// child of the plugin holding them open must not keep go-plugin waiting.
func (r adoptedRunner) Wait(context.Context) error {
	err := r.ps.Wait()
	r.ps.Stdout.Close()
	r.ps.Stderr.Close()
	return err
}

func (r adoptedRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (r adoptedRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// clientOptions decorate component clients with the plugin's identity.
// A warning the plugin returns is handed on once per Host: the same
// warning from a second call (or a second process of the plugin) is the
// same news.
func (m *Host) clientOptions(p *process) []sdk.ClientOption {
	warn := func(d sdk.Diagnostic) {
		key := p.name + "\x00" + d.Attribute + "\x00" + d.Summary + "\x00" + d.Detail
		m.mu.Lock()
		seen := m.warned[key]
		m.warned[key] = true
		m.mu.Unlock()
		if seen {
			return
		}
		if m.opts.OnWarning != nil {
			m.opts.OnWarning(p.name, d)
			return
		}
		m.opts.Logger.Warn(d.Summary, "plugin", p.name, "detail", d.Detail, "attribute", d.Attribute)
	}
	return []sdk.ClientOption{sdk.WithWarningHandler(warn), sdk.WithTransportErrorWrapper(p.wrap)}
}

// kill stops the process and waits for it (go-plugin asks it to exit, then
// kills it after a grace period).
func (p *process) kill() {
	<-p.ready
	if p.plugin != nil {
		p.plugin.Kill()
	}
}

// wrap names the plugin in a transport error and adds the tail of its
// stderr. When the process is dying, it waits a moment for it to exit so
// the stderr tail includes its last words.
func (p *process) wrap(err error) error {
	exited := false
	if p.plugin != nil {
		deadline := time.Now().Add(500 * time.Millisecond)
		for !p.plugin.Exited() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		exited = p.plugin.Exited()
	}
	return &PluginError{Plugin: p.name, Path: p.path, Exited: exited, StderrTail: p.tail.Lines(), Err: err}
}

// PluginError is a failure of the plugin process or its connection (not a
// domain error, which arrives as sdk.Diagnostics).
type PluginError struct {
	Plugin     string
	Path       string
	Exited     bool
	StderrTail []string
	Err        error
}

func (e *PluginError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "plugin %s (%s)", e.Plugin, e.Path)
	if e.Exited {
		b.WriteString(" exited")
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	if len(e.StderrTail) > 0 {
		b.WriteString("; last stderr lines:")
		for _, l := range e.StderrTail {
			b.WriteString("\n    " + l)
		}
	}
	return b.String()
}

func (e *PluginError) Unwrap() error { return e.Err }

// tailBuffer keeps the last lines written to it (the plugin's stderr), for
// error messages. hclog JSON lines are shortened to "level: message".
type tailBuffer struct {
	mu      sync.Mutex
	max     int
	partial []byte
	lines   []string
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, b...)
	for {
		i := strings.IndexByte(string(t.partial), '\n')
		if i < 0 {
			break
		}
		t.add(string(t.partial[:i]))
		t.partial = t.partial[i+1:]
	}
	if len(t.partial) > 4096 { // a line without end: keep it bounded
		t.add(string(t.partial))
		t.partial = nil
	}
	return len(b), nil
}

func (t *tailBuffer) add(line string) {
	line = strings.TrimRight(line, "\r")
	if line == "" {
		return
	}
	var entry struct {
		Level   string `json:"@level"`
		Message string `json:"@message"`
	}
	if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &entry) == nil && entry.Message != "" {
		line = entry.Level + ": " + entry.Message
	}
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

// Lines returns a copy of the kept lines, oldest first.
func (t *tailBuffer) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string(nil), t.lines...)
	if len(t.partial) > 0 {
		out = append(out, string(t.partial))
	}
	return out
}
