//go:build !lagolight

package main

// handlers maps each built-in verb to its implementation: the one place to
// wire verbs to the engine. It is compiled only into the full engine, so
// the packages the handlers import (plugin host, libvirt clients, ssh) stay
// out of the light front-end that serves help and completion.
var handlers = map[string]Handler{
	"init":            notImplemented,
	"start":           notImplemented,
	"stop":            notImplemented,
	"shutdown":        notImplemented,
	"destroy":         notImplemented,
	"cleanup":         notImplemented,
	"status":          notImplemented,
	"list":            notImplemented,
	"set-current":     notImplemented,
	"shell":           notImplemented,
	"console":         notImplemented,
	"copy-to-vm":      notImplemented,
	"copy-from-vm":    notImplemented,
	"collect":         notImplemented,
	"deploy":          notImplemented,
	"snapshot":        notImplemented,
	"revert":          notImplemented,
	"export":          notImplemented,
	"ansible_hosts":   notImplemented,
	"generate-config": runGenerateConfig,
	"plugins":         runPlugins,
}
