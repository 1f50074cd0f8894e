package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/lago-go/lago/cmd/lago/internal/cli"
	"github.com/lago-go/lago/core/config"
	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/pluginhost/prestart"
	"github.com/lago-go/lago/sdk/plugininfo"
)

// forward replaces this process with the engine, passing the original
// arguments and environment; it returns only on failure. For a verb that
// talks to VM providers it first starts the default provider instance's
// plugin (package prestart), whose start-up then overlaps the engine's.
func forward(req cli.ForwardRequest) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the lago binary: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	engine := filepath.Join(filepath.Dir(exe), "..", "libexec", "lago", cli.EngineName)
	if _, err := os.Stat(engine); err != nil {
		return errs.User(fmt.Errorf("lago engine missing (install %s beside the plugins): %w", engine, err))
	}
	argv := append([]string{os.Args[0]}, req.Args...)
	// A stale variable must never reach the engine, prestart or not.
	environ := prestart.ExecEnviron(req.Environ, "")
	if req.Config != nil {
		// The engine loads the configuration again; its warnings were
		// printed here.
		environ = append(environ, config.WarnedEnv+"=1")
	}
	var ps *prestart.Process
	if req.Provider {
		// The plugin's parent-death signal is tied to the thread that
		// starts it; exec keeps this thread, so the engine inherits it.
		runtime.LockOSThread()
		if ps = prestartProvider(req); ps != nil {
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
func prestartProvider(req cli.ForwardRequest) *prestart.Process {
	cfg := req.Config
	if cfg == nil || prestart.Disabled(req.Environ) {
		return nil
	}
	inst, err := cfg.Provider(cfg.DefaultVMProvider)
	if err != nil {
		return nil
	}
	infos, err := req.Host.Discover()
	if err != nil {
		return nil
	}
	info, ok := prestart.Find(infos, plugininfo.KindProvider, inst.Plugin)
	if !ok || cfg.PluginPins[info.Name] != "" {
		return nil
	}
	ps, err := prestart.Start(info.Path, prestart.ExecEnviron(req.Environ, ""))
	if err != nil {
		return nil
	}
	return ps
}
