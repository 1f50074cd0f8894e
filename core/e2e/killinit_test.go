//go:build e2e

package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestKilledInitThenDestroy kills `lago init` (SIGKILL: no cleanup runs) at
// increasing moments and checks that what is left is either nothing or a
// prefix that `lago destroy` removes completely: prefix folder, disks,
// leases and libvirt objects.
func TestKilledInitThenDestroy(t *testing.T) {
	initFile := "domains:\n" + vmBlock("vm0", "net: lago") + vmBlock("vm1", "net: lago") + oneNet
	// Warm the template store, so the kills land in init's own steps
	// rather than in the download.
	warm := newHarness(t)
	warm.initEnv(warm.writeInitFile(initFile))
	warm.must("destroy", "--yes")

	outcomes := map[string]int{}
	for i := 0; i < 16; i++ {
		delay := time.Duration(i*10) * time.Millisecond // init takes ~0.1 s with a warm store
		t.Run(fmt.Sprintf("after_%s", delay), func(t *testing.T) {
			h := newHarness(t)
			f := h.writeInitFile(initFile)
			cmd := h.command(t.Context(), "", "init", "--template-repo-path", h.env.TemplateRepo, "--skip-bootstrap", f)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(delay)
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()

			outcome := classify(t, filepath.Join(h.dir, ".lago"))
			outcomes[outcome]++
			t.Logf("killed after %s: %s", delay, outcome)
			if outcome != "nothing" {
				h.must("destroy", "--yes")
			}
			if _, err := os.Stat(filepath.Join(h.dir, ".lago")); !os.IsNotExist(err) {
				t.Errorf("after destroy the workdir is still there (%v)", err)
			}
			h.assertNothingLeft()
		})
	}
	t.Logf("outcomes: %v", outcomes)
	if outcomes["half-made prefix"] == 0 {
		t.Errorf("no kill landed inside init (outcomes %v): the test proves nothing on this machine", outcomes)
	}
}

// classify says what a killed init left in workdir.
func classify(t *testing.T, workdir string) string {
	t.Helper()
	entries, err := os.ReadDir(workdir)
	if os.IsNotExist(err) {
		return "nothing"
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(workdir, e.Name(), "initialized")); err == nil {
			return "initialized prefix"
		}
		return "half-made prefix"
	}
	return "empty workdir"
}
