package sdk

import "github.com/lago-go/lago/sdk/plugininfo"

// The describe types live in package plugininfo (no RPC dependencies) and
// are aliased here so plugin authors only import sdk.
type (
	// ComponentInfo describes a component in a plugin's describe output.
	ComponentInfo = plugininfo.ComponentInfo
	// ConfigField is one setting a component accepts.
	ConfigField = plugininfo.ConfigField
	// CommandSpec declares one CLI verb of a command component.
	CommandSpec = plugininfo.CommandSpec
	// FlagSpec declares one flag of a verb.
	FlagSpec = plugininfo.FlagSpec
	// Description is what `lago-plugin-x describe` prints as JSON.
	Description = plugininfo.Description
)

// Component pairs a component's description with its implementation, which
// must implement the interface of Info.Kind (Provider, VMType,
// ServiceManager, Builder, OutputFormat or Command) and may implement
// Configurer.
type Component struct {
	Info ComponentInfo
	Impl any
}

// Plugin is everything one plugin binary serves.
type Plugin struct {
	Name       string
	Version    string
	Components []Component
}
