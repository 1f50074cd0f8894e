// Command lago-plugin-command-example is the example of a lago command
// plugin: it adds the verb `lago hello`. Read it to write your own.
//
// A command plugin declares its verbs and their flags in its ComponentInfo.
// lago reads that declaration from `lago-plugin-command-example describe`
// (cached, no RPC), builds the cobra command from it - so help, completion
// and the global flags behave as for built-in verbs - parses the command
// line, and calls Execute with the verb, its arguments and its flags as
// strings. Execute streams stdout and stderr back and returns the exit code.
package main

import (
	"github.com/lago-go/lago/sdk"
)

// version is set at link time by the Makefile.
var version = "dev"

// helloSpec declares `lago hello [--name NAME] [--shout] [--exit CODE]`.
var helloSpec = sdk.CommandSpec{
	Name:  "hello",
	Short: "Say hello (example command plugin)",
	Long: "hello greets NAME on stdout, writes a note on stderr and exits " +
		"with the --exit code. Inside a prefix it also names the environment.",
	Usage:   "hello [--name NAME] [--shout] [--exit CODE]",
	MinArgs: 0,
	MaxArgs: 0,
	Flags: []sdk.FlagSpec{
		{Name: "name", Shorthand: "n", Type: "string", Default: "world", Usage: "who to greet"},
		{Name: "shout", Type: "bool", Default: "false", Usage: "greet in capitals"},
		{Name: "exit", Type: "int", Default: "0", Usage: "exit code to return"},
	},
}

// info is the component's describe entry; the tests reuse it.
var info = sdk.ComponentInfo{
	Name:        "example",
	Kind:        sdk.KindCommand,
	Description: "example command plugin: lago hello",
	Commands:    []sdk.CommandSpec{helloSpec},
}

func main() {
	sdk.Serve(sdk.Plugin{
		Name:       "command-example",
		Version:    version,
		Components: []sdk.Component{{Info: info, Impl: &hello{}}},
	})
}
