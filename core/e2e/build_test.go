//go:build e2e

package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// libguestfsEnv runs the appliance without libvirt and under TCG, as the
// e2e hosts have no usable KVM.
var libguestfsEnv = []string{"LIBGUESTFS_BACKEND=direct", "LIBGUESTFS_BACKEND_SETTINGS=force_tcg"}

// buildVM is vm0 booting the tiny template, its disk with the given
// build: list (already indented as a disk key's value).
func buildVM(build string) string {
	return "domains:\n" + vmBlock("vm0", "net: lago") + "        build:\n" + build + oneNet
}

// initArgs are the arguments of a `lago init` of initFile that is
// expected to fail (initEnv requires success).
func (h *harness) initArgs(initFile string) []string {
	return []string{"init", "--template-repo-path", h.env.TemplateRepo, "--skip-bootstrap", initFile}
}

// TestBuildStepInGuest runs a virt-customize build step (a written file,
// a command through the guest's shell, a list option repeated) and finds
// its effects inside the booted guest; the tool's output is in the prefix
// log and its progress on stderr.
func TestBuildStepInGuest(t *testing.T) {
	h := newHarness(t)
	h.extraEnv = append(h.extraEnv, libguestfsEnv...)
	initFile := h.writeInitFile(buildVM(`          - virt-customize:
              write: '/etc/lago-built:yes'
              run-command: 'echo ran-$((6*7)) > /root/lago-ran'
              touch: [/root/t1, /root/t2]
`))
	r := h.lago(h.initArgs(initFile)...)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	*h.uuids = append(*h.uuids, h.uuid())
	if !strings.Contains(r.stderr, "lago: vm0: virt-customize done in ") {
		t.Errorf("init printed no build progress:\n%s", r.stderr)
	}
	log, err := os.ReadFile(filepath.Join(h.dir, ".lago", "current", "logs", "lago.log"))
	if err != nil {
		t.Fatalf("prefix log: %v", err)
	}
	if !strings.Contains(string(log), "build virt-customize vm0: ") || !strings.Contains(string(log), "Running: echo ran-$((6*7))") {
		t.Errorf("the prefix log lacks the tool's output:\n%s", log)
	}
	h.must("start")
	if got := h.shell("vm0", "cat", "/etc/lago-built"); strings.TrimSpace(got) != "yes" {
		t.Errorf("/etc/lago-built = %q, want yes", got)
	}
	if got := h.shell("vm0", "cat", "/root/lago-ran"); strings.TrimSpace(got) != "ran-42" {
		t.Errorf("/root/lago-ran = %q, want ran-42 (the command ran through the guest's shell)", got)
	}
	h.shell("vm0", "ls", "/root/t1", "/root/t2")
	h.must("destroy", "--yes")
	h.assertNothingLeft()
}

// TestBuildStepFailure: an unknown builder is refused before anything is
// made, and a failing step makes init fail with the tool's last lines and
// leave nothing behind.
func TestBuildStepFailure(t *testing.T) {
	h := newHarness(t)
	h.extraEnv = append(h.extraEnv, libguestfsEnv...)

	t.Run("unknown builder", func(t *testing.T) {
		h := h.sub(t)
		r := h.lago(h.initArgs(h.writeInitFile(buildVM("          - virt-customise:\n              touch: /x\n")))...)
		if r.code == 0 {
			t.Fatalf("init with an unknown builder succeeded:\n%s", r)
		}
		for _, want := range []string{"domains.vm0.disks[0].build[0]: unknown builder \"virt-customise\"", "virt-customize"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("init error lacks %q:\n%s", want, r)
			}
		}
		if _, err := os.Stat(filepath.Join(h.dir, ".lago")); !os.IsNotExist(err) {
			t.Errorf("init made a workdir before refusing the builder (%v)", err)
		}
		h.assertNothingLeft()
	})

	t.Run("failing step", func(t *testing.T) {
		h := h.sub(t)
		r := h.lago(h.initArgs(h.writeInitFile(buildVM(`          - virt-customize:
              touch: /root/before
              run-command: 'echo lago-failing-step; exit 3'
`)))...)
		if r.code == 0 {
			t.Fatalf("init with a failing build step succeeded:\n%s", r)
		}
		for _, want := range []string{"build vm vm0 disk root step 1 (virt-customize)", "Running: echo lago-failing-step; exit 3"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("init error lacks %q:\n%s", want, r)
			}
		}
		if _, err := os.Stat(filepath.Join(h.dir, ".lago")); !os.IsNotExist(err) {
			t.Errorf("the failed init left its workdir (%v)", err)
		}
		h.assertNothingLeft()
	})
}
