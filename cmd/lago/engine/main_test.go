package main

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/lago-go/lago/cmd/lago/internal/cli"
	"github.com/lago-go/lago/core/pluginhost/prestart"
)

// TestPrestartedHandOver: the process the front-end prestarted goes to the
// plugin host when the verb makes one (which then owns it), and is killed
// and reaped when the engine exits without one.
func TestPrestartedHandOver(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	alive := func(pid int) bool { return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }
	for _, tc := range []struct {
		name     string
		makeHost bool
	}{
		{"no plugin host: killed by release", false},
		{"plugin host made: it owns the process", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := prestart.Start(sleep, append(os.Environ(), "x=60"))
			if err != nil {
				t.Fatal(err)
			}
			e := &engine{prestarted: ps}
			var host cli.PluginHost
			if tc.makeHost {
				host = e.backend().NewHost(cli.HostOptions{SearchPath: []string{t.TempDir()}, CacheFile: "-", LogLevel: "info", Stderr: os.Stderr})
			}
			e.release()
			if got := alive(ps.Pid); got != tc.makeHost {
				t.Fatalf("after release: process alive %v, want %v", got, tc.makeHost)
			}
			if host != nil {
				host.Close()
				if alive(ps.Pid) {
					t.Fatal("the plugin host's Close left the prestarted process running")
				}
			}
		})
	}
}
