package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lago-go/lago/cmd/lago/internal/cli"
	"github.com/lago-go/lago/core/output"
	"github.com/lago-go/lago/core/pluginhost/discovery"
	"github.com/lago-go/lago/sdk/plugininfo"
)

// noPlugins is a cli.PluginHost with no plugins, as a test installs one.
type noPlugins struct{}

func (noPlugins) Discover() ([]discovery.Info, error)                         { return nil, nil }
func (noPlugins) Components(string) ([]plugininfo.ComponentInfo, error)       { return nil, nil }
func (noPlugins) Output(context.Context, string) (output.PluginFormat, error) { return nil, nil }
func (noPlugins) Close()                                                      {}
func (noPlugins) RunCommand(context.Context, cli.CommandRequest, io.Writer, io.Writer) (int, error) {
	return 0, nil
}

// runEngine runs the engine's command line in-process with an isolated
// environment, the handlers hs and the plugin host host.
func runEngine(t *testing.T, host cli.PluginHost, hs map[string]cli.Handler, args ...string) (code int, stderr string) {
	t.Helper()
	home := t.TempDir()
	environ := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_CONFIG_DIRS=" + filepath.Join(home, "xdg"), "XDG_CACHE_HOME=" + filepath.Join(home, ".cache")}
	var out, errb bytes.Buffer
	backend := cli.Backend{Handlers: hs, NewHost: func(cli.HostOptions) cli.PluginHost { return host }}
	code = cli.Run(backend, args, strings.NewReader(""), &out, &errb, environ)
	return code, errb.String()
}
