// Command lago builds throw-away multi-VM environments from a declarative
// init file. This package is the CLI: a thin layer over core that parses
// the command line, loads the configuration, wires verbs to handlers
// (handlers.go) and maps errors and signals to exit codes.
//
// It builds two ways. The default build is the full engine: every verb
// runs in-process. Built with `-tags lagolight` it is the front-end
// installed as bin/lago: it links no gRPC, go-plugin or protobuf, serves
// help, version, completion, generate-config and `plugins` from the
// plugins' describe cache, and execs <prefix>/libexec/lago/lago-engine (the
// full build) with the same arguments for everything else. Start-up of
// `lago --help` is dominated by package initialisation and page faults of
// the RPC stack, so the split keeps it close to a hello-world's.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/pluginhost/prestart"
)

func main() {
	if code, ok := hiddenMain(os.Args[1:], os.Stdin, os.Stderr); ok {
		os.Exit(code)
	}
	// Before os.Environ: Take removes the variable so no child sees it.
	ps := takePrestarted(os.Stderr)
	os.Exit(runWith(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Environ(), ps))
}

// run is main without the process: it returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, environ []string) int {
	return runWith(args, stdin, stdout, stderr, environ, nil)
}

// runWith is run with the plugin process the front-end started, if any.
func runWith(args []string, stdin io.Reader, stdout, stderr io.Writer, environ []string, ps *prestart.Process) int {
	a := newApp(stdin, stdout, stderr, environ)
	a.prestarted = ps
	return a.main(args)
}

// signalState records the first of SIGINT, SIGTERM or SIGHUP; that signal
// cancels the root context so the verb's deferred cleanups run, and lago
// then exits 128+signal. A second signal exits at once, for a user who does
// not want to wait for cleanups.
type signalState struct {
	mu  sync.Mutex
	sig syscall.Signal
}

func (s *signalState) get() syscall.Signal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sig
}

func (a *app) main(args []string) int {
	a.args = args
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var st signalState
	// Signals are caught only once a verb is about to run (armSignals from
	// PersistentPreRunE): help and version need no cleanups, and the
	// signal-handling goroutines cost start-up time.
	a.armSignals = func() {
		sigc := make(chan os.Signal, 2)
		signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
		go func() {
			for s := range sigc {
				sig, _ := s.(syscall.Signal)
				st.mu.Lock()
				first := st.sig == 0
				if first {
					st.sig = sig
				}
				st.mu.Unlock()
				if !first {
					a.closeHost()
					os.Exit(128 + int(sig))
				}
				cancel()
			}
		}()
		a.disarmSignals = func() {
			signal.Stop(sigc)
			close(sigc)
		}
	}
	defer func() {
		if a.disarmSignals != nil {
			a.disarmSignals()
		}
	}()

	err := a.execute(ctx, args)
	a.closeHost()
	if sig := st.get(); sig != 0 {
		fmt.Fprintf(a.stderr, "lago: error: interrupted by %v\n", sig)
		return 128 + int(sig)
	}
	code := a.exitCode(err)
	if err != nil {
		// An exit status passed through (a remote command, a plugin verb)
		// was already explained by whoever produced it.
		var ee *errs.ExitError
		if !errors.As(err, &ee) || ee.Message != "" {
			fmt.Fprintf(a.stderr, "lago: error: %v\n", err)
		}
	}
	return code
}

// execute normalises args, adds plugin verbs when needed and runs cobra.
func (a *app) execute(ctx context.Context, args []string) error {
	norm, path, err := normalizeArgs(a.root, args)
	if err != nil {
		return err
	}
	if needsPluginVerbs(path) && !versionOnly(norm, path) {
		a.addPluginVerbs()
		if norm, _, err = normalizeArgs(a.root, args); err != nil {
			return err
		}
	}
	a.root.SetArgs(norm)
	_, err = a.root.ExecuteContextC(ctx)
	return err
}

// versionOnly reports whether cobra will just print the version: --version
// (or -v) given before any verb. Plugin discovery is then wasted time.
func versionOnly(args, path []string) bool {
	if len(path) > 0 {
		return false
	}
	for _, a := range args {
		if a == "--version" || a == "-v" {
			return true
		}
	}
	return false
}
