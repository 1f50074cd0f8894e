package pluginhost

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/lago-go/lago/core/pluginhost/discovery"
	"github.com/lago-go/lago/core/pluginhost/prestart"
)

// prestarted starts the plugin binary at path as the light front-end does.
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
