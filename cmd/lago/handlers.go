//go:build !lagolight

package main

// handlers maps each built-in verb to its implementation: the one place to
// wire verbs to the engine. It is compiled only into the full engine, so
// the packages the handlers import (plugin host, libvirt clients, ssh) stay
// out of the light front-end that serves help and completion.
var handlers = map[string]Handler{
	"init":            runInit,
	"start":           runStart,
	"stop":            runStop,
	"shutdown":        runShutdown,
	"destroy":         runDestroy,
	"cleanup":         runCleanup,
	"status":          runStatus,
	"list":            runList,
	"set-current":     runSetCurrent,
	"shell":           runShell,
	"console":         runConsole,
	"copy-to-vm":      notImplemented,
	"copy-from-vm":    notImplemented,
	"collect":         notImplemented,
	"deploy":          runDeploy,
	"snapshot":        runSnapshot,
	"revert":          runRevert,
	"export":          notImplemented,
	"ansible_hosts":   notImplemented,
	"generate-config": runGenerateConfig,
	"plugins":         runPlugins,
}
