// Command lago-plugin-output-json is lago's json output format: it renders
// a document the way the original Lago's `lago -f json status` did, i.e.
// Python's json.dumps(doc, indent=4, sort_keys=True) followed by a newline.
// The core already sends object keys sorted, so the plugin keeps the
// document's key order rather than sorting again.
package main

import (
	"context"

	"github.com/lago-go/lago/sdk"
)

// version is set at link time by the Makefile.
var version = "dev"

func main() {
	sdk.Serve(sdk.Plugin{
		Name:    "output-json",
		Version: version,
		Components: []sdk.Component{{
			Info: sdk.ComponentInfo{
				Name:        "json",
				Kind:        sdk.KindOutput,
				Description: "JSON, indented 4, keys in document order (as Python's json.dumps(indent=4, sort_keys=True))",
			},
			Impl: jsonFormat{},
		}},
	})
}

// jsonFormat is the "json" output component.
type jsonFormat struct{}

// Format re-encodes documentJSON in Python's json.dumps style.
func (jsonFormat) Format(_ context.Context, documentJSON []byte) ([]byte, error) {
	return render(documentJSON)
}
