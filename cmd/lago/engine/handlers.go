package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/lago-go/lago/cmd/lago/internal/cli"
	"github.com/lago-go/lago/core/env"
	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/output"
	"github.com/lago-go/lago/core/prefix"
	"github.com/lago-go/lago/core/template"
)

// handlers maps each built-in verb to its implementation: the one place
// where verbs meet the engine (generate-config and plugins are the command
// line's own). The handlers below are thin: they turn the command line
// into core/env calls and print the results; every behaviour lives in
// core/env.
var handlers = map[string]cli.Handler{
	"init":          runInit,
	"start":         runStart,
	"stop":          runStop,
	"shutdown":      runShutdown,
	"destroy":       runDestroy,
	"cleanup":       runCleanup,
	"status":        runStatus,
	"list":          runList,
	"set-current":   runSetCurrent,
	"shell":         runShell,
	"console":       runConsole,
	"copy-to-vm":    cli.NotImplemented,
	"copy-from-vm":  cli.NotImplemented,
	"collect":       cli.NotImplemented,
	"deploy":        runDeploy,
	"snapshot":      runSnapshot,
	"revert":        runRevert,
	"export":        cli.NotImplemented,
	"ansible_hosts": cli.NotImplemented,
}

// newEnv builds the orchestrator for one invocation, over the engine's
// plugin host.
func newEnv(inv *cli.Invocation) (*env.Manager, error) {
	pm := pluginHost(inv)
	if pm == nil {
		return nil, errors.New("no plugin host")
	}
	logf := func(format string, a ...any) { fmt.Fprintf(inv.Stderr, "lago: "+format+"\n", a...) }
	progress := template.NewProgress(os.Stderr, logf, 10*time.Second)
	opts := env.OptionsFromConfig(inv.Config)
	opts.Logger = slog.New(slog.NewTextHandler(inv.Stderr, &slog.HandlerOptions{Level: slogLevel(inv.Config.LogLevel)}))
	return env.New(opts, env.RealDeps(pm, inv.Config, progress)), nil
}

