// Command lago-plugin-provider-libvirt serves lago's libvirt provider
// component ("libvirt") over the lago plugin protocol.
package main

import (
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/lago-go/lago/plugins/provider-libvirt/provider"
	"github.com/lago-go/lago/sdk"
)

// version is set by the Makefile's -ldflags like the rest of lago.
var version = "dev"

func main() {
	// go-plugin forwards the plugin's stderr to the core, which re-emits
	// JSON log lines under the plugin's name.
	log := hclog.New(&hclog.LoggerOptions{Name: "libvirt", Output: os.Stderr, JSONFormat: true, Level: hclog.Debug})
	sdk.Serve(sdk.Plugin{
		Name:    "provider-libvirt",
		Version: version,
		Components: []sdk.Component{
			{Info: provider.Info(), Impl: provider.New(log)},
		},
	})
}
