package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/term"

	"github.com/lago-go/lago/cmd/lago/internal/cli"
	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/lago"
	"github.com/lago-go/lago/core/output"
)

// handlers maps each built-in verb to its implementation: the one place
// where verbs meet the engine (generate-config and plugins are the command
// line's own). The handlers below are thin: they turn the command line
// into calls of the public Go API (core/lago) and print the results;
// every behaviour lives behind it.
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
	"copy-to-vm":    runCopyToVM,
	"copy-from-vm":  runCopyFromVM,
	"collect":       runCollect,
	"service":       runService,
	"deploy":        runDeploy,
	"snapshot":      runSnapshot,
	"revert":        runRevert,
	"export":        runExport,
	"ansible_hosts": runAnsibleHosts,
	"doctor":        runDoctor,
}

// client is the invocation's lago Client (the engine's plugin host).
func client(inv *cli.Invocation) (*lago.Client, error) {
	h, ok := inv.Host().(clientHost)
	if !ok || h.c == nil {
		return nil, errors.New("no lago client: the plugin host is not the engine's")
	}
	return h.c, nil
}

// withEnv runs f on the environment the global options and the current
// folder point at.
func withEnv(f func(ctx context.Context, inv *cli.Invocation, e *lago.Env) error) cli.Handler {
	return func(ctx context.Context, inv *cli.Invocation) error {
		c, err := client(inv)
		if err != nil {
			return err
		}
		e, err := c.Load(ctx, "")
		if err != nil {
			return err
		}
		return f(ctx, inv, e)
	}
}

func runInit(ctx context.Context, inv *cli.Invocation) error {
	c, err := client(inv)
	if err != nil {
		return err
	}
	var o lago.InitOptions
	switch len(inv.Args) {
	case 1:
		o.InitFile = inv.Args[0]
	case 2:
		o.Workdir, o.InitFile = inv.Args[0], inv.Args[1]
	}
	e, err := c.Init(ctx, o)
	if err != nil {
		return err
	}
	if msg := e.SkippedSubnets(); msg != "" {
		fmt.Fprintln(inv.Stderr, "lago:", msg)
	}
	fmt.Fprintf(inv.Stderr, "lago: initialized %s\n", e.Path())
	return nil
}

var runStart = withEnv(func(ctx context.Context, inv *cli.Invocation, e *lago.Env) error {
	c := inv.Config
	return e.Start(ctx, lago.StartOptions{VMs: inv.Args, NoWait: c.StartNoWait, Timeout: c.StartTimeout})
})

var runStop = withEnv(func(ctx context.Context, inv *cli.Invocation, e *lago.Env) error {
	return e.Stop(ctx, inv.Args...)
})

var runShutdown = withEnv(func(ctx context.Context, inv *cli.Invocation, e *lago.Env) error {
	return e.Shutdown(ctx, inv.OptBool("reboot"), inv.Args...)
})

var runStatus = withEnv(func(ctx context.Context, inv *cli.Invocation, e *lago.Env) error {
	doc, err := e.StatusDocument(ctx)
	if err != nil {
		return err
	}
	return inv.Render(ctx, doc)
})

