package pluginhost

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/lago-go/lago/core/pluginhost/discovery"
	"github.com/lago-go/lago/sdk"
)

// TestStartRunsTheCheckedBinary: a binary swapped after its checks (and
// its pin's hash) but before its exec does not run; the checked one does.
func TestStartRunsTheCheckedBinary(t *testing.T) {
	count := counter(t)
	dir := t.TempDir()
	path := install(t, dir, "good", 0o755)
	sum, err := discovery.FileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pins map[string]string
	}{
		{"unpinned", nil},
		{"pinned", map[string]string{"good": sum}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			install(t, dir, "good", 0o755)
			before := count("serve")
			m, _ := newHost(t, Options{SearchPath: []string{dir}, Pins: tt.pins})
			if _, err := m.Discover(); err != nil {
				t.Fatal(err)
			}
			swapped := filepath.Join(t.TempDir(), "swapped")
			binaryOpened = func(p string) {
				evil := filepath.Join(dir, ".evil")
				if err := os.WriteFile(evil, []byte("#!/bin/sh\ntouch "+swapped+"\n"), 0o755); err != nil {
					t.Error(err)
				}
				if err := os.Rename(evil, p); err != nil {
					t.Error(err)
				}
			}
			defer func() { binaryOpened = nil }()
			o, err := m.Output(context.Background(), "upper")
			if err != nil {
				t.Fatalf("Output: %v", err)
			}
			if got, err := o.Format(context.Background(), []byte("abc")); err != nil || string(got) != "ABC" {
				t.Fatalf("Format = %q, %v", got, err)
			}
			if _, err := os.Stat(swapped); err == nil {
				t.Fatal("the swapped binary ran")
			}
			if n := count("serve") - before; n != 1 {
				t.Fatalf("%d checked plugin processes, want 1", n)
			}
		})
	}
}

// TestUntrustedAtStart: a binary made group-writable after discovery (a
// warm describe cache: nothing ran) is refused when it would start.
func TestUntrustedAtStart(t *testing.T) {
	count := counter(t)
	dir := t.TempDir()
	path := install(t, dir, "good", 0o755)
	m, _ := newHost(t, Options{SearchPath: []string{dir}})
	if _, err := m.Discover(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o775); err != nil {
		t.Fatal(err)
	}
	_, err := m.Output(context.Background(), "upper")
	var ue *discovery.UntrustedError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "plugin good: binary is group-writable") {
		t.Fatalf("Output err = %v, want the group-writable binary refused", err)
	}
	if n := count("serve"); n != 0 {
		t.Fatalf("the refused binary started %d times", n)
	}
}

// startByHand starts the test plugin as a developer would for
// LAGO_REATTACH_PLUGINS and returns its reattach line.
func startByHand(t *testing.T) (line string, alive func() bool) {
	t.Helper()
	cmd := exec.Command(testPluginBin)
	cmd.Env = append(os.Environ(), sdk.DebugEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	line, err = bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return line, func() bool { return cmd.Process.Signal(syscall.Signal(0)) == nil }
}

// TestReattachPinned: LAGO_REATTACH_PLUGINS cannot stand in for a pinned
// plugin, whether its binary is on disk or not: lago refuses it with a
// clear error instead of talking to a process it cannot check.
func TestReattachPinned(t *testing.T) {
	count := counter(t)
	dir := t.TempDir()
	path := install(t, dir, "good", 0o755)
	sum, err := discovery.FileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	line, alive := startByHand(t)
	byHand := count("serve")
	tests := []struct {
		name     string
		search   []string
		attachAs string
		wantErr  error
	}{
		{"pinned binary on disk", []string{dir}, "good", ErrReattachPinned},
		{"pinned plugin not on disk", []string{}, "good", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(ReattachEnv, `{"`+tt.attachAs+`": `+line+`}`)
			m, logs := newHost(t, Options{SearchPath: tt.search, Pins: map[string]string{"good": sum}})
			_, err := m.Output(context.Background(), "upper")
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), "cannot be replaced through "+ReattachEnv) {
				t.Fatalf("Output err = %v, want %v naming %s", err, tt.wantErr, ReattachEnv)
			}
			if tt.wantErr == ErrNotFound {
				infos, _ := m.Discover()
				if len(infos) != 1 || !infos[0].Refused || infos[0].Path != "reattached:good" {
					t.Fatalf("infos = %+v, want the reattach entry refused", infos)
				}
				if !strings.Contains(logs.String(), "refusing to attach to a pinned plugin") {
					t.Errorf("refusal not logged:\n%s", logs.String())
				}
			}
			if n := count("serve") - byHand; n != 0 {
				t.Fatalf("%d plugin processes started instead", n)
			}
			m.Close()
			if !alive() {
				t.Fatal("the plugin started by hand was killed")
			}
		})
	}
}

