package cli

import (
	"context"
	"io"
	"os"
	"path/filepath"

	"github.com/lago-go/lago/core/config"
	"github.com/lago-go/lago/core/output"
	"github.com/lago-go/lago/core/pluginhost/discovery"
	"github.com/lago-go/lago/sdk/plugininfo"
)

// Component kinds the CLI asks for (values of plugininfo kinds; spelled
// here so this file does not pull in the RPC side of the sdk).
const (
	kindCommand = "command"
	kindOutput  = "output"
)

// PluginHost is what the command line needs from the plugin host
// (Backend.NewHost). The engine's wraps *pluginhost.Host; the front-end's
// only reads the describe cache, and the front-end forwards everything that
// would start a plugin to the engine. Tests substitute a fake.
type PluginHost interface {
	Discover() ([]discovery.Info, error)
	Components(kind string) ([]plugininfo.ComponentInfo, error)
	Output(ctx context.Context, name string) (output.PluginFormat, error)
	// RunCommand runs a command plugin's verb, streaming its output, and
	// returns its exit code.
	RunCommand(ctx context.Context, req CommandRequest, stdout, stderr io.Writer) (int, error)
	Close()
}

// CommandRequest is one run of a command plugin's verb.
type CommandRequest struct {
	Verb       string
	Args       []string
	Flags      map[string]string
	Global     map[string]string
	WorkingDir string
}

// EngineName is the program the front-end execs, installed as
// <prefix>/libexec/lago/lago-engine beside <prefix>/bin/lago.
const EngineName = "lago-engine"

// HostOptions configure the plugin host.
type HostOptions struct {
	SearchPath []string
	Pins       map[string]string
	CacheFile  string
	// LogLevel is lago's --loglevel.
	LogLevel string
	Stderr   io.Writer
	// Config is the effective configuration; the engine uses it to serve
	// the Host callback service (guest commands) to plugins.
	Config *config.Config
}

func (a *app) hostOptions(pins map[string]string, level string) HostOptions {
	opts := HostOptions{Pins: pins, LogLevel: level, Stderr: a.stderr}
	if exe, err := os.Executable(); err == nil {
		if filepath.Base(exe) == EngineName {
			// Plugins are found relative to the front-end, bin/lago.
			exe = filepath.Join(filepath.Dir(exe), "..", "..", "bin", "lago")
		}
		opts.SearchPath = searchPath(exe)
	}
	cache := a.getenv("XDG_CACHE_HOME")
	if cache == "" && a.getenv("HOME") != "" {
		cache = filepath.Join(a.getenv("HOME"), ".cache")
	}
	if cache != "" {
		opts.CacheFile = filepath.Join(cache, "lago", "plugins.json")
	}
	return opts
}

// searchPath asks the plugin discovery for its default folders. It must
// never take the CLI down: help has to work even when discovery does not.
func searchPath(exe string) (path []string) {
	defer func() {
		if recover() != nil {
			path = nil
		}
	}()
	return discovery.DefaultSearchPath(exe)
}
