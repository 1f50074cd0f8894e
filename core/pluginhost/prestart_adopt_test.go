package pluginhost

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"

	"github.com/lago-go/lago/core/pluginhost/discovery"
	"github.com/lago-go/lago/core/pluginhost/prestart"
	"github.com/lago-go/lago/sdk/plugininfo"
)

// TestPrestartEnvCoversGoPlugin: a prestarted plugin gets lago's magic
// cookie only (prestart.HandshakeEnv), not what go-plugin's client adds
// to a plugin's environment. This lists what the client, configured as
// this package configures it, really adds, and fails on any variable not
// known to be needless for a lago plugin: after a go-plugin upgrade that
// passes something new, here rather than in every prestarted plugin.
func TestPrestartEnvCoversGoPlugin(t *testing.T) {
	p := &process{name: "probe", tail: newTailBuffer(20)}
	cfg := p.clientConfig(Options{Logger: hclog.NewNullLogger(), PluginLog: hclog.NewNullLogger()})
	var spec []string
	errProbe := errors.New("probe: environment captured")
	cfg.RunnerFunc = func(_ hclog.Logger, cmd *exec.Cmd, _ string) (runner.Runner, error) {
		spec = append([]string(nil), cmd.Env...)
		return nil, errProbe
	}
	pc := plugin.NewClient(cfg)
	if _, err := pc.Client(); !errors.Is(err, errProbe) {
		t.Fatalf("go-plugin client start: %v, want the probe's error", err)
	}
	pc.Kill()
	inherited := map[string]bool{}
	for _, kv := range os.Environ() {
		inherited[kv] = true
	}
	added := map[string]string{}
	for _, kv := range spec {
		if !inherited[kv] {
			k, v, _ := strings.Cut(kv, "=")
			added[k] = v
		}
	}
	for _, kv := range prestart.HandshakeEnv() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PLUGIN_") {
			t.Errorf("prestart copies go-plugin's own variable %s", k)
		}
		if got, ok := added[k]; !ok || got != v {
			t.Errorf("prestart passes %s, go-plugin's client %s=%q", kv, k, got)
		}
		delete(added, k)
	}
	for k, v := range added {
		switch k {
		case "PLUGIN_MIN_PORT", "PLUGIN_MAX_PORT":
			// Only a TCP listener reads them; plugins listen on unix sockets.
		case "PLUGIN_UNIX_SOCKET_DIR":
			// Without it the socket goes to the system's temporary folder.
		case "PLUGIN_PROTOCOL_VERSIONS":
			// The one version a plugin serves, which it also serves to a
			// client that sends no list.
			if v != strconv.Itoa(plugininfo.APIVersion) {
				t.Errorf("go-plugin's client offers protocol versions %q; a prestarted plugin, offered none, serves only %d", v, plugininfo.APIVersion)
			}
		default:
			t.Errorf("go-plugin's client passes %s=%q to plugins, which a prestarted plugin does not get: add it to prestart.HandshakeEnv or explain here why a plugin needs no such variable", k, v)
		}
	}
}

// prestarted starts the plugin binary at path as the front-end does.
func prestarted(t *testing.T, path string) *prestart.Process {
	t.Helper()
	ps, err := prestart.Start(path, os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func assertGone(t *testing.T, pid int) {
	t.Helper()
	// A process killed but not reaped still answers kill 0 (a zombie).
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("pid %d still exists (kill 0: %v)", pid, err)
	}
}

// TestPrestartedProcessIsAdopted: the first process of the prestarted
// binary is the prestarted one (no second start), it works like any
// other, and Close stops and reaps it.
func TestPrestartedProcessIsAdopted(t *testing.T) {
	count := counter(t)
	dir := t.TempDir()
	ps := prestarted(t, install(t, dir, "good", 0o755))
	m, logs := newHost(t, Options{SearchPath: []string{dir}, Prestarted: ps})
	ctx := context.Background()
	o, err := m.Output(ctx, "upper")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := o.Format(ctx, []byte("x")); err != nil || string(got) != "X" {
		t.Fatalf("Format = %q, %v", got, err)
	}
	if pid := pidOf(t, m, "good"); pid != ps.Pid {
		t.Fatalf("plugin runs as pid %d, want the prestarted %d", pid, ps.Pid)
	}
	if n := count("serve"); n != 1 {
		t.Fatalf("%d plugin processes, want only the prestarted one", n)
	}
	if !strings.Contains(logs.String(), "front-end started") {
		t.Errorf("no log line about the adoption in:\n%s", logs)
	}
	m.Close()
	assertGone(t, ps.Pid)
}

// TestUnusedPrestartedIsReaped: a prestarted process nothing adopts (no
// plugin needed, another binary needed, or plugins pinned) is killed and
// reaped by Close, and the plugins actually needed start normally.
func TestUnusedPrestartedIsReaped(t *testing.T) {
	for _, tc := range []struct {
		name      string
		prestart  string // plugin to prestart
		use       bool   // call the "good" plugin
		pins      bool
		wantServe int // plugin processes that served; -1: not checked (killed maybe before it counted)
	}{
		{name: "nothing used", prestart: "good", wantServe: -1},
		{name: "another binary used", prestart: "other", use: true, wantServe: 2},
		{name: "pinned", prestart: "good", use: true, pins: true, wantServe: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			count := counter(t)
			dir := t.TempDir()
			good := install(t, dir, "good", 0o755)
			other := install(t, t.TempDir(), "other", 0o755)
			path := good
			if tc.prestart == "other" {
				path = other
			}
			opts := Options{SearchPath: []string{dir}}
			if tc.pins {
				sum, err := discovery.FileSHA256(good)
				if err != nil {
					t.Fatal(err)
				}
				opts.Pins = map[string]string{"good": sum}
			}
			ps := prestarted(t, path)
			opts.Prestarted = ps
			m, _ := newHost(t, opts)
			if tc.use {
				if _, err := m.Output(context.Background(), "upper"); err != nil {
					t.Fatal(err)
				}
				if pid := pidOf(t, m, "good"); pid == ps.Pid {
					t.Fatal("the prestarted process was adopted")
				}
			}
			m.Close()
			assertGone(t, ps.Pid)
			if n := count("serve"); tc.wantServe >= 0 && n != tc.wantServe {
				t.Fatalf("%d plugin processes, want %d", n, tc.wantServe)
			}
		})
	}
}

// TestDeadPrestartedIsReplaced: a prestarted process that died before the
// engine needed it is replaced by a fresh start, with a warning.
func TestDeadPrestartedIsReplaced(t *testing.T) {
	counter(t)
	dir := t.TempDir()
	ps := prestarted(t, install(t, dir, "good", 0o755))
	if err := ps.Kill(); err != nil {
		t.Fatal(err)
	}
	m, logs := newHost(t, Options{SearchPath: []string{dir}, Prestarted: ps})
	ctx := context.Background()
	o, err := m.Output(ctx, "upper")
	if err != nil {
		t.Fatalf("Output after the prestarted plugin died: %v", err)
	}
	if got, err := o.Format(ctx, []byte("x")); err != nil || string(got) != "X" {
		t.Fatalf("Format = %q, %v", got, err)
	}
	if pid := pidOf(t, m, "good"); pid == ps.Pid {
		t.Fatal("still talking to the dead process")
	}
	if !strings.Contains(logs.String(), "prestarted plugin unusable") {
		t.Errorf("no warning about the dead prestarted plugin in:\n%s", logs)
	}
	m.Close()
	assertGone(t, ps.Pid)
}