// TestReattachFolderPinned: a plugin installed with `lago plugins install`
// is pinned by its folder's pins file, and reattaching it is refused as
// for a [plugins] pin; nothing starts and the process started by hand
// lives on.
func TestReattachFolderPinned(t *testing.T) {
	count := counter(t)
	src := install(t, t.TempDir(), "good", 0o755)
	dir := filepath.Join(t.TempDir(), "plugins")
	if _, err := discovery.Install(src, dir, discovery.InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	line, alive := startByHand(t)
	byHand := count("serve")
	t.Setenv(ReattachEnv, `{"good": `+line+`}`)
	m, _ := newHost(t, Options{SearchPath: []string{dir}})
	_, err := m.Output(context.Background(), "upper")
	if !errors.Is(err, ErrReattachPinned) {
		t.Fatalf("Output err = %v, want ErrReattachPinned", err)
	}
	if n := count("serve") - byHand; n != 0 {
		t.Fatalf("%d plugin processes started instead", n)
	}
	m.Close()
	if !alive() {
		t.Fatal("the plugin started by hand was killed")
	}
}

// TestPluginWarningsOnce: a warning a plugin both logs and returns reaches
// OnWarning once, however often it comes back (second call, second
// process of the plugin), while the plugin's raw log line goes to
// PluginLog only, never to the host's Logger (the user's terminal).
func TestPluginWarningsOnce(t *testing.T) {
	counter(t)
	dir := t.TempDir()
	install(t, dir, "good", 0o755)
	user, sink := &logBuf{}, &logBuf{}
	var warnings []string
	var mu sync.Mutex
	m, _ := newHost(t, Options{
		SearchPath: []string{dir},
		// As the CLI sets them up: the terminal at warn level, the
		// prefix log with everything.
		Logger:    hclog.New(&hclog.LoggerOptions{Name: "lago", Output: user, Level: hclog.Warn}),
		PluginLog: hclog.New(&hclog.LoggerOptions{Output: sink, Level: hclog.Trace}),
		OnWarning: func(plugin string, d sdk.Diagnostic) {
			mu.Lock()
			defer mu.Unlock()
			warnings = append(warnings, plugin+": "+d.Attribute+": "+d.Summary+": "+d.Detail)
		},
	})
	ctx := context.Background()
	for _, cfg := range []map[string]string{{"name": "warn"}, {"name": "warn"}, {"name": "warn", "other": "instance"}} {
		p, err := m.Provider(ctx, "echo", cfg)
		if err != nil {
			t.Fatal(err)
		}
		if s, err := p.VMState(ctx, nil, nil); err != nil || s != "warn" {
			t.Fatalf("VMState = %q, %v", s, err)
		}
	}
	m.Close() // flushes the plugins' stderr
	want := "good: domain_type: domain_type auto: using qemu (TCG emulation, slow) instead of kvm: no kvm here"
	if len(warnings) != 1 || warnings[0] != want {
		t.Fatalf("OnWarning got %q, want once %q", warnings, want)
	}
	if strings.Contains(user.String(), "domain_type") {
		t.Fatalf("the plugin's raw log line reached the terminal:\n%s", user.String())
	}
	raw := sink.String()
	if n := strings.Count(raw, "[WARN]  lago-plugin-good: domain_type auto: using qemu"); n != 3 {
		t.Fatalf("%d raw warning lines in the plugin log, want one per call:\n%s", n, raw)
	}
}
