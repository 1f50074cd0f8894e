//go:build e2e

package e2e_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tinyDisk is the disk section of a VM booting the tiny template.
const tinyDisk = `    disks:
      - template_name: tiny
        type: template
        name: root
        dev: vda
        format: qcow2
`

// vmBlock returns an init-file domain with the given NIC lines.
func vmBlock(name string, nics ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  %s:\n    memory: 256\n    vcpu: 1\n    nics:\n", name)
	for _, n := range nics {
		fmt.Fprintf(&b, "      - %s\n", n)
	}
	b.WriteString(tinyDisk)
	return b.String()
}

const oneNet = `nets:
  lago:
    type: nat
    dhcp:
      start: 100
      end: 254
    management: true
    dns_domain_name: lago.local
`

func TestOneVMLifecycle(t *testing.T) {
	h := newHarness(t)
	h.initEnv(h.writeInitFile("domains:\n" + vmBlock("vm0", "net: lago") + oneNet))

	if _, err := os.Stat(filepath.Join(h.dir, ".lago", "current")); err != nil {
		t.Fatalf("init made no workdir: %v", err)
	}
	st := h.status()
	if got := st.vmStatus("vm0"); got != "down" {
		t.Errorf("status after init: vm0 is %q, want down", got)
	}

	h.must("start")
	st = h.status()
	if got := st.vmStatus("vm0"); got != "running" {
		t.Errorf("status after start: vm0 is %q, want running", got)
	}
	if got := st.netStatus("lago"); got != "up" {
		t.Errorf("status after start: net lago is %q, want up", got)
	}
	ip := st.vmIP("vm0", "lago")
	if !regexp.MustCompile(`^192\.168\.2[0-5][0-9]\.\d+$`).MatchString(ip) {
		t.Errorf("vm0 ip %q is not in Lago's 192.168.200-255 range", ip)
	}

	// The front-end starts the provider plugin while the engine loads, and
	// the engine uses that process instead of starting one; LAGO_PRESTART=0
	// turns it off and changes nothing else.
	const adopted = "using the plugin process the front-end started"
	on := h.lago("-l", "debug", "-f", "yaml", "status")
	if on.code != 0 || strings.Count(on.stderr, adopted) != 1 || strings.Contains(on.stderr, "starting plugin:") ||
		strings.Count(on.stderr, "plugin process exited") != 1 {
		t.Errorf("status did not run on the prestarted plugin alone:\n%s", on)
	}
	saved := h.extraEnv
	h.extraEnv = append(append([]string(nil), saved...), "LAGO_PRESTART=0")
	off := h.lago("-l", "debug", "-f", "yaml", "status")
	h.extraEnv = saved
	if off.code != 0 || strings.Contains(off.stderr, adopted) || !strings.Contains(off.stderr, "starting plugin:") {
		t.Errorf("LAGO_PRESTART=0 status:\n%s", off)
	}
	if on.stdout != off.stdout {
		t.Errorf("status differs with and without prestart:\n%s\n---\n%s", on.stdout, off.stdout)
	}

	// The default format keeps the original's layout.
	def := h.must("status")
	for _, want := range []string{"[Prefix]:", "[VMs]:", "[vm0]:", "status: running", "ip: " + ip} {
		if !strings.Contains(def, want) {
			t.Errorf("default status lacks %q:\n%s", want, def)
		}
	}

	// shell runs a command line in the guest's shell, as ssh(1) does, and
	// returns its exit code.
	if got := strings.TrimSpace(h.shell("vm0", "hostname", "-f")); got != "vm0.lago.local" {
		t.Errorf("hostname -f = %q, want vm0.lago.local", got)
	}
	if got := strings.TrimSpace(h.shell("vm0", "echo", "a  b", "$HOME")); got != "a b /root" {
		t.Errorf("shell words came back as %q, want the guest shell's %q", got, "a b /root")
	}
	if r := h.lago("shell", "vm0", "exit 7"); r.code != 7 {
		t.Errorf("shell exit code %d, want 7\n%s", r.code, r)
	}
	// A script fed on stdin runs too (shell without a command reads stdin).
	if r := h.lagoStdin("echo from-stdin\n", "shell", "vm0"); r.code != 0 || !strings.Contains(r.stdout, "from-stdin") {
		t.Errorf("shell with a script on stdin:\n%s", r)
	}

	// Commands after the first go through one kept connection: the guest
	// sees them come from one client port. stop releases it.
	clientPort := func() string {
		f := strings.Fields(h.shell("vm0", "echo $SSH_CLIENT"))
		if len(f) != 3 {
			t.Fatalf("SSH_CLIENT in the guest is %q", f)
		}
		return f[1]
	}
	if p1, p2 := clientPort(), clientPort(); p1 != p2 {
		t.Errorf("two commands came from client ports %s and %s: the ssh connection was not kept", p1, p2)
	}
	if socks := h.muxSockets(h.uuid()); len(socks) != 1 {
		t.Errorf("ssh mux sockets of vm0: %v, want one", socks)
	}

	h.must("stop")
	if socks := h.muxSockets(h.uuid()); len(socks) != 0 {
		t.Errorf("stop left the ssh mux of vm0: %v", socks)
	}
	st = h.status()
	if got := st.vmStatus("vm0"); got != "down" {
		t.Errorf("status after stop: vm0 is %q, want down", got)
	}
	if got := st.netStatus("lago"); got != "down" {
		t.Errorf("status after stop: net lago is %q, want down", got)
	}

	h.must("destroy", "--yes")
	if _, err := os.Stat(filepath.Join(h.dir, ".lago")); !os.IsNotExist(err) {
		t.Errorf("destroy left the workdir: %v", err)
	}
	h.assertNothingLeft()
}

