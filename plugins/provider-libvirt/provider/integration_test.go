package provider

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	"github.com/lago-go/lago/sdk"
	"libvirt.org/go/libvirt"
)

// Integration tests run against a real libvirtd when LAGO_LIBVIRT_TEST_URI
// is set (the e2e runner sets it and runs the tests inside its network
// namespace). Optional:
//
//	LAGO_LIBVIRT_TEST_TEMPLATE     a bootable qcow2 template (test/e2e/mktemplate.sh);
//	                               without it the VM has an empty disk
//	LAGO_LIBVIRT_TEST_DIR          folder for disks and logs (default /var/tmp)
//	LAGO_LIBVIRT_TEST_REMOTE_URI   a libvirtd that cannot see our files
//	                               (test/e2e/remote-libvirtd.sh)
//	LAGO_LIBVIRT_TEST_STRICT=1     what would skip fails instead (the e2e
//	                               runner sets it: a skip there is a gap)
//	LAGO_LIBVIRT_TEST_REQUIRE_REMOTE=1
//	                               the remote-mode test fails instead of
//	                               falling back to the local libvirtd
//
// Every object is created under a random test uuid and removed with
// RemoveOwned in t.Cleanup.

func integrationURI(t *testing.T) string {
	t.Helper()
	uri := os.Getenv("LAGO_LIBVIRT_TEST_URI")
	if uri == "" {
		skipOrFail(t, "LAGO_LIBVIRT_TEST_URI is not set: skipping tests against a real libvirtd (e.g. LAGO_LIBVIRT_TEST_URI=qemu:///system)")
	}
	return uri
}

// strictTests reports whether the e2e runner asked that nothing be skipped.
func strictTests() bool { return os.Getenv("LAGO_LIBVIRT_TEST_STRICT") == "1" }

// skipOrFail skips a test whose prerequisite is missing, except under the
// e2e runner, where a missing prerequisite is a broken harness and fails.
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if strictTests() {
		t.Fatal(why + " (LAGO_LIBVIRT_TEST_STRICT=1: the e2e runner must provide it)")
	}
	t.Skip(why)
}

func randomUUID(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "e2e" + hex.EncodeToString(b)[:29]
}

