//go:build !lagolight

package main

import (
	"context"
	"fmt"
	"io"

	"github.com/hashicorp/go-hclog"

	"github.com/lago-go/lago/core/output"
	"github.com/lago-go/lago/core/pluginhost"
	commandv1 "github.com/lago-go/lago/proto/lago/command/v1"
)

// lightBuild is false in the full engine: verbs run in this process.
const lightBuild = false

func newPluginHost(o hostOptions) PluginHost {
	level := o.LogLevel
	// The host's own chatter (processes started and reaped) is noise at
	// the default level; show it only when debugging.
	if level != "debug" {
		level = "warn"
	}
	return managerHost{pluginhost.New(pluginhost.Options{
		SearchPath: o.SearchPath,
		Pins:       o.Pins,
		CacheFile:  o.CacheFile,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name: "lago", Level: hclog.LevelFromString(level), Output: o.Stderr,
		}),
	})}
}

// managerHost adapts *pluginhost.Manager to PluginHost.
type managerHost struct{ *pluginhost.Manager }

func (m managerHost) Output(ctx context.Context, name string) (output.PluginFormat, error) {
	return m.Manager.Output(ctx, name)
}

func (m managerHost) RunCommand(ctx context.Context, req CommandRequest, stdout, stderr io.Writer) (int, error) {
	impl, err := m.Manager.Command(ctx, req.Verb)
	if err != nil {
		return 0, fmt.Errorf("start plugin verb %s: %w", req.Verb, err)
	}
	return impl.Execute(ctx, &commandv1.ExecuteRequest{
		Verb: req.Verb, Args: req.Args, Flags: req.Flags, Global: req.Global, WorkingDir: req.WorkingDir,
	}, stdout, stderr)
}

// forward is never needed in the full engine.
func (a *app) forward() error { return nil }