func TestMultiVMTwoNets(t *testing.T) {
	h := newHarness(t)
	initFile := "domains:\n" +
		vmBlock("vm0", "net: net-a\n        ip: 192.168.250.77", "net: net-b") +
		vmBlock("vm1", "net: net-a", "net: net-b") +
		vmBlock("vm2", "net: net-a") +
		`nets:
  net-a:
    type: nat
    management: true
    dns_domain_name: lago.local
  net-b:
    type: nat
`
	h.initEnv(h.writeInitFile(initFile))
	h.must("start")
	st := h.status()
	for _, vm := range []string{"vm0", "vm1", "vm2"} {
		if got := st.vmStatus(vm); got != "running" {
			t.Errorf("%s is %q, want running", vm, got)
		}
	}
	// A static IP keeps its last octet on the leased subnet.
	if ip := st.vmIP("vm0", "net-a"); !strings.HasSuffix(ip, ".77") {
		t.Errorf("vm0's static ip on net-a is %q, want *.77", ip)
	}
	aIP, bIP := st.vmIP("vm1", "net-a"), st.vmIP("vm1", "net-b")
	if prefix24(aIP) == prefix24(bIP) {
		t.Errorf("net-a and net-b share the subnet %s", prefix24(aIP))
	}

	for _, vm := range []string{"vm0", "vm1", "vm2"} {
		if got := strings.TrimSpace(h.shell(vm, "hostname", "-f")); got != vm+".lago.local" {
			t.Errorf("%s: hostname -f = %q, want %s.lago.local", vm, got, vm)
		}
	}
	// Name resolution between VMs on the management net.
	pings := [][2]string{{"vm0", "vm1"}, {"vm1", "vm2"}, {"vm2", "vm0"}}
	for _, p := range pings {
		if r := h.lago("shell", p[0], "ping", "-c1", "-W5", p[1]); r.code != 0 {
			t.Errorf("ping %s from %s failed:\n%s", p[1], p[0], r)
		}
	}
	// The second net is configured in the guests that have it.
	if out := h.shell("vm1", "ip", "-4", "-o", "addr"); !strings.Contains(out, bIP+"/") {
		t.Errorf("vm1 lacks its net-b address %s:\n%s", bIP, out)
	}
	if r := h.lago("shell", "vm0", "ping", "-c1", "-W5", bIP); r.code != 0 {
		t.Errorf("vm0 cannot reach vm1 over net-b (%s):\n%s", bIP, r)
	}

	h.must("destroy", "--yes")
	h.assertNothingLeft()
}