var runSnapshot = withEnv(func(ctx context.Context, inv *cli.Invocation, e *lago.Env) error {
	if inv.OptBool("list") {
		snaps, err := e.Snapshots(ctx)
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
	return e.Snapshot(ctx, inv.Args[0])
})

var runRevert = withEnv(func(ctx context.Context, inv *cli.Invocation, e *lago.Env) error {
	return e.Revert(ctx, inv.Args[0])
})

var runCopyToVM = withEnv(func(ctx context.Context, inv *cli.Invocation, e *lago.Env) error {
	v, err := e.VM(inv.Args[0])
	if err != nil {
		return err
	}
	return v.CopyTo(ctx, inv.Args[1], inv.Args[2])
})

var runCopyFromVM = withEnv(func(ctx context.Context, inv *cli.Invocation, e *lago.Env) error {
	v, err := e.VM(inv.Args[0])
	if err != nil {
		return err
	}
	return v.CopyFrom(ctx, inv.Args[1], inv.Args[2])
})

// runCollect prints, per VM, the artifacts it skipped (with --no-skip the
// error names them) and what it collected.
var runCollect = withEnv(func(ctx context.Context, inv *cli.Invocation, e *lago.Env) error {
	noSkip := inv.OptBool("no-skip")
	res, err := e.Collect(ctx, inv.Opt("output"), lago.CollectOptions{NoSkip: noSkip})
	for _, r := range res {
		if !noSkip {
			for _, s := range r.Skipped {
				fmt.Fprintf(inv.Stderr, "lago: %s: skipped %s: no such file or folder\n", r.VM, s)
			}
		}
		if len(r.Collected) > 0 {
			from := ""
			if r.FromDisks {
				from = " (not running: read from its disks)"
			}
			fmt.Fprintf(inv.Stderr, "lago: %s: %d artifacts (%d files, %d bytes) in %s%s\n", r.VM, len(r.Collected), r.Files, r.Bytes, r.Dir, from)
		}
	}
	return err
})

// runExport exports the stopped VMs; -f json writes the init file as
// JSON, any other format YAML (the original's default formatter cannot be
// read back). --collect-only prints, per VM, the images it would export.
var runExport = withEnv(func(ctx context.Context, inv *cli.Invocation, e *lago.Env) error {
	o := lago.ExportOptions{
		VMs:            inv.OptList("vm-names"),
		Standalone:     inv.OptBool("standalone"),
		Compress:       inv.OptBool("compress"),
		DstDir:         inv.Opt("dst-dir"),
		InitFileName:   inv.Opt("init-file-name"),
		CollectOnly:    inv.OptBool("collect-only"),
		WithoutThreads: inv.OptBool("without-threads"),
	}
	if inv.Config.OutFormat == "json" {
		o.Format = "json"
	}
	res, err := e.Export(ctx, o)
	if err != nil {
		return err
	}
	if o.CollectOnly {
		doc := output.NewMap()
		for _, d := range res.Disks {
			v, _ := doc.Get(d.VM)
			l, _ := v.([]any)
			doc.Set(d.VM, append(l, d.Source))
		}
		return inv.Render(ctx, doc)
	}
	for _, d := range res.Disks {
		fmt.Fprintf(inv.Stderr, "lago: %s: disk %s exported to %s\n", d.VM, d.Disk, d.Path)
	}
	fmt.Fprintf(inv.Stderr, "lago: init file %s\n", res.InitFile)
	return nil
})

var runDeploy = withEnv(func(ctx context.Context, inv *cli.Invocation, e *lago.Env) error {
	return e.Deploy(ctx, inv.Stdout, inv.Stderr)
})

// runAnsibleHosts prints the ansible inventory: the original's INI text,
// or with -f json/yaml ansible's JSON inventory shape (for a script).
var runAnsibleHosts = withEnv(func(ctx context.Context, inv *cli.Invocation, e *lago.Env) error {
	in, err := e.Inventory(ctx, inv.OptList("keys")...)
	if err != nil {
		return err
	}
	for _, name := range in.NoAddress {
		fmt.Fprintf(inv.Stderr, "lago: warning: vm %s has no address lago knows: listed without ansible_host\n", name)
	}
	switch inv.Config.OutFormat {
	case "", "default", "flat":
		_, err = io.WriteString(inv.Stdout, in.INI())
		return err
	}
	return inv.Render(ctx, in.Document())
})

// consoleEscape (Ctrl-]) detaches from a console, as in virsh console.
const consoleEscape = 0x1d

// runConsole attaches the terminal to the VM's serial console: raw mode on
// a terminal, so keys reach the guest as typed, until Ctrl-] or EOF.
var runConsole = withEnv(func(ctx context.Context, inv *cli.Invocation, e *lago.Env) error {
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
	err := e.Console(ctx, inv.Args[0], &escapeReader{r: in, onEscape: cancel}, inv.Stdout)
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
var runShell = withEnv(func(ctx context.Context, inv *cli.Invocation, e *lago.Env) error {
	return shellVerb(ctx, inv, e)
})

// commandLineShell is the part of lago.Env the shell verb uses.
type commandLineShell interface {
	ExecShell(ctx context.Context, vm, line string, stdin io.Reader, stdout, stderr io.Writer) (int, error)
}

// shellVerb joins the words after VM with single spaces into one command
// line for the guest's shell, as `ssh host CMD...` and the original did:
// `lago shell vm0 'exit 7'` exits 7 and `lago shell vm0 'a | b'` runs the
// pipe in the guest. No words opens an interactive shell.
func shellVerb(ctx context.Context, inv *cli.Invocation, sh commandLineShell) error {
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
	code, err := sh.ExecShell(ctx, vm, line, stdin, inv.Stdout, inv.Stderr)
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
		c, err := client(inv)
		if err != nil {
			return err
		}
		orphans, err := c.Orphans(ctx)
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
		return c.RemoveOrphans(ctx, orphans)
	}
	return withEnv(func(ctx context.Context, inv *cli.Invocation, e *lago.Env) error {
		return e.Cleanup(ctx)
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
	c, err := client(inv)
	if err != nil {
		return err
	}
	o := lago.DestroyOptions{AllPrefixes: inv.OptBool("all-prefixes")}
	if !inv.OptBool("yes") {
		o.Confirm = func(path string) bool { return confirm(inv, path) }
	}
	return c.Destroy(ctx, o)
}

// workdirOf is the workdir a listing verb works on: its argument, the
// --workdir-path option, or the one found from the current folder.
func workdirOf(inv *cli.Invocation, c *lago.Client) (string, error) {
	if len(inv.Args) > 0 && inv.Verb == "list" {
		return filepath.Abs(inv.Args[0])
	}
	return c.Workdir("")
}

func runList(_ context.Context, inv *cli.Invocation) error {
	c, err := client(inv)
	if err != nil {
		return err
	}
	w, err := workdirOf(inv, c)
	if err != nil {
		return err
	}
	names, err := c.Prefixes(w)
	if err != nil {
		return err
	}
	for _, n := range names {
		fmt.Fprintln(inv.Stdout, n)
	}
	return nil
}

func runSetCurrent(_ context.Context, inv *cli.Invocation) error {
	c, err := client(inv)
	if err != nil {
		return err
	}
	w, err := workdirOf(inv, c)
	if err != nil {
		return err
	}
	return c.SetCurrent(w, inv.Args[0])
}

// runService shows, starts or stops a service of a VM.
var runService = withEnv(func(ctx context.Context, inv *cli.Invocation, e *lago.Env) error {
	v, err := e.VM(inv.Args[0])
	if err != nil {
		return err
	}
	return serviceVerb(ctx, inv, v)
})

// serviceVM is the part of lago.VM the service verb uses.
type serviceVM interface {
	ServiceState(ctx context.Context, service string) (string, error)
	StartService(ctx context.Context, service string) error
	StopService(ctx context.Context, service string) error
}

// serviceExit maps a service state to the LSB status exit code, so
// scripts can test `lago service vm0 sshd` as they would `service sshd
// status` in the guest.
var serviceExit = map[string]int{
	lago.ServiceActive:   0,
	lago.ServiceInactive: 3,
	lago.ServiceMissing:  4,
}

// serviceVerb runs `service VM NAME [status|start|stop]`: status prints
// "NAME: STATE" and exits 0 active, 3 inactive, 4 missing (an unknown
// state exits 1, the LSB's "dead or unknown"); start and stop exit 0 once
// done.
func serviceVerb(ctx context.Context, inv *cli.Invocation, v serviceVM) error {
	name, action := inv.Args[1], "status"
	if len(inv.Args) > 2 {
		action = inv.Args[2]
	}
	switch action {
	case "status":
		st, err := v.ServiceState(ctx, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(inv.Stdout, "%s: %s\n", name, st)
		code, ok := serviceExit[st]
		if !ok {
			code = 1
		}
		if code != 0 {
			return errs.Exit(code)
		}
		return nil
	case "start":
		return v.StartService(ctx, name)
	case "stop":
		return v.StopService(ctx, name)
	}
	return errs.User(fmt.Errorf("service: unknown action %q: want status, start or stop", action))
}