func testWorkdir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("LAGO_LIBVIRT_TEST_DIR")
	if base == "" {
		base = "/var/tmp"
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(base, "lago-provider-it-")
	if err != nil {
		t.Fatal(err)
	}
	// qemu runs as its own user: it must be able to reach the disks.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// freeSubnet picks a /24 in the reference's range that nothing on the
// hypervisor uses, from the top so it rarely meets the core's lowest-first
// leases of concurrent tests.
func freeSubnet(t *testing.T, p *Provider) int {
	t.Helper()
	used, err := p.UsedSubnets(ctx)
	if d := (sdk.Diagnostics{}); errors.As(err, &d) && d.HasErrors() || err != nil && !errors.As(err, &d) {
		t.Fatalf("UsedSubnets: %v", err)
	}
	for octet := 254; octet >= 200; octet-- {
		want := netip.MustParsePrefix(fmt.Sprintf("192.168.%d.0/24", octet))
		free := true
		for _, u := range used {
			if pfx, err := netip.ParsePrefix(u.Cidr); err == nil && pfx.Overlaps(want) {
				free = false
			}
		}
		if free {
			return octet
		}
	}
	t.Fatal("no free 192.168.200-254.0/24 subnet")
	return 0
}

// noError fails on error diagnostics and tolerates warnings.
func noError(t *testing.T, what string, err error) {
	t.Helper()
	var d sdk.Diagnostics
	if err != nil && (!errors.As(err, &d) || d.HasErrors()) {
		t.Fatalf("%s: %v", what, err)
	}
}

type itEnv struct {
	p        *Provider
	env      *providerv1.EnvRef
	nets     []*providerv1.Network
	vm       *providerv1.VM
	bootable bool
	dir      string
}

func setupIntegration(t *testing.T, config map[string]string) *itEnv {
	t.Helper()
	dir := testWorkdir(t)
	p := New(hclog.NewNullLogger())
	if config[SettingDomainType] == "" {
		config[SettingDomainType] = "qemu"
	}
	noError(t, "Configure", p.Configure(ctx, config, nil))
	env := &providerv1.EnvRef{PrefixPath: dir, Uuid: randomUUID(t)}
	t.Cleanup(func() {
		noError(t, "RemoveOwned in cleanup", p.RemoveOwned(ctx, env, nil))
		owned, err := p.ListOwned(ctx)
		noError(t, "ListOwned", err)
		for _, r := range owned {
			if r.OwnerUuid == env.Uuid {
				t.Errorf("left behind after RemoveOwned: %+v", r)
			}
		}
		_ = p.Close()
	})
	octet := freeSubnet(t, p)
	ip := fmt.Sprintf("192.168.%d.2", octet)
	mac := fmt.Sprintf("54:52:c0:a8:%02x:02", octet)
	n0 := &providerv1.Network{
		Name: "n0", Type: "nat", Gateway: fmt.Sprintf("192.168.%d.1", octet), PrefixLength: 24,
		DhcpStart: fmt.Sprintf("192.168.%d.100", octet), DhcpEnd: fmt.Sprintf("192.168.%d.254", octet),
		Management: true, DnsDomainName: "lago.local",
		Ipv6Gateway: fmt.Sprintf("fd8f:1391:3a82:%d::1", octet), Ipv6PrefixLength: 64,
		Hosts:      []*providerv1.DhcpHost{{Name: "vm0", Mac: mac, Ip: ip}},
		DnsRecords: []*providerv1.DnsRecord{{Hostname: "vm0", Ip: ip}},
	}
	n1 := &providerv1.Network{Name: "n1", Type: "bridge"}
	root := &providerv1.Disk{Name: "root", Dev: "vda", Type: "empty", Format: "qcow2", SizeBytes: 64 << 20,
		Path: filepath.Join(dir, "images", "vm0_root.qcow2")}
	// A cdrom: snapshots of running and stopped VMs must cope with it.
	iso := filepath.Join(dir, "cd.iso")
	if err := os.WriteFile(iso, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	bootable := false
	if tpl := os.Getenv("LAGO_LIBVIRT_TEST_TEMPLATE"); tpl != "" {
		// A private copy: libvirt relabels backing files, and the cached
		// template is shared with other tests.
		cp := filepath.Join(dir, "store", "e2e:tiny:v1")
		if err := os.MkdirAll(filepath.Dir(cp), 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("cp", "--", tpl, cp).CombinedOutput(); err != nil {
			t.Fatalf("copy template: %v: %s", err, out)
		}
		root = &providerv1.Disk{Name: "root", Dev: "vda", Type: "template", Format: "qcow2",
			Path: filepath.Join(dir, "images", "vm0_root.qcow2"), TemplatePath: cp, TemplateFormat: "qcow2",
			TemplateKey: "e2e:tiny:v1", TemplateHash: env.Uuid}
		bootable = true
	}
	vm := &providerv1.VM{
		Name: "vm0", MemoryMib: 256, Vcpu: 1,
		Nics: []*providerv1.Nic{{Net: "n0", Ip: ip, Mac: mac}, {Net: "n1", Mac: fmt.Sprintf("54:52:00:00:%02x:02", octet)}},
		Disks: []*providerv1.Disk{root,
			{Name: "data", Dev: "sdb", Type: "empty", SizeBytes: 16 << 20, Path: filepath.Join(dir, "images", "vm0_data.qcow2")},
			{Name: "cd", Dev: "hdc", Type: "iso", SourcePath: iso},
		},
		SerialLogPath: filepath.Join(dir, "logs", "vm0.serial.log"),
	}
	return &itEnv{p: p, env: env, nets: []*providerv1.Network{n0, n1}, vm: vm, bootable: bootable, dir: dir}
}

func TestIntegrationLocal(t *testing.T) {
	uri := integrationURI(t)
	runIntegration(t, map[string]string{SettingURL: uri})
}

// TestIntegrationRemoteMode exercises the storage pool code path: against
// LAGO_LIBVIRT_TEST_REMOTE_URI when set (a libvirtd that cannot see our
// files), else against LAGO_LIBVIRT_TEST_URI with remote=yes and a pool of
// its own.
func TestIntegrationRemoteMode(t *testing.T) {
	uri := os.Getenv("LAGO_LIBVIRT_TEST_REMOTE_URI")
	config := map[string]string{SettingURL: uri}
	if uri == "" {
		if os.Getenv("LAGO_LIBVIRT_TEST_REQUIRE_REMOTE") == "1" {
			t.Fatal("LAGO_LIBVIRT_TEST_REQUIRE_REMOTE=1 but LAGO_LIBVIRT_TEST_REMOTE_URI is empty: the remote libvirtd did not start (see remote-libvirtd.log)")
		}
		uri = integrationURI(t)
		config = map[string]string{SettingURL: uri, SettingRemote: "yes"}
	}
	pool := "lago-it-" + randomUUID(t)[3:11]
	config[SettingStoragePool] = pool
	config[SettingPoolPath] = "/var/tmp/" + pool
	t.Cleanup(func() { removePool(t, uri, pool) })
	runIntegration(t, config)
}

// removePool deletes a test storage pool with everything in it (the shared
// template volume is nobody's, so RemoveOwned keeps it).
func removePool(t *testing.T, uri, name string) {
	c, err := libvirt.NewConnect(uri)
	if err != nil {
		t.Errorf("remove pool %s: %v", name, err)
		return
	}
	defer c.Close()
	p, err := c.LookupStoragePoolByName(name)
	if err != nil {
		return
	}
	defer p.Free()
	_ = p.Refresh(0)
	if vols, err := p.ListAllStorageVolumes(0); err == nil {
		for i := range vols {
			_ = vols[i].Delete(0)
			vols[i].Free()
		}
	}
	_ = p.Destroy()
	_ = p.Delete(0)
	if err := p.Undefine(); err != nil {
		t.Errorf("undefine pool %s: %v", name, err)
	}
}

func waitState(t *testing.T, it *itEnv, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, err := it.p.VMState(ctx, it.env, it.vm)
		noError(t, "VMState", err)
		if st == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("vm state %q, want %q within %s", st, want, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// lockedBuffer collects console output written from another goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func runIntegration(t *testing.T, config map[string]string) {
	it := setupIntegration(t, config)
	p, env, vm := it.p, it.env, it.vm
	noError(t, "ValidateSpec", p.ValidateSpec(ctx, env, it.nets, []*providerv1.VM{vm}))

	start := time.Now()
	prepared, err := p.PrepareDisks(ctx, env, vm)
	noError(t, "PrepareDisks", err)
	t.Logf("PrepareDisks: %s", time.Since(start))
	for i, d := range prepared {
		vm.Disks[i].Path = d.Path
	}
	for _, n := range it.nets {
		for i := 0; i < 2; i++ {
			noError(t, "StartNetwork "+n.Name, p.StartNetwork(ctx, env, n))
		}
		st, err := p.NetworkState(ctx, env, n)
		noError(t, "NetworkState", err)
		if st != "up" {
			t.Fatalf("network %s state %q", n.Name, st)
		}
		// Stop keeps the definition; starting again updates it.
		noError(t, "StopNetwork "+n.Name, p.StopNetwork(ctx, env, n))
		if st, _ := p.NetworkState(ctx, env, n); st != "down" {
			t.Fatalf("network %s state after stop %q", n.Name, st)
		}
		noError(t, "StartNetwork again "+n.Name, p.StartNetwork(ctx, env, n))
	}
	start = time.Now()
	noError(t, "StartVM", p.StartVM(ctx, env, vm))
	t.Logf("StartVM: %s", time.Since(start))
	noError(t, "StartVM again", p.StartVM(ctx, env, vm))
	waitState(t, it, "running", 10*time.Second)

	if it.bootable {
		// The guest's console: its serial log fills up, in the client's
		// file locally and on the remote host in a volume that SerialLog
		// reads back; Console relays what the getty prints after a newline.
		deadline := time.Now().Add(90 * time.Second)
		for {
			b, err := p.SerialLog(ctx, env, vm, 0)
			noError(t, "SerialLog", err)
			if !p.cfg.Remote {
				if f, _ := os.ReadFile(vm.SerialLogPath); !strings.Contains(string(f), string(b)) {
					t.Fatalf("SerialLog %q is not the local log %q", b, f)
				}
			}
			if strings.Contains(string(b), "login") {
				t.Logf("guest reached its login prompt after %s", time.Since(start))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("serial log has no login prompt after 90s:\n%s", b)
			}
			time.Sleep(500 * time.Millisecond)
		}
		if p.cfg.Remote {
			if _, err := os.Stat(vm.SerialLogPath); err == nil {
				t.Errorf("the remote VM wrote the client's serial log %s", vm.SerialLogPath)
			}
		}
		checkGuestThroughConsole(t, p, env, vm)
		if !p.cfg.Remote {
			// Reboot: the guest comes back to a second login prompt.
			before, _ := os.ReadFile(vm.SerialLogPath)
			start := time.Now()
			noError(t, "ShutdownVM reboot", p.ShutdownVM(ctx, env, vm, true, time.Minute))
			deadline := time.Now().Add(120 * time.Second)
			for {
				b, _ := os.ReadFile(vm.SerialLogPath)
				if len(b) > len(before) && strings.Contains(string(b[len(before):]), "login:") {
					t.Logf("reboot to login prompt: %s", time.Since(start))
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no login prompt after a reboot; serial log since:\n%s", b[min(len(before), len(b)):])
				}
				time.Sleep(500 * time.Millisecond)
			}
			waitState(t, it, "running", 10*time.Second)
		}
	}

	noError(t, "Snapshot running", p.Snapshot(ctx, env, vm, "running1"))
	waitState(t, it, "running", 10*time.Second)

	if it.bootable {
		start = time.Now()
		noError(t, "ShutdownVM", p.ShutdownVM(ctx, env, vm, false, 90*time.Second))
		t.Logf("ShutdownVM (ACPI): %s", time.Since(start))
	} else {
		noError(t, "StopVM", p.StopVM(ctx, env, vm))
	}
	noError(t, "StopVM again", p.StopVM(ctx, env, vm))
	waitState(t, it, "shut off", 10*time.Second)

	noError(t, "Snapshot stopped", p.Snapshot(ctx, env, vm, "stopped1"))
	snaps, err := p.ListSnapshots(ctx, env, vm)
	noError(t, "ListSnapshots", err)
	if len(snaps) != 2 || snaps[0].Name != "running1" || snaps[0].VmState != "running" || snaps[1].Name != "stopped1" || snaps[1].VmState != "shut off" {
		t.Fatalf("snapshots %v", snaps)
	}

	exported, err := p.Export(ctx, &providerv1.ExportRequest{Env: env, Vm: vm, DstDir: filepath.Join(it.dir, "export"), Standalone: true})
	noError(t, "Export", err)
	if len(exported) != 2 {
		t.Fatalf("exported %v", exported)
	}
	for _, e := range exported {
		if out, err := exec.Command("qemu-img", "check", e).CombinedOutput(); err != nil {
			t.Fatalf("exported %s does not check: %v: %s", e, err, out)
		}
	}

	start = time.Now()
	noError(t, "Revert", p.Revert(ctx, env, vm, "running1"))
	t.Logf("Revert to a running snapshot: %s", time.Since(start))
	waitState(t, it, "running", 10*time.Second)
	noError(t, "StopVM", p.StopVM(ctx, env, vm))

	owned, err := p.ListOwned(ctx)
	noError(t, "ListOwned", err)
	kinds := map[string]int{}
	for _, r := range owned {
		if r.OwnerUuid == env.Uuid {
			kinds[r.Kind]++
			if r.OwnerPrefix != env.PrefixPath {
				t.Errorf("resource %+v: owner prefix %q", r, r.OwnerPrefix)
			}
		}
	}
	wantVols := 0
	if p.cfg.Remote {
		wantVols = 4 // its three disks and the serial log
	}
	if kinds[KindDomain] != 1 || kinds[KindNetwork] != 2 || kinds[KindVolume] != wantVols {
		t.Fatalf("owned kinds %v, want 1 domain, 2 networks, %d volumes", kinds, wantVols)
	}
	noError(t, "RemoveOwned", p.RemoveOwned(ctx, env, nil))
	noError(t, "RemoveOwned again", p.RemoveOwned(ctx, env, nil))
	if st, _ := p.VMState(ctx, env, vm); st != "down" {
		t.Fatalf("state after RemoveOwned %q, want down", st)
	}
	if st, _ := p.NetworkState(ctx, env, it.nets[0]); st != "down" {
		t.Fatalf("network state after RemoveOwned %q", st)
	}
}

// TestIntegrationAutoDomainType resolves domain_type=auto on the real host:
// kvm only when a KVM probe guest survives, otherwise qemu with a warning
// (the outcome on hosts where /dev/kvm exists but guests abort).
func TestIntegrationAutoDomainType(t *testing.T) {
	uri := integrationURI(t)
	p := New(hclog.NewNullLogger())
	noError(t, "Configure", p.Configure(ctx, map[string]string{SettingURL: uri}, nil))
	defer p.Close()
	start := time.Now()
	_, _, dt, warns, err := p.connectTyped(ctx)
	noError(t, "connect", err)
	t.Logf("domain_type auto -> %s in %s (warnings: %+v)", dt, time.Since(start), []sdk.Diagnostic(warns))
	switch dt {
	case domainTypeKVM:
		if len(warns) != 0 {
			t.Fatalf("kvm chosen with warnings %v", warns)
		}
	case domainTypeQEMU:
		if len(warns) != 1 || warns[0].Severity != sdk.SeverityWarning {
			t.Fatalf("qemu chosen without exactly one warning: %v", warns)
		}
	default:
		t.Fatalf("domain type %q", dt)
	}
}

// checkGuestThroughConsole logs in on the serial console (root/123456, the
// tiny template's) and checks what the network definition promises: the
// DHCP host entry and the DNS domain make `hostname -f` answer
// <vm>.lago.local, and the VM resolves its own name through libvirt's DNS.
// Everything goes through the console stream: no packet leaves the host.
func checkGuestThroughConsole(t *testing.T, p *Provider, env *providerv1.EnvRef, vm *providerv1.VM) {
	t.Helper()
	pr, pw := io.Pipe()
	var out lockedBuffer
	done := make(chan error, 1)
	go func() { done <- p.Console(ctx, env, vm, pr, &out) }()
	defer func() {
		pw.Close()
		noError(t, "Console", <-done)
	}()
	expect := func(what string, within time.Duration, nudge string) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !strings.Contains(out.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("console: no %q within %s; output:\n%s", what, within, out.String())
			}
			if nudge != "" {
				_, _ = pw.Write([]byte(nudge))
			}
			time.Sleep(time.Second)
		}
	}
	expect("login:", 90*time.Second, "\n")
	_, _ = pw.Write([]byte("root\n"))
	expect("assword", 10*time.Second, "")
	_, _ = pw.Write([]byte("123456\n"))
	time.Sleep(time.Second)
	// The markers are computed by the guest so the echoed command line
	// never matches them.
	ip := vm.GetNics()[0].GetIp()
	_, _ = pw.Write([]byte(fmt.Sprintf("echo H-$((40+2)) $(hostname -f) R-$((40+2)) $(nslookup %s 2>/dev/null | grep -c '%s$') E-$((40+2))\n", vm.GetName(), ip)))
	expect("E-42", 60*time.Second, "")
	got := out.String()
	line := got[strings.LastIndex(got, "H-42"):]
	line = line[:strings.Index(line, "E-42")]
	t.Logf("guest says: %q", line)
	if !strings.Contains(line, " "+vm.GetName()+".lago.local ") {
		t.Errorf("hostname -f in the guest is not %s.lago.local: %q", vm.GetName(), line)
	}
	if strings.Contains(line, "R-42 0 ") {
		t.Errorf("the guest cannot resolve its own name through libvirt's DNS: %q", line)
	}
}