func prefix24(ip string) string {
	if i := strings.LastIndex(ip, "."); i > 0 {
		return ip[:i]
	}
	return ip
}

func TestStartStopSubset(t *testing.T) {
	h := newHarness(t)
	h.initEnv(h.writeInitFile("domains:\n" + vmBlock("vm0", "net: lago") + vmBlock("vm1", "net: lago") + oneNet))

	h.must("start", "vm0")
	st := h.status()
	if st.vmStatus("vm0") != "running" || st.vmStatus("vm1") != "down" {
		t.Fatalf("after start vm0: vm0 %q, vm1 %q; want running, down", st.vmStatus("vm0"), st.vmStatus("vm1"))
	}
	if got := st.netStatus("lago"); got != "up" {
		t.Errorf("net lago is %q while vm0 runs", got)
	}
	if got := strings.TrimSpace(h.shell("vm0", "hostname")); got != "vm0" {
		t.Errorf("vm0 hostname %q", got)
	}

	h.must("start", "vm1")
	h.must("stop", "vm0")
	st = h.status()
	if st.vmStatus("vm0") != "down" || st.vmStatus("vm1") != "running" {
		t.Fatalf("after stop vm0: vm0 %q, vm1 %q; want down, running", st.vmStatus("vm0"), st.vmStatus("vm1"))
	}
	if got := st.netStatus("lago"); got != "up" {
		t.Errorf("stop vm0 took down the net vm1 still uses: %q", got)
	}
	if got := strings.TrimSpace(h.shell("vm1", "hostname")); got != "vm1" {
		t.Errorf("vm1 hostname %q", got)
	}
	if r := h.lago("shell", "vm0", "true"); r.code == 0 {
		t.Errorf("shell on a stopped VM succeeded")
	}

	h.must("stop", "vm1")
	if got := h.status().netStatus("lago"); got != "down" {
		t.Errorf("net lago is %q after its last VM stopped, want down", got)
	}
	h.must("destroy", "--yes")
	h.assertNothingLeft()
}

