// Command lago-engine is the lago that runs verbs: the command line of
// package internal/cli over the full plugin host (host.go) and the verbs'
// handlers (handlers.go). It is installed as
// <prefix>/libexec/lago/lago-engine; bin/lago, the front-end, execs it with
// its own arguments for every verb that does real work, and it works the
// same when run by hand.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/lago-go/lago/cmd/lago/internal/cli"
	"github.com/lago-go/lago/core/lago"
	"github.com/lago-go/lago/core/pluginhost/prestart"
)

func main() {
	if code, ok := hiddenMain(os.Args[1:], os.Stdin, os.Stderr); ok {
		os.Exit(code)
	}
	// Before os.Environ: Take removes the variable so no child sees it.
	e := &engine{prestarted: takePrestarted(os.Stderr)}
	code := cli.Run(e.backend(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Environ())
	e.release()
	os.Exit(code)
}

// engine is one run of the engine.
type engine struct {
	// prestarted is the plugin process the front-end started for this
	// verb (package prestart) until the plugin host takes it over.
	prestarted *prestart.Process
}

func (e *engine) backend() cli.Backend {
	return cli.Backend{Handlers: handlers, NewHost: e.newHost}
}

// newHost creates the plugin host, handing it the prestarted process.
func (e *engine) newHost(o cli.HostOptions) cli.PluginHost {
	ps := e.prestarted
	e.prestarted = nil
	return newPluginHost(o, ps)
}

// release kills the prestarted process when the verb never needed a
// plugin host (it failed before, say for want of a prefix).
func (e *engine) release() {
	if e.prestarted != nil {
		e.prestarted.Discard()
		e.prestarted = nil
	}
}

// takePrestarted takes over the plugin process the front-end started
// before it exec'd this engine. A value it cannot use is reported and
// ignored: the plugin host then starts the plugin itself.
func takePrestarted(stderr io.Writer) *prestart.Process {
	ps, err := prestart.Take()
	if err != nil {
		fmt.Fprintf(stderr, "lago: warning: ignoring the prestarted plugin: %v\n", err)
		return nil
	}
	return ps
}

// hiddenMain runs the engine's internal entry points, which are not verbs:
// `__ssh-mux` is the ssh connection keeper that SSHClient starts (see
// core/ssh/muxclient.go). It reads its request on stdin and has no flags.
func hiddenMain(args []string, stdin io.Reader, stderr io.Writer) (int, bool) {
	if len(args) == 0 || args[0] != lago.SSHMuxVerb {
		return 0, false
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	if err := lago.ServeSSHMux(ctx, stdin); err != nil {
		fmt.Fprintf(stderr, "lago %s: %v\n", lago.SSHMuxVerb, err)
		return 1, true
	}
	return 0, true
}
