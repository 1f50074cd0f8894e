// Package plugininfo holds the plain data types of a plugin's describe
// output. It imports nothing heavy (no gRPC, no protobuf) so that plugin
// discovery and `lago --help` can use it without paying the package
// initialisation cost of the RPC stack; package sdk re-exports every type.
package plugininfo

// ComponentInfo describes a component in a plugin's describe output.
type ComponentInfo struct {
	Name         string        `json:"name"`
	Kind         string        `json:"kind"`
	Description  string        `json:"description,omitempty"`
	Capabilities []string      `json:"capabilities,omitempty"`
	ConfigSchema []ConfigField `json:"config_schema,omitempty"`
	// Commands are the verbs of a command component.
	Commands []CommandSpec `json:"commands,omitempty"`
}

// ConfigField is one setting a component accepts.
type ConfigField struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Default     string `json:"default,omitempty"`
	Description string `json:"description,omitempty"`
	Required    bool   `json:"required,omitempty"`
}

// CommandSpec declares one CLI verb of a command component.
type CommandSpec struct {
	Name    string     `json:"name"`
	Short   string     `json:"short,omitempty"`
	Long    string     `json:"long,omitempty"`
	Usage   string     `json:"usage,omitempty"`
	Flags   []FlagSpec `json:"flags,omitempty"`
	MinArgs int        `json:"min_args"`
	// MaxArgs < 0 means unlimited.
	MaxArgs int `json:"max_args"`
}

// FlagSpec declares one flag of a verb. Type is "string", "bool", "int" or
// "string-slice".
type FlagSpec struct {
	Name      string `json:"name"`
	Shorthand string `json:"shorthand,omitempty"`
	Type      string `json:"type"`
	Default   string `json:"default,omitempty"`
	Usage     string `json:"usage,omitempty"`
}

// Description is what `lago-plugin-x describe` prints as JSON and what the
// core caches.
type Description struct {
	Name        string          `json:"name"`
	Version     string          `json:"version"`
	APIVersions []int           `json:"api_versions"`
	Components  []ComponentInfo `json:"components"`
}

// Component kinds.
const (
	KindProvider = "provider"
	KindVMType   = "vmtype"
	KindService  = "service"
	KindBuilder  = "builder"
	KindOutput   = "output"
	KindCommand  = "command"
)

// The go-plugin handshake as plain constants, so that the light front-end
// can start a plugin process the way go-plugin does (see
// core/pluginhost/prestart) without linking go-plugin. sdk.HandshakeConfig
// is built from them.
const (
	// APIVersion is the go-plugin protocol version (sdk.APIVersion).
	APIVersion = 1
	// MagicCookieKey and MagicCookieValue only keep users from running a
	// plugin by hand by mistake; they are not a security feature.
	MagicCookieKey   = "LAGO_PLUGIN_MAGIC_COOKIE"
	MagicCookieValue = "d3b1c6b0e6a14b7f9a6e0c1f2f5a8e47-lago"
)