func TestSnapshotRevert(t *testing.T) {
	h := newHarness(t)
	h.initEnv(h.writeInitFile("domains:\n" + vmBlock("vm0", "net: lago") + oneNet))
	h.must("start")

	// exists tells whether path exists in vm0; anything but test's own
	// answers (0, 1) means the shell itself failed.
	exists := func(h *harness, path string) bool {
		h.t.Helper()
		r := h.lago("shell", "vm0", "test", "-e", path)
		switch r.code {
		case 0:
			return true
		case 1:
			return false
		}
		h.t.Fatalf("cannot check %s in vm0:\n%s", path, r)
		return false
	}

	// writable checks that vm0's root filesystem takes writes, within a
	// guest-side timeout: a filesystem left frozen would hang the write.
	writable := func(h *harness, path string) {
		h.t.Helper()
		if r := h.lago("shell", "vm0", "timeout 20 sh -c 'echo w > "+path+" && sync'"); r.code != 0 {
			h.t.Errorf("writing %s in vm0 failed (filesystem still frozen?):\n%s", path, r)
		}
	}

	t.Run("running VM", func(t *testing.T) {
		h := h.sub(t)
		h.shell("vm0", "echo before > /root/before && sync")
		h.waitAgent("vm0")
		h.must("snapshot", "live")
		// The template runs qemu-guest-agent, but a running guest is not
		// frozen around its snapshot: the freeze would be saved in the
		// memory state, and every revert would resume a frozen guest.
		x, err := virsh(t, h.env.URI, "snapshot-dumpxml", h.domain(h.env.URI, "vm0"), "live")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(x, "lago: quiesced") {
			t.Errorf("snapshot live was taken with the guest frozen:\n%s", x)
		}
		if got := h.freezeStatus("vm0"); got != "thawed" {
			t.Errorf("after the snapshot the guest's filesystems are %q, want thawed", got)
		}
		h.shell("vm0", "echo after > /root/after && sync")
		if list := h.must("snapshot", "--list"); !strings.Contains(list, "live") {
			t.Errorf("snapshot --list lacks live:\n%s", list)
		}
		h.must("revert", "live")
		// Reverting restarts qemu with new taps; they forward at once (a
		// bridge with STP holds a new port 4 s, the VM unreachable).
		for _, tap := range h.taps("vm0") {
			st, err := os.ReadFile("/sys/class/net/" + tap + "/brport/state")
			if err != nil {
				t.Fatalf("tap %s of vm0: %v", tap, err)
			}
			if got := strings.TrimSpace(string(st)); got != "3" {
				t.Errorf("right after revert, vm0's tap %s is in bridge port state %s, want 3 (forwarding)", tap, got)
			}
		}
		if got := h.status().vmStatus("vm0"); got != "running" {
			t.Fatalf("after reverting a live snapshot vm0 is %q, want running", got)
		}
		if !exists(h, "/root/before") {
			t.Error("/root/before, written before the snapshot, is gone")
		}
		if exists(h, "/root/after") {
			t.Error("/root/after, written after the snapshot, survived the revert")
		}
		if got := h.freezeStatus("vm0"); got != "thawed" {
			t.Errorf("after reverting the guest's filesystems are %q, want thawed", got)
		}
		writable(h, "/root/after-revert")
	})

	t.Run("stopped VM", func(t *testing.T) {
		h := h.sub(t)
		h.must("stop")
		h.must("snapshot", "cold")
		h.must("start")
		h.shell("vm0", "echo after > /root/after-cold && sync")
		h.must("stop")
		h.must("revert", "cold")
		h.must("start")
		if !exists(h, "/root/before") {
			t.Error("/root/before is gone after reverting the cold snapshot")
		}
		if exists(h, "/root/after-cold") {
			t.Error("/root/after-cold, written after the cold snapshot, survived the revert")
		}
	})

	h.must("destroy", "--yes")
	h.assertNothingLeft()
}

