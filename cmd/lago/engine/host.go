package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/lago-go/lago/cmd/lago/internal/cli"
	"github.com/lago-go/lago/core/lago"
	"github.com/lago-go/lago/core/output"
	"github.com/lago-go/lago/core/pluginhost/discovery"
	"github.com/lago-go/lago/core/pluginhost/prestart"
	"github.com/lago-go/lago/sdk/plugininfo"
)

// newPluginHost is the engine's plugin host: a lago Client (the public Go
// API, which owns the plugin processes and serves plugins' calls back into
// the core), with ps (the process the front-end started, or nil) adopted
// by the first start of its binary. The plugins' own log lines go to the
// prefix log (the Client's default); what they want the user to see they
// return as warnings, printed once in lago's style.
func newPluginHost(o cli.HostOptions, ps *prestart.Process) cli.PluginHost {
	// The host's own chatter (processes started and reaped) is noise at
	// the default level; show it only when debugging, with the plugins'
	// own lines (which otherwise go to the prefix log only).
	hostLevel := "warn"
	var also io.Writer
	if o.LogLevel == "debug" {
		hostLevel, also = "debug", o.Stderr
	}
	exe, _ := os.Executable()
	opts := lago.Options{
		Config:           o.Config,
		Progress:         o.Stderr,
		Logger:           slog.New(slog.NewTextHandler(o.Stderr, &slog.HandlerOptions{Level: slogLevel(o.LogLevel)})),
		PluginLogAlso:    also,
		PluginLogLevel:   o.LogLevel,
		HostLog:          o.Stderr,
		HostLogLevel:     hostLevel,
		OnWarning:        func(msg string) { fmt.Fprintf(o.Stderr, "lago: warning: %s\n", msg) },
		PluginSearchPath: o.SearchPath,
		PluginCacheFile:  o.CacheFile,
		Executable:       exe,
		Prestarted:       ps,
	}
	c, err := lago.New(opts)
	if err != nil {
		if ps != nil {
			ps.Discard()
		}
		return brokenHost{err}
	}
	return clientHost{c: c}
}

func slogLevel(l string) slog.Level {
	switch strings.ToLower(l) {
	case "debug":
		return slog.LevelDebug
	case "info":
		// lago's info chatter goes to the prefix log (the Client adds
		// it there), not the terminal.
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelWarn
}

// clientHost adapts a lago Client to cli.PluginHost.
type clientHost struct {
	c *lago.Client
}

func (h clientHost) Discover() ([]discovery.Info, error) { return h.c.Plugins().Discover() }

func (h clientHost) Components(kind string) ([]plugininfo.ComponentInfo, error) {
	return h.c.Plugins().Components(kind)
}

// Close stops the plugins, which flushes their last log lines, then
// closes the prefix log.
func (h clientHost) Close() { h.c.Close() }

func (h clientHost) Output(ctx context.Context, name string) (output.PluginFormat, error) {
	return h.c.Plugins().Output(ctx, name)
}

func (h clientHost) RunCommand(ctx context.Context, req cli.CommandRequest, stdout, stderr io.Writer) (int, error) {
	return h.c.RunPluginVerb(ctx, lago.PluginVerb{
		Verb: req.Verb, Args: req.Args, Flags: req.Flags, Global: req.Global, WorkingDir: req.WorkingDir,
	}, stdout, stderr)
}

// brokenHost is the plugin host when the Client could not be made (the
// configuration does not load): every use reports why.
type brokenHost struct{ err error }

func (b brokenHost) Discover() ([]discovery.Info, error)                   { return nil, b.err }
func (b brokenHost) Components(string) ([]plugininfo.ComponentInfo, error) { return nil, b.err }
func (b brokenHost) Close()                                                {}
func (b brokenHost) Output(context.Context, string) (output.PluginFormat, error) {
	return nil, b.err
}
func (b brokenHost) RunCommand(context.Context, cli.CommandRequest, io.Writer, io.Writer) (int, error) {
	return 0, b.err
}
