//go:build e2e

package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCollectStopped: collect of a stopped VM reads its artifacts from
// its disk with libguestfs (read-only, through the libvirt provider's
// ReadFiles) while a running VM of the same collect goes over ssh. The
// tiny guest writes files, vm0 is stopped, and three collects in a row
// each get the same files, with modes, a link inside a folder, a link to
// a file followed, the guest's own dropbear log, and the missing path
// skipped and a link out of the copy dropped; --no-skip fails naming the
// missing path; a FIFO artifact fails naming it without waiting for the
// read's timeout. Afterwards nothing holds the disk: no guestfish is left
// and vm0 starts again with its files.
func TestCollectStopped(t *testing.T) {
	h := newHarness(t)
	art := "    artifacts:\n      - /root/art/a.log\n      - /root/art/dir\n      - /root/art/latest\n      - /root/art/missing\n      - /root/art/fifo\n      - /var/log/dropbear.log\n"
	withArt := func(vm string) string {
		return strings.Replace(vmBlock(vm, "net: lago"), "    vcpu: 1\n", "    vcpu: 1\n"+art, 1)
	}
	h.initEnv(h.writeInitFile("domains:\n" + withArt("vm0") + withArt("vm1") + oneNet))
	h.must("start")
	for _, vm := range []string{"vm0", "vm1"} {
		h.shell(vm, "mkdir -p /root/art/dir/sub && echo "+vm+" > /root/art/a.log && chmod 640 /root/art/a.log && "+
			"echo B > /root/art/dir/sub/b && chmod 600 /root/art/dir/sub/b && ln -s sub/b /root/art/dir/l && "+
			"ln -s /root/art/a.log /root/art/latest && ln -s /etc /root/art/dir/out && sync")
	}
	h.must("stop", "vm0")
	if st := h.status().vmStatus("vm0"); st == "running" {
		t.Fatalf("vm0 is %s after lago stop vm0", st)
	}
	tmpBefore, _ := filepath.Glob(filepath.Join(os.TempDir(), "lago-readfiles-*"))

	check := func(t *testing.T, out string) {
		t.Helper()
		for vm, files := range map[string]map[string]string{
			"vm0": {"_root_art_a.log": "vm0\n", "_root_art_dir/sub/b": "B\n", "_root_art_latest": "vm0\n"},
			"vm1": {"_root_art_a.log": "vm1\n", "_root_art_dir/sub/b": "B\n", "_root_art_latest": "vm1\n"},
		} {
			for p, body := range files {
				if got, err := os.ReadFile(filepath.Join(out, vm, p)); err != nil || string(got) != body {
					t.Errorf("%s/%s = %q, %v; want %q", vm, p, got, err, body)
				}
			}
			modes := map[string]os.FileMode{"_root_art_a.log": 0o640, "_root_art_dir/sub/b": 0o600}
			for p, want := range modes {
				if st, err := os.Stat(filepath.Join(out, vm, p)); err != nil || st.Mode().Perm() != want {
					t.Errorf("%s/%s: mode %v (%v), want %o", vm, p, st.Mode(), err, want)
				}
			}
			if l, err := os.Readlink(filepath.Join(out, vm, "_root_art_dir", "l")); err != nil || l != "sub/b" {
				t.Errorf("%s: link in the folder = %q, %v; want sub/b", vm, l, err)
			}
			if b, err := os.ReadFile(filepath.Join(out, vm, "_var_log_dropbear.log")); err != nil || len(b) == 0 {
				t.Errorf("%s: dropbear log: %d bytes, %v", vm, len(b), err)
			}
			if _, err := os.Lstat(filepath.Join(out, vm, "_root_art_missing")); !os.IsNotExist(err) {
				t.Errorf("%s: the missing artifact left %v", vm, err)
			}
			if _, err := os.Lstat(filepath.Join(out, vm, "_root_art_dir", "out")); !os.IsNotExist(err) {
				t.Errorf("%s: the link out of the folder (to /etc) was kept: %v", vm, err)
			}
		}
	}

	var took []time.Duration
	for i := 1; i <= 3; i++ {
		out := filepath.Join(h.dir, fmt.Sprintf("collected-%d", i))
		start := time.Now()
		r := h.lago("collect", "--output", out)
		took = append(took, time.Since(start).Round(100*time.Millisecond))
		if r.code != 0 {
			t.Fatalf("collect %d (vm0 stopped, vm1 running):\n%s", i, r)
		}
		for _, vm := range []string{"vm0", "vm1"} {
			if !strings.Contains(r.stderr, "lago: "+vm+": skipped /root/art/missing") || !strings.Contains(r.stderr, "lago: "+vm+": 4 artifacts") {
				t.Errorf("collect %d: want %s's 4 artifacts and its skipped path named:\n%s", i, vm, r.stderr)
			}
		}
		if !strings.Contains(r.stderr, "(not running: read from its disks)") || strings.Count(r.stderr, "read from its disks") != 1 {
			t.Errorf("collect %d: want vm0 (only) read from its disks:\n%s", i, r.stderr)
		}
		check(t, out)
	}
	t.Logf("collect with vm0 stopped (its disk read by libguestfs) and vm1 running (ssh): %v", took)

	r := h.lago("collect", "--output", filepath.Join(h.dir, "no-skip"), "--no-skip")
	if r.code == 0 || !strings.Contains(r.stderr, "vm0") || !strings.Contains(r.stderr, "/root/art/missing") {
		t.Errorf("collect --no-skip: want a failure naming vm0 and the missing path:\n%s", r)
	}

	// A FIFO as an artifact: on a disk its download would block, so the
	// read stops at it and starts again without it; the collect fails
	// naming it (as over ssh) and still gets the other artifacts, well
	// before the read's timeout.
	h.must("start", "vm0")
	h.shell("vm0", "{ mkfifo /root/art/fifo || mknod /root/art/fifo p; } && sync")
	h.must("stop", "vm0")
	out := filepath.Join(h.dir, "with-fifo")
	start := time.Now()
	r = h.lago("collect", "--output", out)
	t.Logf("collect with a FIFO artifact on the stopped vm0: %s", time.Since(start).Round(100*time.Millisecond))
	if r.code == 0 || !strings.Contains(r.stderr, "/root/art/fifo") || !strings.Contains(r.stderr, "special file") {
		t.Errorf("collect of a FIFO: want a failure naming it:\n%s", r)
	}
	if got, err := os.ReadFile(filepath.Join(out, "vm0", "_root_art_a.log")); err != nil || string(got) != "vm0\n" {
		t.Errorf("with a FIFO: vm0's a.log = %q, %v", got, err)
	}
	if d := time.Since(start); d > 5*time.Minute {
		t.Errorf("collect with a FIFO took %s", d)
	}

	// Nothing of the reads is left: no guestfish or appliance on the
	// disk, no temporary folder, no lock (vm0 starts and has its files).
	if procs := processesWith(h.dir); len(procs) != 0 {
		t.Errorf("processes still using the prefix after collect: %q", procs)
	}
	if tmpAfter, _ := filepath.Glob(filepath.Join(os.TempDir(), "lago-readfiles-*")); len(tmpAfter) > len(tmpBefore) {
		t.Errorf("temporary folders left: %q", tmpAfter)
	}
	h.must("start", "vm0")
	if got := h.shell("vm0", "cat /root/art/a.log"); got != "vm0\n" {
		t.Errorf("vm0 after the reads: a.log = %q", got)
	}

	h.must("destroy", "--yes")
	h.assertNothingLeft()
}

// processesWith lists the command lines of guestfish and qemu processes
// that name a path below dir, other than the VMs' own qemu.
func processesWith(dir string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, dir) && (strings.Contains(cmd, "guestfish") || strings.Contains(cmd, "guestfs")) {
			out = append(out, cmd)
		}
	}
	return out
}