// TestKilledStartThenDestroy kills `lago start` with SIGKILL once a VM is
// running, then checks that `lago destroy --yes` still removes every domain,
// network and lease of the prefix.
func TestKilledStartThenDestroy(t *testing.T) {
	h := newHarness(t)
	h.initEnv(h.writeInitFile("domains:\n" + vmBlock("vm0", "net: lago") + vmBlock("vm1", "net: lago") + oneNet))

	cmd := h.command(t.Context(), "", "start")
	logf, err := os.Create(filepath.Join(h.dir, "start.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	killed := false
	deadline := time.Now().Add(5 * time.Minute)
	for !killed && time.Now().Before(deadline) {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(h.dir, "start.log"))
			t.Fatalf("lago start finished (%v) before any domain was seen running:\n%s", err, log)
		case <-time.After(100 * time.Millisecond):
		}
		if h.domainState(h.env.URI, "vm0") == "running" || h.domainState(h.env.URI, "vm1") == "running" {
			// Only the lago process: its plugins must cope with a dead parent.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	if !killed {
		t.Fatal("no domain of the prefix ran within 5 minutes of lago start")
	}
	<-exited
	if len(libvirtObjects(t, h.env.URI, h.dir)) == 0 {
		t.Fatal("nothing of the half-started environment is in libvirt; the test proves nothing")
	}

	h.must("destroy", "--yes")
	h.assertNothingLeft()
	if _, err := os.Stat(filepath.Join(h.dir, ".lago")); !os.IsNotExist(err) {
		t.Errorf("destroy left the workdir: %v", err)
	}
}

// TestRemoteProvider runs a VM on the second libvirtd (qemu+tcp), which sees
// none of the client's files: the provider must upload the template and
// create the disk there.
func TestRemoteProvider(t *testing.T) {
	h := newHarness(t)
	if h.env.RemoteURL == "" {
		t.Fatal("LAGO_E2E_REMOTE_URL is empty: test/e2e/remote-libvirtd.sh did not start (see its log in run.sh's log folder)")
	}
	h.writeConfig(fmt.Sprintf("[provider remote]\nplugin = libvirt\nlibvirt_url = %s\ndomain_type = qemu\n", h.env.RemoteURL))
	initFile := "domains:\n" +
		strings.Replace(vmBlock("rvm", "net: lago"), "    vcpu: 1\n", "    vcpu: 1\n    vm-provider: remote\n", 1) +
		oneNet
	h.initEnv(h.writeInitFile(initFile))
	h.must("start")
	if got := h.status().vmStatus("rvm"); got != "running" {
		t.Fatalf("rvm is %q, want running", got)
	}
	if got := strings.TrimSpace(h.shell("rvm", "hostname", "-f")); got != "rvm.lago.local" {
		t.Errorf("hostname -f = %q, want rvm.lago.local", got)
	}
	if got := h.domainState(h.env.RemoteURL, "rvm"); got != "running" {
		t.Errorf("the remote libvirtd reports rvm %q, want running", got)
	}
	if got := h.domainState(h.env.URI, "rvm"); got != "" {
		t.Errorf("rvm exists on the local libvirtd too (%q)", got)
	}
	h.must("destroy", "--yes")
	h.assertNothingLeft(h.env.URI, h.env.RemoteURL)
}

// TestBootstrapInjectsKey runs init with bootstrap (virt-sysprep): the
// prefix's key is injected and the hostname set, so lago logs in with the key.
func TestBootstrapInjectsKey(t *testing.T) {
	h := newHarness(t)
	h.extraEnv = append(h.extraEnv, "LIBGUESTFS_BACKEND=direct", "LIBGUESTFS_BACKEND_SETTINGS=force_tcg")
	h.initEnv(h.writeInitFile("domains:\n"+vmBlock("vm0", "net: lago")+oneNet), "--bootstrap")
	pub, err := os.ReadFile(filepath.Join(h.dir, ".lago", "current", "id_rsa.pub"))
	if err != nil {
		t.Fatalf("prefix key: %v", err)
	}
	h.must("start")
	keys := h.shell("vm0", "cat", "/root/.ssh/authorized_keys")
	if !strings.Contains(keys, strings.TrimSpace(string(pub))) {
		t.Errorf("the prefix key is not in authorized_keys:\n%s", keys)
	}
	h.must("destroy", "--yes")
	h.assertNothingLeft()
}

// TestDeployAndShutdown runs deploy scripts (fed to `bash -s`, $VARS
// expanded in their paths), reports a failing script by name, status and
// VM, reboots a VM and shuts another down through ACPI.
func TestDeployAndShutdown(t *testing.T) {
	h := newHarness(t)
	ok := filepath.Join(h.dir, "ok.sh")
	bad := filepath.Join(h.dir, "bad.sh")
	if err := os.WriteFile(ok, []byte("echo deployed-$(hostname) > /root/deployed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("exit 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	withScript := func(vm, script string) string {
		return strings.Replace(vmBlock(vm, "net: lago"), "    vcpu: 1\n",
			"    vcpu: 1\n    metadata:\n      deploy-scripts:\n        - "+script+"\n", 1)
	}
	initFile := "domains:\n" +
		withScript("vm0", "$LAGO_INITFILE_PATH/ok.sh") +
		withScript("vm1", bad) +
		oneNet
	h.initEnv(h.writeInitFile(initFile))
	h.must("start")

	t.Run("deploy", func(t *testing.T) {
		h := h.sub(t)
		r := h.lago("deploy")
		if r.code == 0 {
			t.Fatalf("deploy with a failing script succeeded:\n%s", r)
		}
		if want := "failed with status 3 on vm1"; !strings.Contains(r.stderr, want) {
			t.Errorf("deploy error lacks %q:\n%s", want, r)
		}
		if got := strings.TrimSpace(h.shell("vm0", "cat", "/root/deployed")); got != "deployed-vm0" {
			t.Errorf("vm0's deploy script left %q, want deployed-vm0", got)
		}
	})

	// After `shutdown --reboot` returns, the VM answers again from a new
	// boot. The boot id, not the uptime, tells: a guest that was itself
	// just booted is back at the same uptime after a quick reboot.
	t.Run("reboot", func(t *testing.T) {
		h := h.sub(t)
		bootID := func() string {
			id := strings.TrimSpace(h.shell("vm1", "cat", "/proc/sys/kernel/random/boot_id"))
			if len(id) != 36 {
				t.Fatalf("boot id %q is not a uuid", id)
			}
			return id
		}
		before := bootID()
		h.must("shutdown", "--reboot", "vm1")
		if after := bootID(); after == before {
			t.Errorf("vm1 boot id still %s after shutdown --reboot returned", before)
		}
	})

	// Graceful shutdown through the ACPI power button (busybox acpid).
	t.Run("shutdown", func(t *testing.T) {
		h := h.sub(t)
		h.must("shutdown", "vm0")
		if got := h.domainState(h.env.URI, "vm0"); got == "running" {
			t.Errorf("vm0 still running after lago shutdown")
		}
		st := h.status()
		if got := st.vmStatus("vm0"); got == "running" {
			t.Errorf("status says vm0 is running after lago shutdown")
		}
		if got := st.vmStatus("vm1"); got != "running" {
			t.Errorf("shutdown of vm0 changed vm1 to %q", got)
		}
	})

	h.must("destroy", "--yes")
	h.assertNothingLeft()
}

// TestStartNoticesStoppedVM: a VM that powers off while start waits for
// its ssh fails the start within seconds (not at the 10-minute timeout),
// naming the VM, and the start is rolled back.
func TestStartNoticesStoppedVM(t *testing.T) {
	h := newHarness(t)
	h.initEnv(h.writeInitFile("domains:\n" + vmBlock("vm0", "net: lago") + oneNet))

	cmd := h.command(t.Context(), "", "start")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var name string
	deadline := time.Now().Add(2 * time.Minute)
	for name == "" && time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("lago start finished (%v) before vm0 ran:\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		for _, o := range libvirtObjects(t, h.env.URI, h.dir) {
			if o.Kind == "domain" && strings.HasSuffix(o.Name, "-vm0") && h.domainState(h.env.URI, "vm0") == "running" {
				name = o.Name
			}
		}
	}
	if name == "" {
		t.Fatal("vm0 did not run within 2 minutes of lago start")
	}
	// Power it off before it can boot to ssh (a boot takes seconds).
	if _, err := virsh(t, h.env.URI, "destroy", name); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	select {
	case err := <-exited:
		if err == nil {
			t.Fatalf("lago start succeeded although vm0 was powered off:\n%s", out.String())
		}
		if el := time.Since(stopped); el > 30*time.Second {
			t.Errorf("lago start took %s to notice", el)
		}
		if !strings.Contains(out.String(), "vm vm0 stopped (shut off)") {
			t.Errorf("lago start does not say vm0 stopped:\n%s", out.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("lago start still waits 2 minutes after vm0 was powered off:\n%s", out.String())
	}
	if got := h.status().netStatus("lago"); got != "down" {
		t.Errorf("the failed start left net lago %q", got)
	}
	h.must("destroy", "--yes")
	h.assertNothingLeft()
}
