package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/output"
	"github.com/lago-go/lago/core/pluginhost/discovery"
	"github.com/lago-go/lago/sdk/plugininfo"
)

// fakeHost is an in-memory plugin host.
type fakeHost struct {
	infos   []discovery.Info
	started atomic.Int32 // plugin "processes" started
	closed  atomic.Int32
	lastReq CommandRequest
	gotDoc  []byte
}

func (f *fakeHost) Discover() ([]discovery.Info, error) { return f.infos, nil }

func (f *fakeHost) Components(kind string) ([]plugininfo.ComponentInfo, error) {
	var out []plugininfo.ComponentInfo
	for _, p := range f.infos {
		if p.Refused || p.Shadowed {
			continue
		}
		for _, c := range p.Components {
			if kind == "" || c.Kind == kind {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

func (f *fakeHost) Output(_ context.Context, name string) (output.PluginFormat, error) {
	f.started.Add(1)
	return fakeOutput{f}, nil
}

func (f *fakeHost) RunCommand(_ context.Context, req CommandRequest, stdout, stderr io.Writer) (int, error) {
	f.started.Add(1)
	f.lastReq = req
	fmt.Fprintf(stdout, "hello %s\n", strings.Join(req.Args, " "))
	fmt.Fprintln(stderr, "to stderr")
	if req.Flags["fail"] == "true" {
		return 3, nil
	}
	return 0, nil
}

func (f *fakeHost) Close() { f.closed.Add(1) }

type fakeOutput struct{ f *fakeHost }

func (o fakeOutput) Format(_ context.Context, doc []byte) ([]byte, error) {
	o.f.gotDoc = doc
	return append([]byte("JSON:"), doc...), nil
}

func newFakeHost() *fakeHost {
	return &fakeHost{infos: []discovery.Info{
		{Name: "command-example", Version: "1.0.0", Path: "/p/lago-plugin-command-example", Components: []plugininfo.ComponentInfo{{
			Name: "example", Kind: kindCommand,
			Commands: []plugininfo.CommandSpec{
				{Name: "hello", Short: "Say hello", Usage: "[NAME...]", MaxArgs: -1,
					Flags: []plugininfo.FlagSpec{{Name: "fail", Type: "bool", Usage: "exit 3"}, {Name: "greeting", Type: "string", Default: "hi"}}},
				{Name: "status", Short: "tries to shadow a built-in", MaxArgs: 0},
				{Name: "broken", Short: "declares a flag twice", MaxArgs: 0,
					Flags: []plugininfo.FlagSpec{{Name: "x", Type: "bool"}, {Name: "x", Type: "string"}}},
			},
		}}},
		{Name: "output-json", Version: "1.0.0", Path: "/p/lago-plugin-output-json", Components: []plugininfo.ComponentInfo{{Name: "json", Kind: kindOutput}}},
		{Name: "output-json", Version: "0.9.0", Path: "/q/lago-plugin-output-json", Shadowed: true, ShadowedBy: "/p/lago-plugin-output-json"},
		{Name: "evil", Path: "/p/lago-plugin-evil", Refused: true, Reason: "world-writable"},
	}}
}

type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs the CLI in-process with an isolated environment, the
// handlers hs and no Forward, as the engine does.
func runCLI(t *testing.T, host *fakeHost, hs map[string]Handler, env []string, args ...string) result {
	t.Helper()
	if host == nil {
		host = &fakeHost{}
	}
	return runBackend(t, Backend{Handlers: hs, NewHost: func(HostOptions) PluginHost { return host }}, env, args...)
}

// runBackend runs the CLI in-process over backend with an isolated
// environment.
func runBackend(t *testing.T, backend Backend, env []string, args ...string) result {
	t.Helper()
	home := t.TempDir()
	environ := append([]string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_CONFIG_DIRS=" + filepath.Join(home, "xdg"), "XDG_CACHE_HOME=" + filepath.Join(home, ".cache")}, env...)
	var out, errb bytes.Buffer
	code := Run(backend, args, strings.NewReader(""), &out, &errb, environ)
	return result{code, out.String(), errb.String()}
}

func TestExitCodes(t *testing.T) {
	boom := func(context.Context, *Invocation) error { return errors.New("boom") }
	user := func(context.Context, *Invocation) error { return errs.Userf("no prefix here") }
	exit := func(context.Context, *Invocation) error { return errs.Exit(5) }
	hs := map[string]Handler{"stop": boom, "deploy": user, "console": exit}
	tests := []struct {
		name       string
		args       []string
		code       int
		stderrHas  string
		stdoutHas  string
		stderrNone bool
	}{
		{"version", []string{"--version"}, 0, "", "lago dev\n", true},
		{"no verb", nil, 1, "", "Verbs:", true},
		{"help", []string{"--help"}, 0, "", "Global options", true},
		{"unknown verb", []string{"frobnicate"}, 2, `lago: error: unknown command "frobnicate"`, "", false},
		{"unknown flag", []string{"--no-such-flag", "status"}, 2, "unknown flag: --no-such-flag", "", false},
		{"ambiguous abbreviation", []string{"--libvirt", "x", "status"}, 2, "ambiguous option --libvirt could match --libvirt-password, --libvirt-url, --libvirt-user", "", false},
		{"too many args", []string{"revert", "a", "b"}, 2, "accepts 1 arg(s), received 2", "", false},
		{"not implemented", []string{"export"}, 2, "lago: error: lago export: not implemented yet", "", false},
		{"handler failure", []string{"stop"}, 1, "lago: error: boom", "", false},
		{"handler lago error", []string{"deploy"}, 2, "lago: error: no prefix here", "", false},
		{"handler exit code", []string{"console", "vm0"}, 5, "", "", true},
		{"bad config value", []string{"--ssh-tries", "x", "status"}, 2, `invalid argument "x" for "--ssh-tries"`, "", false},
		{"bad loglevel", []string{"-l", "loud", "status"}, 2, `option --loglevel: invalid value "loud" for loglevel`, "", false},
		{"required option", []string{"collect"}, 2, "lago collect: --output is required", "", false},
		{"list args need flag", []string{"ansible_hosts", "x"}, 2, "may only follow --keys", "", false},
		{"deprecated option", []string{"-p", "/x", "generate-config"}, 0, "lago: warning: --prefix-path is deprecated: use --workdir-path and --prefix-name", "prefix_path = /x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, nil, hs, nil, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit code = %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.stderrHas) {
				t.Errorf("stderr = %q, want containing %q", r.stderr, tt.stderrHas)
			}
			if tt.stderrNone && r.stderr != "" {
				t.Errorf("stderr = %q, want empty", r.stderr)
			}
			if !strings.Contains(r.stdout, tt.stdoutHas) {
				t.Errorf("stdout = %q, want containing %q", r.stdout, tt.stdoutHas)
			}
		})
	}
}

// TestOptionsReachHandler checks flags, abbreviations, config sections and
// list arguments end up in the Invocation.
func TestOptionsReachHandler(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "lago.conf")
	if err := os.WriteFile(conf, []byte("[destroy]\nyes = true\n[lago]\nssh_user = fromfile\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var got *Invocation
	capture := func(_ context.Context, inv *Invocation) error { got = inv; return nil }
	hs := map[string]Handler{"destroy": capture, "start": capture, "ansible_hosts": capture, "shell": capture, "export": capture, "snapshot": capture}
	tests := []struct {
		name  string
		args  []string
		check func(inv *Invocation) error
	}{
		{"config section and abbreviation", []string{"--ssh-u", "flaguser", "--work=/w", "destroy", "--all"}, func(inv *Invocation) error {
			if !inv.OptBool("yes") || !inv.OptBool("all-prefixes") {
				return fmt.Errorf("yes=%v all-prefixes=%v", inv.OptBool("yes"), inv.OptBool("all-prefixes"))
			}
			if inv.Config.SSHUser != "flaguser" || inv.Config.WorkdirPath != "/w" {
				return fmt.Errorf("ssh user %q workdir %q", inv.Config.SSHUser, inv.Config.WorkdirPath)
			}
			return nil
		}},
		{"same letter global and verb option", []string{"-l", "debug", "snapshot", "-l"}, func(inv *Invocation) error {
			if !inv.OptBool("list") || inv.Config.LogLevel != "debug" {
				return fmt.Errorf("list %v loglevel %q", inv.OptBool("list"), inv.Config.LogLevel)
			}
			return nil
		}},
		{"start flags", []string{"start", "--time", "90s", "--no-w", "vm0", "vm1"}, func(inv *Invocation) error {
			if inv.Config.StartTimeout != 90*time.Second || !inv.Config.StartNoWait {
				return fmt.Errorf("timeout %v no-wait %v", inv.Config.StartTimeout, inv.Config.StartNoWait)
			}
			if !reflect.DeepEqual(inv.Args, []string{"vm0", "vm1"}) {
				return fmt.Errorf("args %q", inv.Args)
			}
			return nil
		}},
		{"list default", []string{"ansible_hosts"}, func(inv *Invocation) error {
			if want := []string{"vm-type", "groups", "vm-provider"}; !reflect.DeepEqual(inv.OptList("keys"), want) {
				return fmt.Errorf("keys %q", inv.OptList("keys"))
			}
			return nil
		}},
		{"list trailing args", []string{"ansible_hosts", "-k", "vm-type", "groups"}, func(inv *Invocation) error {
			if want := []string{"vm-type", "groups"}; !reflect.DeepEqual(inv.OptList("keys"), want) || len(inv.Args) != 0 {
				return fmt.Errorf("keys %q args %q", inv.OptList("keys"), inv.Args)
			}
			return nil
		}},
		{"export options", []string{"export", "-d", "/out", "--stand", "-n", "a", "b"}, func(inv *Invocation) error {
			if inv.Opt("dst-dir") != "/out" || !inv.OptBool("standalone") || !reflect.DeepEqual(inv.OptList("vm-names"), []string{"a", "b"}) {
				return fmt.Errorf("dst %q standalone %v names %q", inv.Opt("dst-dir"), inv.OptBool("standalone"), inv.OptList("vm-names"))
			}
			if inv.Opt("init-file-name") != "LagoInitFile" {
				return fmt.Errorf("init-file-name %q", inv.Opt("init-file-name"))
			}
			return nil
		}},
		{"shell keeps remote options", []string{"shell", "vm0", "ls", "--all", "-l", "--", "x"}, func(inv *Invocation) error {
			if want := []string{"vm0", "ls", "--all", "-l", "--", "x"}; !reflect.DeepEqual(inv.Args, want) {
				return fmt.Errorf("args %q, want %q", inv.Args, want)
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got = nil
			r := runCLI(t, nil, hs, []string{"LAGO_CONFIG=" + conf}, tt.args...)
			if r.code != 0 || got == nil {
				t.Fatalf("code %d, handler called %v, stderr %s", r.code, got != nil, r.stderr)
			}
			if err := tt.check(got); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestGenerateConfig(t *testing.T) {
	r := runCLI(t, nil, nil, []string{"LAGO__INIT__TEMPLATE_STORE=/var/tmp"}, "--ssh-user", "bob", "generate-config", "--verbose")
	if r.code != 0 {
		t.Fatalf("code %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"[lago]\n", "ssh_user = bob", "# from: option --ssh-user", "template_store = /var/tmp",
		"# from: environment LAGO__INIT__TEMPLATE_STORE", "[destroy]\n", "[provider local-libvirt]\n", "plugin = libvirt"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("generate-config output lacks %q:\n%s", want, r.stdout)
		}
	}
	// Its output, used as the only config file, gives the same output.
	conf := filepath.Join(t.TempDir(), "lago.conf")
	if err := os.WriteFile(conf, []byte(r.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	again := runCLI(t, nil, nil, []string{"LAGO_CONFIG=" + conf}, "generate-config", "--verbose")
	strip := func(s string) string {
		var keep []string
		for _, l := range strings.Split(s, "\n") {
			if !strings.HasPrefix(l, "# from:") && !strings.HasPrefix(l, "# Read ") && !strings.HasPrefix(l, "# No configuration") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	if again.code != 0 || strip(again.stdout) != strip(r.stdout) {
		t.Errorf("round trip differs (code %d, %s):\n%s\n----\n%s", again.code, again.stderr, r.stdout, again.stdout)
	}
}

// TestEnvWarning: a LAGO__ variable naming no key (the original's
// LAGO__START__WAIT_SUSPEND, a typo) does not fail the command; each is
// named once on stderr.
func TestEnvWarning(t *testing.T) {
	r := runCLI(t, nil, nil, []string{"LAGO__START__WAIT_SUSPEND=1.0", "LAGO__INIT__TEMPLATE_STOR=/x"}, "generate-config")
	if r.code != 0 {
		t.Fatalf("code %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"lago: warning: environment LAGO__START__WAIT_SUSPEND: wait_suspend has no effect",
		`lago: warning: environment LAGO__INIT__TEMPLATE_STOR: unknown key "template_stor" in [init]; did you mean template_store?; ignored`,
	} {
		if n := strings.Count(r.stderr, want); n != 1 {
			t.Errorf("stderr has %q %d times, want once:\n%s", want, n, r.stderr)
		}
	}
}

func TestPluginVerbs(t *testing.T) {
	host := newFakeHost()
	r := runCLI(t, host, nil, nil, "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "Verbs from command plugins:") || !strings.Contains(r.stdout, "hello") {
		t.Fatalf("help lacks plugin verbs (code %d):\n%s", r.code, r.stdout)
	}
	if n := host.started.Load(); n != 0 {
		t.Fatalf("help started %d plugins", n)
	}

	r = runCLI(t, host, nil, nil, "hello", "--help")
	if !strings.Contains(r.stdout, "--greeting") || !strings.Contains(r.stdout, "Global options") || !strings.Contains(r.stdout, "lago hello [NAME...]") {
		t.Errorf("plugin verb help:\n%s", r.stdout)
	}

	host = newFakeHost()
	r = runCLI(t, host, nil, nil, "--ssh-user", "u", "hello", "--greet", "yo", "a", "b")
	if r.code != 0 || r.stdout != "hello a b\n" || r.stderr != "to stderr\n" {
		t.Fatalf("plugin verb: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	req := host.lastReq
	if req.Verb != "hello" || req.Flags["greeting"] != "yo" || req.Flags["fail"] != "false" || req.Global["ssh_user"] != "u" || req.WorkingDir == "" {
		t.Errorf("request = %+v", req)
	}
	if host.closed.Load() == 0 {
		t.Error("plugin host not closed")
	}

	r = runCLI(t, newFakeHost(), nil, nil, "hello", "--fail")
	if r.code != 3 {
		t.Errorf("plugin exit code: got %d, want 3 (stderr %s)", r.code, r.stderr)
	}

	// A verb with a broken flag declaration is left out, not a panic.
	r = runCLI(t, newFakeHost(), nil, nil, "broken")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown command "broken"`) || !strings.Contains(r.stderr, `flag "x" is empty or declared twice`) {
		t.Errorf("broken plugin verb: code %d stderr %s", r.code, r.stderr)
	}

	// A plugin cannot replace a built-in verb.
	builtin := func(context.Context, *Invocation) error { return errs.Userf("the built-in status ran") }
	r = runCLI(t, newFakeHost(), map[string]Handler{"status": builtin}, nil, "status")
	if r.code != 2 || !strings.Contains(r.stderr, "the built-in status ran") || strings.Contains(r.stdout+r.stderr, "shadow") {
		t.Errorf("built-in status was shadowed: code %d, %s%s", r.code, r.stdout, r.stderr)
	}
}

func TestOutputFormats(t *testing.T) {
	doc := map[string]any{"Prefix": map[string]any{"UUID": "u", "ok": true}}
	render := func(ctx context.Context, inv *Invocation) error { return inv.Render(ctx, doc) }
	hs := map[string]Handler{"status": render}
	tests := []struct {
		args []string
		code int
		out  string
		err  string
	}{
		{[]string{"status"}, 0, "[Prefix]:\n    UUID: u\n    ok: True\n", ""},
		{[]string{"-f", "flat", "status"}, 0, "UUID: u\nok: True\n", ""},
		{[]string{"--out", "yaml", "status"}, 0, "Prefix:\n  UUID: u\n  ok: true\n", ""},
		{[]string{"-f", "json", "status"}, 0, `JSON:{"Prefix":{"UUID":"u","ok":true}}` + "\n", ""},
		{[]string{"-f", "xml", "status"}, 2, "", `unknown output format "xml" (available: default, flat, json, yaml)`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runCLI(t, newFakeHost(), hs, nil, tt.args...)
			if r.code != tt.code || r.stdout != tt.out || !strings.Contains(r.stderr, tt.err) {
				t.Errorf("code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
			}
		})
	}
}

func TestPluginsVerb(t *testing.T) {
	r := runCLI(t, newFakeHost(), nil, nil, "plugins")
	if r.code != 0 {
		t.Fatalf("code %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"command-example", "command", "example", "/q/lago-plugin-output-json",
		"shadowed (shadowed by /p/lago-plugin-output-json)", "refused (world-writable)", "1.0.0"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plugins output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = runCLI(t, newFakeHost(), nil, nil, "-f", "yaml", "plugins")
	if r.code != 0 || !strings.Contains(r.stdout, "status: refused") || !strings.Contains(r.stdout, "kind: output") {
		t.Errorf("plugins yaml (code %d):\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestSignalRunsCleanups sends SIGTERM to the test process while a verb
// waits on its context: the verb's deferred cleanup must run and the exit
// status be 128+15.
func TestSignalRunsCleanups(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			var cleaned atomic.Bool
			ready := make(chan struct{})
			block := func(ctx context.Context, inv *Invocation) error {
				defer cleaned.Store(true)
				close(ready)
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(10 * time.Second):
					return errors.New("context not cancelled")
				}
			}
			go func() {
				<-ready
				_ = syscall.Kill(os.Getpid(), sig)
			}()
			r := runCLI(t, nil, map[string]Handler{"deploy": block}, nil, "deploy")
			if r.code != 128+int(sig) {
				t.Errorf("exit code %d, want %d (stderr %s)", r.code, 128+int(sig), r.stderr)
			}
			if !cleaned.Load() {
				t.Error("cleanup did not run")
			}
		})
	}
}

func TestNoPluginDiscoveryForBuiltins(t *testing.T) {
	var created atomic.Int32
	backend := Backend{
		Handlers: map[string]Handler{"stop": func(context.Context, *Invocation) error { return nil }},
		NewHost:  func(HostOptions) PluginHost { created.Add(1); return &fakeHost{} },
	}
	if code := Run(backend, []string{"stop"}, strings.NewReader(""), io.Discard, io.Discard, []string{"HOME=" + t.TempDir()}); code != 0 {
		t.Fatalf("code %d", code)
	}
	if created.Load() != 0 {
		t.Error("a built-in verb created the plugin host")
	}
}

// TestForward: with Backend.Forward set (the front-end), what the program
// does not run itself is handed over with the arguments as given, and
// what it does run (help, meta verbs, its own handlers, built-in formats)
// is not; no plugin process starts either way.
func TestForward(t *testing.T) {
	own := func(_ context.Context, inv *Invocation) error { fmt.Fprintln(inv.Stdout, "own"); return nil }
	tests := []struct {
		name     string
		args     []string
		forward  bool
		provider bool
	}{
		{"provider verb", []string{"status"}, true, true},
		{"other verb, args as given", []string{"--ssh-u", "u", "list", "w"}, true, false},
		{"plugin verb", []string{"hello", "a"}, true, false},
		{"output plugin format", []string{"-f", "json", "plugins"}, true, false},
		{"own handler", []string{"stop"}, false, false},
		{"plugins", []string{"plugins"}, false, false},
		{"built-in format", []string{"-f", "yaml", "plugins"}, false, false},
		{"generate-config", []string{"generate-config"}, false, false},
		{"help", []string{"--help"}, false, false},
		{"verb help", []string{"status", "--help"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := newFakeHost()
			var got *ForwardRequest
			backend := Backend{
				Handlers: map[string]Handler{"stop": own},
				NewHost:  func(HostOptions) PluginHost { return host },
				Forward:  func(r ForwardRequest) error { got = &r; return nil },
			}
			r := runBackend(t, backend, nil, tt.args...)
			if r.code != 0 {
				t.Fatalf("code %d: %s", r.code, r.stderr)
			}
			if (got != nil) != tt.forward {
				t.Fatalf("forwarded %v, want %v (stdout %q)", got != nil, tt.forward, r.stdout)
			}
			if n := host.started.Load(); n != 0 {
				t.Errorf("%d plugin processes started", n)
			}
			if got == nil {
				return
			}
			if !reflect.DeepEqual(got.Args, tt.args) || got.Provider != tt.provider || got.Config == nil || got.Host != host || len(got.Environ) == 0 {
				t.Errorf("request %+v, want args %q, provider %v, a config, the host and the environment", got, tt.args, tt.provider)
			}
		})
	}
}
