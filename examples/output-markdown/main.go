// Command lago-plugin-markdown is lago's example output plugin: it renders
// any document lago prints (`lago -f markdown status`, `lago -f markdown
// plugins`, ...) as Markdown, for a pull request, a wiki page or a CI
// summary. It imports only lago's sdk, as a third-party plugin would;
// docs/plugins/output.md explains the contract.
package main

import (
	"context"

	"github.com/lago-go/lago/sdk"
)

// version is set at link time by the Makefile.
var version = "dev"

// info is the component's describe entry: its name is the format's name
// on lago's command line.
var info = sdk.ComponentInfo{
	Name:        "markdown",
	Kind:        sdk.KindOutput,
	Description: "Markdown: headings for sections, tables for lists of records",
}

func main() {
	sdk.Serve(sdk.Plugin{Name: "markdown", Version: version, Components: []sdk.Component{{Info: info, Impl: markdown{}}}})
}

// markdown is the output component. It keeps no state, so concurrent
// calls need no locking.
type markdown struct{}

// Format renders documentJSON; a document that is not JSON is an error,
// which reaches lago as a diagnostic.
func (markdown) Format(_ context.Context, documentJSON []byte) ([]byte, error) {
	return render(documentJSON)
}
