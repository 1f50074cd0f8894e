// Package cli is lago's command line, shared by its two programs: it parses
// the command line, loads the configuration, serves help, completion,
// generate-config and `plugins`, and runs every other verb through the
// Backend its main passes in; it maps errors and signals to exit codes.
//
// The two programs differ only in their Backend. bin/lago (package
// cmd/lago) is the front-end: it links no gRPC, go-plugin or protobuf, its
// plugin host only reads the plugins' describe cache, and it forwards
// every verb that does real work by exec'ing libexec/lago/lago-engine.
// lago-engine (package cmd/lago/engine) has the full plugin host and the
// verbs' handlers. Start-up of `lago --help` is dominated by package
// initialisation and page faults of the RPC stack, so this package must not
// link it either (cmd/lago's TestFrontEndLinksNoRPC).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/lago-go/lago/core/config"
	"github.com/lago-go/lago/core/errs"
)

// Backend is what a program adds to the shared command line.
type Backend struct {
	// Handlers implement built-in verbs; generate-config and plugins are
	// the command line's own and need no entry.
	Handlers map[string]Handler
	// NewHost creates the plugin host, on first use.
	NewHost func(HostOptions) PluginHost
	// Forward, when set, hands what this program does not do itself to
	// another program: a built-in verb without a handler, a command
	// plugin's verb, output in an output plugin's format. It returns only
	// on failure. A program with Forward set starts no plugin process.
	// Without it, plugin verbs and formats run here and a built-in verb
	// without a handler is not implemented.
	Forward func(ForwardRequest) error
}

// ForwardRequest is a run handed over to another program (Backend.Forward).
type ForwardRequest struct {
	// Args are the arguments as given, to be passed on unchanged.
	Args []string
	// Environ is the environment lago was started with.
	Environ []string
	// Config is the loaded configuration; nil when none was loaded.
	Config *config.Config
	// Host is this program's plugin host, for plugin discovery.
	Host PluginHost
	// Provider is set for a built-in verb that talks to VM providers
	// (verbSpec.Provider).
	Provider bool
}

// Run runs the command line args with backend and returns the exit
// status.
func Run(backend Backend, args []string, stdin io.Reader, stdout, stderr io.Writer, environ []string) int {
	return newApp(backend, stdin, stdout, stderr, environ).main(args)
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

// forward hands the run to Backend.Forward; provider says whether the verb
// talks to VM providers.
func (a *app) forward(provider bool) error {
	return a.backend.Forward(ForwardRequest{
		Args: a.args, Environ: a.environ, Config: a.cfg, Host: a.pluginHost(), Provider: provider,
	})
}
