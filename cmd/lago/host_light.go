//go:build lagolight

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/lago-go/lago/core/config"
	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/output"
	"github.com/lago-go/lago/core/pluginhost/discovery"
	"github.com/lago-go/lago/core/pluginhost/prestart"
	"github.com/lago-go/lago/sdk/plugininfo"
)

// The light front-end links no gRPC, go-plugin or protobuf, whose package
// initialisation and page faults dominate start-up: help, version,
// completion, generate-config and `plugins` run here from the describe
// cache; every other verb execs the full engine with the same arguments.
const lightBuild = true

func newPluginHost(o hostOptions) PluginHost { return &catalog{opts: o} }

// catalog is a PluginHost that can only read describe output.
type catalog struct {
	opts  hostOptions
	infos []discovery.Info
	err   error
	done  bool
}

func (c *catalog) Discover() ([]discovery.Info, error) {
	if !c.done {
		c.done = true
		var logger discovery.Logger
		if c.opts.LogLevel == "debug" {
			logger = stderrLogger{c.opts.Stderr}
		}
		c.infos, c.err = discovery.Discover(discovery.Options{
			SearchPath: c.opts.SearchPath, Pins: c.opts.Pins, CacheFile: c.opts.CacheFile, Logger: logger,
		})
	}
	return c.infos, c.err
}

func (c *catalog) Components(kind string) ([]plugininfo.ComponentInfo, error) {
	infos, err := c.Discover()
	if err != nil {
		return nil, err
	}
	return discovery.UsableComponents(infos, kind), nil
}

var errLight = errors.New("the light lago front-end cannot start plugins")

func (c *catalog) Output(context.Context, string) (output.PluginFormat, error) { return nil, errLight }

func (c *catalog) RunCommand(context.Context, CommandRequest, io.Writer, io.Writer) (int, error) {
	return 0, errLight
}

func (c *catalog) Close() {}

type stderrLogger struct{ w io.Writer }

func (l stderrLogger) Info(msg string, args ...any) {
	fmt.Fprintln(l.w, append([]any{"lago: " + msg}, args...)...)
}
func (l stderrLogger) Warn(msg string, args ...any) {
	fmt.Fprintln(l.w, append([]any{"lago: warning: " + msg}, args...)...)
}

// forward replaces this process with the full engine, passing the original
// arguments and environment; it returns only on failure. With
// prestartProvider it first starts the default provider instance's plugin
// (package prestart), whose start-up then overlaps the engine's.
func (a *app) forward(prestartProvider bool) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the lago binary: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	engine := filepath.Join(filepath.Dir(exe), "..", "libexec", "lago", engineName)
	if _, err := os.Stat(engine); err != nil {
		return errs.User(fmt.Errorf("lago engine missing (install %s beside the plugins): %w", engine, err))
	}
	argv := append([]string{os.Args[0]}, a.args...)
	// A stale variable must never reach the engine, prestart or not.
	environ := prestart.ExecEnviron(a.environ, "")
	if a.cfg != nil {
		// The engine loads the configuration again; its warnings were
		// printed here.
		environ = append(environ, config.WarnedEnv+"=1")
	}
	var ps *prestart.Process
	if prestartProvider {
		// The plugin's parent-death signal is tied to the thread that
		// starts it; exec keeps this thread, so the engine inherits it.
		runtime.LockOSThread()
		if ps = a.prestartProvider(); ps != nil {
			if kv, err := ps.ExecEnv(); err == nil {
				environ = prestart.ExecEnviron(environ, kv)
			} else {
				ps.Discard()
				ps = nil
			}
		}
	}
	err = syscall.Exec(engine, argv, environ)
	if ps != nil {
		ps.Discard()
	}
	return fmt.Errorf("exec %s: %w", engine, err)
}

// prestartProvider starts the plugin binary serving the default provider
// instance, or returns nil when it should not (turned off, plugins
// reattached or pinned, nothing found, start failed: the engine then
// starts the plugin itself and reports any error).
func (a *app) prestartProvider() *prestart.Process {
	if a.cfg == nil || prestart.Disabled(a.environ) {
		return nil
	}
	inst, err := a.cfg.Provider(a.cfg.DefaultVMProvider)
	if err != nil {
		return nil
	}
	c, ok := a.pluginHost().(*catalog)
	if !ok {
		return nil
	}
	infos, err := c.Discover()
	if err != nil {
		return nil
	}
	info, ok := prestart.Find(infos, plugininfo.KindProvider, inst.Plugin)
	if !ok || a.cfg.PluginPins[info.Name] != "" {
		return nil
	}
	ps, err := prestart.Start(info.Path, prestart.ExecEnviron(a.environ, ""))
	if err != nil {
		return nil
	}
	return ps
}

// handlers holds only the verbs the light front-end runs itself; runBuiltin
// forwards the others before looking here.
var handlers = map[string]Handler{
	"generate-config": runGenerateConfig,
	"plugins":         runPlugins,
}

// takePrestarted is for the engine: the front-end never adopts a plugin
// process, it only starts one for the engine (forward).
func takePrestarted(io.Writer) *prestart.Process { return nil }
