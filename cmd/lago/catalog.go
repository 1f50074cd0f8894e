package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/lago-go/lago/cmd/lago/internal/cli"
	"github.com/lago-go/lago/core/output"
	"github.com/lago-go/lago/core/pluginhost/discovery"
	"github.com/lago-go/lago/sdk/plugininfo"
)

// catalog is the front-end's plugin host: it reads describe output (the
// describe cache, or a `describe` run on a miss) and starts no plugin
// process. The command line forwards to the engine whatever needs one
// (cli.Backend.Forward), so Output and RunCommand are never reached.
type catalog struct {
	opts  cli.HostOptions
	infos []discovery.Info
	err   error
	done  bool
}

func newCatalog(o cli.HostOptions) cli.PluginHost { return &catalog{opts: o} }

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

var errCatalog = errors.New("the lago front-end cannot start plugins")

func (c *catalog) Output(context.Context, string) (output.PluginFormat, error) {
	return nil, errCatalog
}

func (c *catalog) RunCommand(context.Context, cli.CommandRequest, io.Writer, io.Writer) (int, error) {
	return 0, errCatalog
}

func (c *catalog) Close() {}

type stderrLogger struct{ w io.Writer }

func (l stderrLogger) Info(msg string, args ...any) {
	fmt.Fprintln(l.w, append([]any{"lago: " + msg}, args...)...)
}
func (l stderrLogger) Warn(msg string, args ...any) {
	fmt.Fprintln(l.w, append([]any{"lago: warning: " + msg}, args...)...)
}
