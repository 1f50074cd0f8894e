//go:build lagolight

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/output"
	"github.com/lago-go/lago/core/pluginhost/discovery"
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
// arguments and environment; it returns only on failure.
func (a *app) forward() error {
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
	if err := syscall.Exec(engine, argv, a.environ); err != nil {
		return fmt.Errorf("exec %s: %w", engine, err)
	}
	return nil
}

// handlers holds only the verbs the light front-end runs itself; runBuiltin
// forwards the others before looking here.
var handlers = map[string]Handler{
	"generate-config": runGenerateConfig,
	"plugins":         runPlugins,
}