func slogLevel(l string) slog.Level {
	switch strings.ToLower(l) {
	case "debug":
		return slog.LevelDebug
	case "info":
		// lago's info chatter goes to the prefix log, not the terminal.
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelWarn
}

// findPrefix locates the prefix the global options and the current folder
// point at.
func findPrefix(inv *cli.Invocation) (*prefix.Prefix, error) {
	c := inv.Config
	p, err := prefix.Find(prefix.FindOptions{PrefixPath: c.PrefixPath, WorkdirPath: c.WorkdirPath, PrefixName: c.PrefixName})
	if err != nil {
		if errors.Is(err, prefix.ErrNotFound) {
			return nil, errs.User(err)
		}
		return nil, err
	}
	return p, nil
}

// withEnv runs f with the orchestrator and the prefix's path.
func withEnv(f func(ctx context.Context, inv *cli.Invocation, m *env.Manager, prefixPath string) error) cli.Handler {
	return func(ctx context.Context, inv *cli.Invocation) error {
		p, err := findPrefix(inv)
		if err != nil {
			return err
		}
		m, err := newEnv(inv)
		if err != nil {
			return err
		}
		return f(ctx, inv, m, p.Path)
	}
}

func runInit(ctx context.Context, inv *cli.Invocation) error {
	m, err := newEnv(inv)
	if err != nil {
		return err
	}
	o := env.InitOptionsFromConfig(inv.Config)
	switch len(inv.Args) {
	case 1:
		o.InitFile = inv.Args[0]
	case 2:
		o.Workdir, o.InitFile = inv.Args[0], inv.Args[1]
	}
	res, err := m.Init(ctx, o)
	if err != nil {
		return err
	}
	if msg := res.SkippedMessage(); msg != "" {
		fmt.Fprintln(inv.Stderr, "lago:", msg)
	}
	fmt.Fprintf(inv.Stderr, "lago: initialized %s\n", res.Prefix)
	return nil
}

var runStart = withEnv(func(ctx context.Context, inv *cli.Invocation, m *env.Manager, p string) error {
	c := inv.Config
	return m.Start(ctx, p, inv.Args, env.StartOptions{NoWait: c.StartNoWait, Timeout: c.StartTimeout, Parallelism: c.StartParallelism})
})

var runStop = withEnv(func(ctx context.Context, inv *cli.Invocation, m *env.Manager, p string) error {
	return m.Stop(ctx, p, inv.Args)
})

var runShutdown = withEnv(func(ctx context.Context, inv *cli.Invocation, m *env.Manager, p string) error {
	return m.Shutdown(ctx, p, inv.Args, inv.OptBool("reboot"))
})

var runStatus = withEnv(func(ctx context.Context, inv *cli.Invocation, m *env.Manager, p string) error {
	doc, err := m.StatusDocument(ctx, p)
	if err != nil {
		return err
	}
	return inv.Render(ctx, doc)
})

var runSnapshot = withEnv(func(ctx context.Context, inv *cli.Invocation, m *env.Manager, p string) error {
	if inv.OptBool("list") {
		snaps, err := m.ListSnapshots(ctx, p)
		if err != nil {
			return err
		}
		doc := output.NewMap()
		vms := make([]string, 0, len(snaps))
		for vm := range snaps {
			vms = append(vms, vm)
		}
		sort.Strings(vms)
		for _, vm := range vms {
			doc.Set(vm, strings.Join(snaps[vm], ", "))
		}
		return inv.Render(ctx, doc)
	}
	if len(inv.Args) != 1 {
		return errs.Userf("snapshot needs a NAME (or --list)")
	}
	return m.Snapshot(ctx, p, inv.Args[0])
})

var runRevert = withEnv(func(ctx context.Context, inv *cli.Invocation, m *env.Manager, p string) error {
	return m.Revert(ctx, p, inv.Args[0])
})

var runDeploy = withEnv(func(ctx context.Context, inv *cli.Invocation, m *env.Manager, p string) error {
	return m.Deploy(ctx, p, inv.Stdout, inv.Stderr)
})

// consoleEscape (Ctrl-]) detaches from a console, as in virsh console.
const consoleEscape = 0x1d

// runConsole attaches the terminal to the VM's serial console: raw mode on
// a terminal, so keys reach the guest as typed, until Ctrl-] or EOF.
var runConsole = withEnv(func(ctx context.Context, inv *cli.Invocation, m *env.Manager, p string) error {
	in := inv.Stdin
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		old, err := term.MakeRaw(int(f.Fd()))
		if err != nil {
			return fmt.Errorf("console: raw terminal: %w", err)
		}
		defer term.Restore(int(f.Fd()), old)
		fmt.Fprintf(inv.Stderr, "Connected to %s's console; escape character is ^]\r\n", inv.Args[0])
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err := m.Console(ctx, p, inv.Args[0], &escapeReader{r: in, onEscape: cancel}, inv.Stdout)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
})

// escapeReader passes input through until the escape byte, then ends the
// session.
type escapeReader struct {
	r        io.Reader
	onEscape func()
}

func (e *escapeReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if i := bytes.IndexByte(p[:n], consoleEscape); i >= 0 {
		e.onEscape()
		return i, io.EOF
	}
	return n, err
}

// runShell runs CMD in the VM and exits with its status. A single CMD that
// names a local file is sent as a script to `bash -s`, as the original.
var runShell = withEnv(func(ctx context.Context, inv *cli.Invocation, m *env.Manager, p string) error {
	return shellVerb(ctx, inv, m, p)
})

// commandLineShell is the part of env.Manager the shell verb uses.
type commandLineShell interface {
	ShellCommandLine(ctx context.Context, prefix, vm, line string, stdin io.Reader, stdout, stderr io.Writer) (int, error)
}

// shellVerb joins the words after VM with single spaces into one command
// line for the guest's shell, as `ssh host CMD...` and the original did:
// `lago shell vm0 'exit 7'` exits 7 and `lago shell vm0 'a | b'` runs the
// pipe in the guest. No words opens an interactive shell.
func shellVerb(ctx context.Context, inv *cli.Invocation, sh commandLineShell, p string) error {
	vm, words := inv.Args[0], inv.Args[1:]
	stdin := inv.Stdin
	line := strings.Join(words, " ")
	if len(words) == 1 {
		if st, err := os.Stat(words[0]); err == nil && st.Mode().IsRegular() {
			f, err := os.Open(words[0])
			if err != nil {
				return errs.User(err)
			}
			defer f.Close()
			stdin, line = bufio.NewReader(f), "bash -s"
		}
	}
	code, err := sh.ShellCommandLine(ctx, p, vm, line, stdin, inv.Stdout, inv.Stderr)
	if err != nil {
		return err
	}
	if code != 0 {
		return errs.Exit(code)
	}
	return nil
}

func runCleanup(ctx context.Context, inv *cli.Invocation) error {
	if inv.OptBool("orphans") {
		m, err := newEnv(inv)
		if err != nil {
			return err
		}
		orphans, err := m.Orphans(ctx)
		if err != nil {
			return err
		}
		for _, o := range orphans {
			if o.Kept != "" {
				fmt.Fprintf(inv.Stdout, "keeping %s: %s\n", o, o.Kept)
				continue
			}
			fmt.Fprintf(inv.Stdout, "removing orphan %s\n", o)
		}
		return m.RemoveOrphans(ctx, orphans)
	}
	return withEnv(func(ctx context.Context, inv *cli.Invocation, m *env.Manager, p string) error {
		return m.Cleanup(ctx, p)
	})(ctx, inv)
}

// confirm asks the original's question; an empty answer is yes.
func confirm(inv *cli.Invocation, path string) bool {
	fmt.Fprintf(inv.Stdout, "Do you really want to destroy %s? [Yn] ", path)
	line, err := bufio.NewReader(inv.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return false
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "" || a == "y" || a == "yes"
}

func runDestroy(ctx context.Context, inv *cli.Invocation) error {
	m, err := newEnv(inv)
	if err != nil {
		return err
	}
	if inv.OptBool("all-prefixes") {
		w, err := prefix.FindWorkdir(prefix.FindOptions{WorkdirPath: inv.Config.WorkdirPath})
		if err != nil {
			return errs.User(err)
		}
		if !inv.OptBool("yes") && !confirm(inv, w.Path) {
			return errs.Userf("not destroying %s", w.Path)
		}
		return m.DestroyAll(ctx, w.Path)
	}
	p, err := findPrefix(inv)
	if err != nil {
		// A first init killed before it linked `current` leaves a workdir
		// that discovery cannot see; destroy removes that too.
		w := inv.Config.WorkdirPath
		if w == "" {
			w = ".lago"
		}
		if _, serr := os.Lstat(filepath.Join(w, prefix.CurrentLink)); serr == nil {
			return err
		}
		if st, serr := os.Stat(w); serr != nil || !st.IsDir() {
			return err
		}
		abs, aerr := filepath.Abs(w)
		if aerr != nil {
			return err
		}
		if !inv.OptBool("yes") && !confirm(inv, abs) {
			return errs.Userf("not destroying %s", abs)
		}
		return m.DestroyUnlinkedWorkdir(ctx, abs)
	}
	if !inv.OptBool("yes") && !confirm(inv, p.Path) {
		return errs.Userf("not destroying %s", p.Path)
	}
	return m.DestroyPrefix(ctx, p)
}

// workdirOf is the workdir a listing verb works on: its argument, the
// --workdir-path option, or the one found from the current folder.
func workdirOf(inv *cli.Invocation) (string, error) {
	if len(inv.Args) > 0 && inv.Verb == "list" {
		return filepath.Abs(inv.Args[0])
	}
	w, err := prefix.FindWorkdir(prefix.FindOptions{WorkdirPath: inv.Config.WorkdirPath})
	if err != nil {
		return "", errs.User(err)
	}
	return w.Path, nil
}

func runList(_ context.Context, inv *cli.Invocation) error {
	w, err := workdirOf(inv)
	if err != nil {
		return err
	}
	names, err := env.ListPrefixes(w)
	if err != nil {
		return err
	}
	for _, n := range names {
		fmt.Fprintln(inv.Stdout, n)
	}
	return nil
}

func runSetCurrent(_ context.Context, inv *cli.Invocation) error {
	w, err := workdirOf(inv)
	if err != nil {
		return err
	}
	return env.SetCurrent(w, inv.Args[0])
}
