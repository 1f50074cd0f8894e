package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestEngineCallsOnlyThePublicAPI: the engine's handlers are a thin client
// of the Go API (core/lago); they must not reach past it into the
// orchestrator, the plugin host, ssh or the prefix layout. The packages
// the API's own signatures use (config, output, errs) and the plugin
// catalog types the command line shares with the front-end are allowed.
func TestEngineCallsOnlyThePublicAPI(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := map[string]bool{
		"github.com/lago-go/lago/core/lago":                 true,
		"github.com/lago-go/lago/core/config":               true,
		"github.com/lago-go/lago/core/output":               true,
		"github.com/lago-go/lago/core/errs":                 true,
		"github.com/lago-go/lago/core/pluginhost/discovery": true, // PluginHost's catalog types
		"github.com/lago-go/lago/core/pluginhost/prestart":  true, // the front-end's hand-over
		"github.com/lago-go/lago/sdk/plugininfo":            true,
		"github.com/lago-go/lago/cmd/lago/internal/cli":     true,
	}
	var seen bool
	for _, pkg := range strings.Fields(string(out)) {
		if !strings.HasPrefix(pkg, "github.com/lago-go/lago/") {
			continue
		}
		if pkg == "github.com/lago-go/lago/core/lago" {
			seen = true
		}
		if !allowed[pkg] {
			t.Errorf("the engine imports %s: call it through core/lago", pkg)
		}
	}
	if !seen {
		t.Error("the engine does not import core/lago at all")
	}
}
