//go:build e2e

package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// templateMachineID is the tiny template's /etc/machine-id
// (test/e2e/mktemplate.sh).
const templateMachineID = "6c61676f746966796d616368696e6569"

// TestBootstrapThreeVMs inits three clones of the tiny template with
// bootstrap on and no LIBGUESTFS_* variables (the defaults must work on a
// host without usable KVM), then checks in the booted guests what a clone
// needs: lago logs in with the prefix's key alone (the template accepts no
// other), each answers its own name, and has a machine-id and ssh host key
// of its own.
func TestBootstrapThreeVMs(t *testing.T) {
	h := newHarness(t)
	h.extraEnv = append(h.extraEnv, "LIBGUESTFS_BACKEND=", "LIBGUESTFS_BACKEND_SETTINGS=")
	vms := []string{"vm0", "vm1", "vm2"}
	var b strings.Builder
	b.WriteString("domains:\n")
	for _, vm := range vms {
		b.WriteString(vmBlock(vm, "net: lago"))
	}
	b.WriteString(oneNet)
	began := time.Now()
	r := h.lago("init", "--template-repo-path", h.env.TemplateRepo, h.writeInitFile(b.String()))
	took := time.Since(began)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	*h.uuids = append(*h.uuids, h.uuid())
	t.Logf("init of 3 VMs with bootstrap: %s", took.Round(100*time.Millisecond))
	prefix := filepath.Join(h.dir, ".lago", "current")

	// Progress: a line per step and VM, each VM's time, on the terminal
	// and in the prefix log; one appliance for the three disks.
	log, err := os.ReadFile(filepath.Join(prefix, "logs", "lago.log"))
	if err != nil {
		t.Fatalf("prefix log: %v", err)
	}
	for _, vm := range vms {
		for _, want := range []string{"lago: " + vm + ": bootstrap root-password", "lago: " + vm + ": bootstrapped in "} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("init's output lacks %q:\n%s", want, r.stderr)
			}
		}
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`bootstrap.*vm=` + vm + `.*step=root-password`),
			regexp.MustCompile(`bootstrapped.*vm=` + vm + `.*took=`),
		} {
			if !want.Match(log) {
				t.Errorf("the prefix log lacks %s", want)
			}
		}
	}
	if n := strings.Count(r.stderr, "lago: bootstrap: start the libguestfs appliance for 3 disk(s)"); n != 1 {
		t.Errorf("%d appliance starts for 3 disks, want 1:\n%s", n, r.stderr)
	}

	// On the disks before the first boot (the guest's DHCP hook renames
	// it too, so only the disk tells that bootstrap did).
	for _, vm := range vms {
		disk := filepath.Join(prefix, "images", vm+"_root.qcow2")
		if got := diskFile(t, disk, "/etc/hostname"); got != vm+"\n" {
			t.Errorf("%s: /etc/hostname on the disk = %q, want %q", vm, got, vm+"\n")
		}
		if got := diskFile(t, disk, "/root/.ssh/authorized_keys"); strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, "ssh-ed25519 ") {
			t.Errorf("%s: authorized_keys on the disk = %q, want the prefix key alone", vm, got)
		}
	}

	h.must("start")
	st := h.status()
	key := filepath.Join(prefix, "id_rsa")
	ids := map[string]string{}
	hostKeys := map[string]string{}
	for _, vm := range vms {
		ip := st.vmIP(vm, "lago")
		out := sshKeyOnly(t, key, ip, "hostname; cat /etc/machine-id")
		lines := strings.Fields(out)
		if len(lines) != 2 {
			t.Fatalf("%s: ssh with the prefix key alone printed %q", vm, out)
		}
		if lines[0] != vm {
			t.Errorf("%s: hostname = %q", vm, lines[0])
		}
		id := lines[1]
		if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) || id == templateMachineID {
			t.Errorf("%s: machine-id %q is not a new one (template's: %s)", vm, id, templateMachineID)
		}
		if other, ok := ids[id]; ok {
			t.Errorf("%s and %s share machine-id %s", vm, other, id)
		}
		ids[id] = vm
		hk := hostKey(t, ip)
		if other, ok := hostKeys[hk]; ok {
			t.Errorf("%s and %s share the ssh host key %s", vm, other, hk)
		}
		hostKeys[hk] = vm
		// Through lago too, which logs in the same way.
		if got := strings.TrimSpace(h.shell(vm, "hostname")); got != vm {
			t.Errorf("lago shell %s hostname = %q", vm, got)
		}
	}
	h.must("destroy", "--yes")
	h.assertNothingLeft()
}

// TestBootstrapImpossibleStep: an ssh-user the guest does not have makes
// bootstrap fail; the error names the VM, the step and why, and init
// leaves nothing behind.
func TestBootstrapImpossibleStep(t *testing.T) {
	h := newHarness(t)
	vm := strings.Replace(vmBlock("vm0", "net: lago"), "    vcpu: 1\n", "    vcpu: 1\n    ssh-user: lagonobody\n", 1)
	r := h.lago("init", "--template-repo-path", h.env.TemplateRepo, h.writeInitFile("domains:\n"+vm+oneNet))
	if r.code == 0 {
		*h.uuids = append(*h.uuids, h.uuid())
		t.Fatalf("init with an ssh-user the guest lacks succeeded:\n%s", r)
	}
	if want := "bootstrap vm vm0: ssh-inject: user lagonobody is not in the guest's /etc/passwd"; !strings.Contains(r.stderr, want) {
		t.Errorf("init error lacks %q:\n%s", want, r)
	}
	if _, err := os.Stat(filepath.Join(h.dir, ".lago")); !os.IsNotExist(err) {
		t.Errorf("the failed init left its workdir (%v)", err)
	}
	h.assertNothingLeft()
}

// sshKeyOnly runs script on ip as root with the key and nothing else: no
// password, no agent, no other identity.
func sshKeyOnly(t *testing.T, key, ip, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", "-F", "/dev/null", "-i", key,
		"-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
		"-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "ConnectTimeout=30", "-o", "LogLevel=ERROR",
		"root@"+ip, script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ssh -i %s root@%s: %v: %s", key, ip, err, stderr.String())
	}
	return string(out)
}

// hostKey returns the ed25519 host key ip's sshd offers.
func hostKey(t *testing.T, ip string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ssh-keyscan", "-T", "20", "-t", "ed25519", ip).Output()
	if err != nil {
		t.Fatalf("ssh-keyscan %s: %v", ip, err)
	}
	f := strings.Fields(string(out))
	if len(f) != 3 || f[1] != "ssh-ed25519" {
		t.Fatalf("ssh-keyscan %s printed %q", ip, out)
	}
	return f[2]
}

// diskFile reads a file of the tiny template's root filesystem (its second
// partition) from a qcow2 disk without starting anything: qemu-img makes a
// raw copy, debugfs reads the ext4 filesystem at the partition's offset.
func diskFile(t *testing.T, disk, file string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	raw := filepath.Join(t.TempDir(), "disk.raw")
	run := func(name string, args ...string) string {
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
		}
		return string(out)
	}
	run("qemu-img", "convert", "-O", "raw", disk, raw)
	start, err := strconv.Atoi(strings.TrimSpace(run("partx", "-g", "-o", "START", "-n", "2", raw)))
	if err != nil {
		t.Fatalf("partition 2 of %s: %v", disk, err)
	}
	return run("debugfs", "-R", "cat "+file, fmt.Sprintf("%s?offset=%d", raw, start*512))
}
