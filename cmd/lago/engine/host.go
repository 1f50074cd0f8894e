package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/lago-go/lago/cmd/lago/internal/cli"
	"github.com/lago-go/lago/core/env"
	"github.com/lago-go/lago/core/output"
	"github.com/lago-go/lago/core/pluginhost"
	"github.com/lago-go/lago/core/pluginhost/prestart"
	"github.com/lago-go/lago/core/prefix"
	commandv1 "github.com/lago-go/lago/proto/lago/command/v1"
	hostv1 "github.com/lago-go/lago/proto/lago/host/v1"
	"github.com/lago-go/lago/sdk"
)

// newPluginHost is the engine's plugin host: plugins started over
// go-plugin, ps (the process the front-end started, or nil) adopted by
// the first start of its binary.
func newPluginHost(o cli.HostOptions, ps *prestart.Process) cli.PluginHost {
	level := o.LogLevel
	// The host's own chatter (processes started and reaped) is noise at
	// the default level; show it only when debugging.
	if level != "debug" {
		level = "warn"
	}
	eh := &engineHost{}
	// The plugins' own log lines go to the prefix log; what they want the
	// user to see they return as warnings, printed once in lago's style.
	plog := newPrefixLog(func() (string, bool) { return "", false })
	if cfg := o.Config; cfg != nil {
		plog = newPrefixLog(prefixLogFile(prefix.FindOptions{PrefixPath: cfg.PrefixPath, WorkdirPath: cfg.WorkdirPath, PrefixName: cfg.PrefixName}))
	}
	pm := pluginhost.New(pluginhost.Options{
		SearchPath: o.SearchPath,
		Pins:       o.Pins,
		CacheFile:  o.CacheFile,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name: "lago", Level: hclog.LevelFromString(level), Output: o.Stderr,
		}),
		PluginLog:  pluginLogger(o.LogLevel, plog, o.Stderr),
		OnWarning:  warningPrinter(o.Stderr),
		Host:       eh,
		Prestarted: ps,
	})
	if cfg := o.Config; cfg != nil {
		eh.make = func() sdk.Host {
			m := env.New(env.OptionsFromConfig(cfg), env.RealDeps(pm, cfg, nil))
			return &env.HostService{M: m, Stderr: o.Stderr, Prefix: func() (string, error) {
				p, err := prefix.Find(prefix.FindOptions{PrefixPath: cfg.PrefixPath, WorkdirPath: cfg.WorkdirPath, PrefixName: cfg.PrefixName})
				if err != nil {
					return "", err
				}
				return p.Path, nil
			}}
		}
	}
	return managerHost{pm, plog}
}

// engineHost serves the Host callback service to plugins, built on first
// use: most commands never need it, and it needs the plugin host itself.
type engineHost struct {
	once sync.Once
	make func() sdk.Host
	host sdk.Host
}

func (e *engineHost) get() (sdk.Host, error) {
	e.once.Do(func() {
		if e.make != nil {
			e.host = e.make()
		}
	})
	if e.host == nil {
		return nil, errors.New("no lago environment to act on")
	}
	return e.host, nil
}

func (e *engineHost) Exec(ctx context.Context, vm string, argv []string, stdin []byte, stdout, stderr io.Writer) (int, error) {
	h, err := e.get()
	if err != nil {
		return 0, err
	}
	return h.Exec(ctx, vm, argv, stdin, stdout, stderr)
}

func (e *engineHost) CopyTo(ctx context.Context, vm, local, remote string) error {
	h, err := e.get()
	if err != nil {
		return err
	}
	return h.CopyTo(ctx, vm, local, remote)
}

func (e *engineHost) CopyFrom(ctx context.Context, vm, remote, local string) error {
	h, err := e.get()
	if err != nil {
		return err
	}
	return h.CopyFrom(ctx, vm, remote, local)
}

func (e *engineHost) Environment(ctx context.Context) (*hostv1.GetEnvironmentResponse, error) {
	h, err := e.get()
	if err != nil {
		return nil, err
	}
	return h.Environment(ctx)
}

func (e *engineHost) Progress(ctx context.Context, msg string, fraction float64) error {
	h, err := e.get()
	if err != nil {
		return err
	}
	return h.Progress(ctx, msg, fraction)
}

func (e *engineHost) Log(ctx context.Context, level, msg string) error {
	h, err := e.get()
	if err != nil {
		return err
	}
	return h.Log(ctx, level, msg)
}

// managerHost adapts *pluginhost.Host to cli.PluginHost.
type managerHost struct {
	*pluginhost.Host
	log *prefixLog
}

// Close stops the plugins, which flushes their last log lines, then
// closes the prefix log.
func (m managerHost) Close() {
	m.Host.Close()
	m.log.Close()
}

func (m managerHost) Output(ctx context.Context, name string) (output.PluginFormat, error) {
	return m.Host.Output(ctx, name)
}

func (m managerHost) RunCommand(ctx context.Context, req cli.CommandRequest, stdout, stderr io.Writer) (int, error) {
	impl, err := m.Host.Command(ctx, req.Verb)
	if err != nil {
		return 0, fmt.Errorf("start plugin verb %s: %w", req.Verb, err)
	}
	return impl.Execute(ctx, &commandv1.ExecuteRequest{
		Verb: req.Verb, Args: req.Args, Flags: req.Flags, Global: req.Global, WorkingDir: req.WorkingDir,
	}, stdout, stderr)
}

// pluginHost returns the plugin host of the engine, created on first use,
// for handlers that need providers, vm types, service managers or
// builders. It is nil when a test installed a fake cli.PluginHost.
func pluginHost(inv *cli.Invocation) *pluginhost.Host {
	if m, ok := inv.Host().(managerHost); ok {
		return m.Host
	}
	return nil
}

// provider starts and configures the provider instance name (a
// `[provider NAME]` section or the built-in local-libvirt; "" means
// default_vm_provider) and returns its client.
func provider(ctx context.Context, inv *cli.Invocation, name string) (sdk.Provider, error) {
	if name == "" {
		name = inv.Config.DefaultVMProvider
	}
	p, err := inv.Config.Provider(name)
	if err != nil {
		return nil, err
	}
	m := pluginHost(inv)
	if m == nil {
		return nil, fmt.Errorf("provider instance %s: no plugin host", name)
	}
	prov, err := m.Provider(ctx, p.Plugin, p.Settings)
	if err != nil {
		return nil, fmt.Errorf("provider instance %s (plugin component %s): %w", name, p.Plugin, err)
	}
	return prov, nil
}
