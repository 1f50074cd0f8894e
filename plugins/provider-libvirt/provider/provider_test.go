package provider

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	"github.com/lago-go/lago/sdk"
	"libvirt.org/go/libvirtxml"
)

var ctx = context.Background()

func qemuCfg() map[string]string { return map[string]string{SettingDomainType: "qemu"} }

func wantDiag(t *testing.T, err error, contains string) {
	t.Helper()
	var d sdk.Diagnostics
	if !errors.As(err, &d) || !d.HasErrors() {
		t.Fatalf("err = %v, want error diagnostics", err)
	}
	if !strings.Contains(d.Error(), contains) {
		t.Fatalf("diagnostics %q do not mention %q", d.Error(), contains)
	}
}

func TestConfigureRejectsBadSettings(t *testing.T) {
	tests := []struct {
		name   string
		config map[string]string
		attr   string
	}{
		{"domain type", map[string]string{SettingDomainType: "xen"}, SettingDomainType},
		{"remote", map[string]string{SettingRemote: "maybe"}, SettingRemote},
		{"url", map[string]string{SettingURL: "not a uri"}, SettingURL},
		{"bridge stp", map[string]string{SettingBridgeSTP: "sometimes"}, SettingBridgeSTP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := New(nil).Configure(ctx, tt.config, nil)
			var d sdk.Diagnostics
			if !errors.As(err, &d) || d[0].Attribute != tt.attr {
				t.Fatalf("err = %v, want a diagnostic on %s", err, tt.attr)
			}
		})
	}
}

func TestBridgeSTPSetting(t *testing.T) {
	tests := []struct {
		value string
		want  bool
	}{{"", false}, {"no", false}, {"off", false}, {"yes", true}, {"On", true}, {"1", true}}
	for _, tt := range tests {
		cfg, d := parseSettings(map[string]string{SettingBridgeSTP: tt.value})
		if d.HasErrors() || cfg.BridgeSTP != tt.want {
			t.Errorf("bridge_stp=%q: got %v (%v), want %v", tt.value, cfg.BridgeSTP, d, tt.want)
		}
	}
}

func TestRemoteDetection(t *testing.T) {
	tests := []struct {
		url, remote string
		want        bool
	}{
		{"qemu:///system", "", false},
		{"qemu+ssh://root@host/system", "", true},
		{"qemu+tcp://127.0.0.1:16510/system", "", true},
		{"qemu:///system", "yes", true},
		{"qemu+ssh://root@host/system", "no", false},
	}
	for _, tt := range tests {
		cfg, d := parseSettings(map[string]string{SettingURL: tt.url, SettingRemote: tt.remote})
		if d.HasErrors() || cfg.Remote != tt.want {
			t.Errorf("%s remote=%q: Remote = %v (%v), want %v", tt.url, tt.remote, cfg.Remote, d, tt.want)
		}
	}
}

func TestDomainTypeResolution(t *testing.T) {
	tests := []struct {
		name     string
		config   map[string]string
		kvm      bool
		probeErr error
		want     string
		warn     bool
	}{
		{"explicit qemu", map[string]string{SettingDomainType: "qemu"}, true, nil, "qemu", false},
		{"explicit kvm", map[string]string{SettingDomainType: "kvm"}, false, nil, "kvm", false},
		{"auto, kvm works", nil, true, nil, "kvm", false},
		{"auto, kvm listed but broken", nil, true, errors.New("failed to set MSR"), "qemu", true},
		{"auto, no kvm", nil, false, nil, "qemu", true},
		{"auto, remote cannot probe", map[string]string{SettingURL: "qemu+tcp://127.0.0.1:1/system"}, true, nil, "qemu", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := newFakeConn()
			fc.caps = capsXML(tt.kvm, true)
			p := newTestProvider(t, fc, tt.config, tt.probeErr)
			_, _, dt, warns, err := p.connectTyped(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if dt != tt.want || (len(warns) > 0) != tt.warn {
				t.Fatalf("domain type %q warnings %v, want %q warn=%v", dt, warns, tt.want, tt.warn)
			}
			// The warning reaches the caller of the first call as a
			// success-with-warnings.
			if tt.warn && warns[0].Severity != sdk.SeverityWarning {
				t.Fatalf("warning severity %v", warns[0].Severity)
			}
		})
	}
}

func TestStartNetworkLifecycle(t *testing.T) {
	fc := newFakeConn()
	p := newTestProvider(t, fc, qemuCfg(), nil)
	n := mgmtNet()
	for i := 0; i < 2; i++ { // idempotent
		if err := p.StartNetwork(ctx, testEnv, n); err != nil {
			t.Fatalf("StartNetwork #%d: %v", i, err)
		}
	}
	if st, err := p.NetworkState(ctx, testEnv, n); err != nil || st != "up" {
		t.Fatalf("state %q %v", st, err)
	}
	for i := 0; i < 2; i++ {
		if err := p.StopNetwork(ctx, testEnv, n); err != nil {
			t.Fatalf("StopNetwork #%d: %v", i, err)
		}
	}
	if st, _ := p.NetworkState(ctx, testEnv, n); st != "down" {
		t.Fatalf("state after stop %q", st)
	}
	if _, ok := fc.nets["1a2b-n0"]; !ok {
		t.Fatal("StopNetwork dropped the definition")
	}
	if err := p.StartNetwork(ctx, testEnv, n); err != nil {
		t.Fatalf("restart: %v", err)
	}
	starts := 0
	for _, c := range fc.Calls() {
		if c == "StartNetwork 1a2b-n0" {
			starts++
		}
	}
	if starts != 2 {
		t.Fatalf("libvirt network started %d times, want 2 (once per real start)", starts)
	}
}

func TestStartNetworkConflicts(t *testing.T) {
	other := &providerv1.EnvRef{PrefixPath: "/other", Uuid: "1a2bffffffffffffffffffffffffffff"}
	tests := []struct {
		name  string
		setup func(t *testing.T, p *Provider, fc *fakeConn)
		want  string
	}{
		{"same libvirt name owned by another env", func(t *testing.T, p *Provider, fc *fakeConn) {
			n := mgmtNet()
			n.Gateway = "192.168.210.1"
			if err := p.StartNetwork(ctx, other, n); err != nil {
				t.Fatal(err)
			}
		}, "belongs to the lago environment /other"},
		{"subnet used by another libvirt network", func(t *testing.T, p *Provider, fc *fakeConn) {
			if err := p.StartNetwork(ctx, other, &providerv1.Network{Name: "x", Type: "nat", Gateway: "192.168.201.1"}); err != nil {
				t.Fatal(err)
			}
		}, "network 'n0' (libvirt name 1a2b-n0): subnet 192.168.201.0/24 already in use by libvirt network 1a2b-x"},
		{"libvirt refuses to start", func(t *testing.T, p *Provider, fc *fakeConn) {
			fc.failNet = map[string]error{"1a2b-n0": errors.New("Network is already in use by interface virbr9")}
		}, "cannot start: Network is already in use by interface virbr9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := newFakeConn()
			p := newTestProvider(t, fc, qemuCfg(), nil)
			tt.setup(t, p, fc)
			wantDiag(t, p.StartNetwork(ctx, testEnv, mgmtNet()), tt.want)
		})
	}
	// A failed first start leaves no definition behind.
	fc := newFakeConn()
	fc.failNet = map[string]error{"1a2b-n0": errors.New("boom")}
	p := newTestProvider(t, fc, qemuCfg(), nil)
	_ = p.StartNetwork(ctx, testEnv, mgmtNet())
	if _, ok := fc.nets["1a2b-n0"]; ok {
		t.Fatal("failed start left the network defined")
	}
}

func TestVMLifecycle(t *testing.T) {
	fc := newFakeConn()
	p := newTestProvider(t, fc, qemuCfg(), nil)
	vm := testVM()
	vm.SerialLogPath = t.TempDir() + "/logs/vm0.log"
	if st, _ := p.VMState(ctx, testEnv, vm); st != "down" {
		t.Fatalf("undefined vm state %q, want down", st)
	}
	for i := 0; i < 2; i++ {
		if err := p.StartVM(ctx, testEnv, vm); err != nil {
			t.Fatalf("StartVM #%d: %v", i, err)
		}
	}
	if st, _ := p.VMState(ctx, testEnv, vm); st != "running" {
		t.Fatalf("state %q", st)
	}
	for i := 0; i < 2; i++ {
		if err := p.StopVM(ctx, testEnv, vm); err != nil {
			t.Fatalf("StopVM #%d: %v", i, err)
		}
	}
	if st, _ := p.VMState(ctx, testEnv, vm); st != "shut off" {
		t.Fatalf("state after stop %q, want shut off (definition kept)", st)
	}
	if err := p.StartVM(ctx, testEnv, vm); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(fc.Calls(), "|")
	want := "DefineDomain 1a2b3c4d-vm0|StartDomain 1a2b3c4d-vm0|DestroyDomain 1a2b3c4d-vm0|DefineDomain 1a2b3c4d-vm0|StartDomain 1a2b3c4d-vm0"
	if got != want {
		t.Fatalf("calls\n got %s\nwant %s", got, want)
	}
	// StopVM of a VM never defined is fine too.
	if err := p.StopVM(ctx, testEnv, &providerv1.VM{Name: "ghost"}); err != nil {
		t.Fatal(err)
	}
}

func TestStartVMRefusesForeignDomain(t *testing.T) {
	fc := newFakeConn()
	p := newTestProvider(t, fc, qemuCfg(), nil)
	other := &providerv1.EnvRef{PrefixPath: "/other", Uuid: testUUID[:8] + "ffffffffffffffffffffffff"}
	vm := testVM()
	vm.SerialLogPath = ""
	if err := p.StartVM(ctx, other, vm); err != nil {
		t.Fatal(err)
	}
	wantDiag(t, p.StartVM(ctx, testEnv, vm), "belongs to the lago environment /other")
}

func TestVMStateWords(t *testing.T) {
	tests := []struct {
		s    DomainState
		want string
	}{
		{DomainRunning, "running"}, {DomainBlocked, "running"}, {DomainShutdown, "running"},
		{DomainPaused, "paused"}, {DomainShutoff, "shut off"}, {DomainCrashed, "crashed"},
		{DomainPMSuspended, "suspended"}, {DomainNoState, "unknown"},
	}
	for _, tt := range tests {
		fc := newFakeConn()
		p := newTestProvider(t, fc, qemuCfg(), nil)
		fc.doms["1a2b3c4d-vm0"] = &fakeDom{state: tt.s}
		if got, err := p.VMState(ctx, testEnv, &providerv1.VM{Name: "vm0"}); err != nil || got != tt.want {
			t.Errorf("state %d: %q %v, want %q", tt.s, got, err, tt.want)
		}
	}
}

func TestShutdownVM(t *testing.T) {
	defer func(p, r time.Duration) { shutdownPoll, shutdownRepress = p, r }(shutdownPoll, shutdownRepress)
	shutdownPoll, shutdownRepress = time.Millisecond, 5*time.Millisecond
	tests := []struct {
		name      string
		turnsOff  bool
		running   bool
		reboot    bool
		wantErr   string
		wantCalls string
	}{
		{"guest handles acpi", true, true, false, "", "ShutdownDomain"},
		{"guest ignores acpi", false, true, false, "did not shut down within", "ShutdownDomain"},
		{"already off", false, false, false, "", ""},
		{"reboot through the agent", false, true, true, "", "RebootDomain"},
		{"reboot without agent power cycles", true, true, true, "", "RebootDomain"},
		{"reboot of stopped vm", false, false, true, "not running", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := newFakeConn()
			fc.shutdownTurnsOff = tt.turnsOff
			p := newTestProvider(t, fc, qemuCfg(), nil)
			st := DomainShutoff
			if tt.running {
				st = DomainRunning
			}
			fc.doms["1a2b3c4d-vm0"] = &fakeDom{state: st, agent: tt.name == "reboot through the agent"}
			err := p.ShutdownVM(ctx, testEnv, &providerv1.VM{Name: "vm0"}, tt.reboot, 50*time.Millisecond)
			if tt.wantErr != "" {
				wantDiag(t, err, tt.wantErr)
			} else if err != nil {
				t.Fatal(err)
			}
			calls := fc.Calls()
			if tt.wantCalls == "" && len(calls) != 0 || tt.wantCalls != "" && (len(calls) == 0 || !strings.HasPrefix(calls[0], tt.wantCalls)) {
				t.Fatalf("calls %v, want %q first", calls, tt.wantCalls)
			}
			if tt.name == "guest ignores acpi" && len(calls) < 2 {
				t.Fatalf("power button pressed only %d times", len(calls))
			}
			if tt.name == "reboot without agent power cycles" {
				want := "RebootDomain 1a2b3c4d-vm0|ShutdownDomain 1a2b3c4d-vm0|StartDomain 1a2b3c4d-vm0"
				if got := strings.Join(calls, "|"); got != want {
					t.Fatalf("calls %s, want %s", got, want)
				}
				if fc.doms["1a2b3c4d-vm0"].state != DomainRunning {
					t.Fatal("vm not running after the reboot")
				}
			}
		})
	}
}

func TestSnapshots(t *testing.T) {
	tests := []struct {
		name    string
		running bool
		agent   bool
	}{
		// A running guest is never frozen around its snapshot: the
		// freeze would be saved in the memory state (see Snapshot).
		{"running with agent", true, true},
		{"running without agent", true, false},
		{"stopped", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := newFakeConn()
			p := newTestProvider(t, fc, qemuCfg(), nil)
			vm := testVM()
			vm.SerialLogPath = ""
			if err := p.StartVM(ctx, testEnv, vm); err != nil {
				t.Fatal(err)
			}
			d := fc.doms["1a2b3c4d-vm0"]
			d.agent = tt.agent
			if !tt.running {
				if err := p.StopVM(ctx, testEnv, vm); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Snapshot(ctx, testEnv, vm, "s1"); err != nil {
				t.Fatal(err)
			}
			if d.frozen {
				t.Fatal("guest left frozen after the snapshot")
			}
			calls := strings.Join(fc.Calls(), "|")
			if !strings.Contains(calls, "CreateSnapshot 1a2b3c4d-vm0 s1 frozen=false") || strings.Contains(calls, "FSThaw") {
				t.Fatalf("calls %v, want an unfrozen snapshot and no thaw", fc.Calls())
			}
			wantDiag(t, p.Snapshot(ctx, testEnv, vm, "s1"), `snapshot "s1" already exists`)
			if err := p.Snapshot(ctx, testEnv, vm, "s2"); err != nil {
				t.Fatal(err)
			}
			snaps, err := p.ListSnapshots(ctx, testEnv, vm)
			if err != nil || len(snaps) != 2 || snaps[0].Name != "s1" || snaps[1].Name != "s2" {
				t.Fatalf("snapshots %v %v, want s1, s2 oldest first", snaps, err)
			}
			wantState := "shut off"
			if tt.running {
				wantState = "running"
			}
			if snaps[0].VmState != wantState || snaps[0].CreatedUnix == 0 {
				t.Fatalf("snapshot %+v, want state %q and a creation time", snaps[0], wantState)
			}
			if err := p.StopVM(ctx, testEnv, vm); err != nil {
				t.Fatal(err)
			}
			if err := p.Revert(ctx, testEnv, vm, "s1"); err != nil {
				t.Fatal(err)
			}
			if st, _ := p.VMState(ctx, testEnv, vm); st != wantState {
				t.Fatalf("state after revert %q, want %q", st, wantState)
			}
			if d.frozen {
				t.Fatal("guest frozen after reverting")
			}
			wantDiag(t, p.Revert(ctx, testEnv, vm, "nope"), `no snapshot "nope"`)
		})
	}
}

// A snapshot an earlier version took with the guest frozen resumes
// frozen: Revert thaws it, retrying while libvirt reconnects to the agent,
// and fails, naming the VM, when the thaw never works.
func TestRevertThawsLegacyQuiescedSnapshot(t *testing.T) {
	defer func(d time.Duration) { thawTimeout = d }(thawTimeout)
	thawTimeout = 2 * time.Second
	tests := []struct {
		name         string
		thawFailures int
		agent        bool
		wantErr      string
	}{
		{"agent answers at once", 0, true, ""},
		{"agent answers after reconnecting", 3, true, ""},
		{"agent never answers", 0, false, "cannot thaw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := newFakeConn()
			p := newTestProvider(t, fc, qemuCfg(), nil)
			vm := testVM()
			vm.SerialLogPath = ""
			if err := p.StartVM(ctx, testEnv, vm); err != nil {
				t.Fatal(err)
			}
			d := fc.doms["1a2b3c4d-vm0"]
			x, err := (&libvirtxml.DomainSnapshot{Name: "old", Description: quiescedMark, State: "running", CreationTime: "1"}).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			d.snaps = append(d.snaps, x)
			d.agent, d.thawFailures = tt.agent, tt.thawFailures
			err = p.Revert(ctx, testEnv, vm, "old")
			if tt.wantErr != "" {
				wantDiag(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.frozen {
				t.Fatal("guest left frozen after reverting to a quiesced snapshot")
			}
			n := strings.Count(strings.Join(fc.Calls(), "|"), "FSThaw")
			if n != tt.thawFailures+1 {
				t.Fatalf("%d thaws, want %d", n, tt.thawFailures+1)
			}
		})
	}
}

func TestSnapshotOfNeverStartedVMDefinesIt(t *testing.T) {
	fc := newFakeConn()
	p := newTestProvider(t, fc, qemuCfg(), nil)
	vm := testVM()
	vm.SerialLogPath = ""
	if snaps, err := p.ListSnapshots(ctx, testEnv, vm); err != nil || len(snaps) != 0 {
		t.Fatalf("snapshots of undefined vm: %v %v", snaps, err)
	}
	if err := p.Snapshot(ctx, testEnv, vm, "first"); err != nil {
		t.Fatal(err)
	}
	if st, _ := p.VMState(ctx, testEnv, vm); st != "shut off" {
		t.Fatalf("state %q", st)
	}
}

func TestOwnedListAndRemove(t *testing.T) {
	fc := newFakeConn()
	p := newTestProvider(t, fc, qemuCfg(), nil)
	other := &providerv1.EnvRef{PrefixPath: "/other", Uuid: "99999999999999999999999999999999"}
	vm := testVM()
	vm.SerialLogPath = ""
	for _, env := range []*providerv1.EnvRef{testEnv, other} {
		n := mgmtNet()
		if env == other {
			n.Gateway = "192.168.250.1"
		}
		if err := p.StartNetwork(ctx, env, n); err != nil {
			t.Fatal(err)
		}
		if err := p.StartVM(ctx, env, vm); err != nil {
			t.Fatal(err)
		}
	}
	// An object that is not lago's.
	fc.nets["default"] = &fakeNet{xml: "<network><name>default</name></network>", active: true}
	fc.doms["someone-else"] = &fakeDom{xml: "<domain><name>someone-else</name></domain>", state: DomainRunning}

	owned, err := p.ListOwned(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(owned) != 4 {
		t.Fatalf("owned %v, want 2 domains and 2 networks", owned)
	}
	for _, r := range owned {
		if r.Kind == KindDomain && r.OwnerUuid == testUUID && (r.Name != "1a2b3c4d-vm0" || r.State != "running" || r.OwnerPrefix != testEnv.PrefixPath) {
			t.Fatalf("domain resource %+v", r)
		}
		if r.Kind == KindNetwork && r.OwnerUuid == testUUID && (r.Name != "1a2b-n0" || r.State != "up") {
			t.Fatalf("network resource %+v", r)
		}
	}
	for i := 0; i < 2; i++ { // removing what is gone is not an error
		if err := p.RemoveOwned(ctx, testEnv, nil); err != nil {
			t.Fatalf("RemoveOwned #%d: %v", i, err)
		}
	}
	if _, ok := fc.doms["1a2b3c4d-vm0"]; ok {
		t.Fatal("domain left")
	}
	if _, ok := fc.nets["1a2b-n0"]; ok {
		t.Fatal("network left")
	}
	for _, keep := range []string{"99999999-vm0", "someone-else"} {
		if _, ok := fc.doms[keep]; !ok {
			t.Fatalf("removed %s, which is not ours", keep)
		}
	}
	if _, ok := fc.nets["default"]; !ok {
		t.Fatal("removed the default network")
	}
	// Only the listed resources.
	if err := p.RemoveOwned(ctx, other, []*providerv1.OwnedResource{{Kind: KindDomain, Name: "99999999-vm0"}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := fc.doms["99999999-vm0"]; ok {
		t.Fatal("listed domain left")
	}
	if _, ok := fc.nets["9999-n0"]; !ok {
		t.Fatal("unlisted network removed")
	}
}

func TestConsole(t *testing.T) {
	defer func(d time.Duration) { consoleDrain = d }(consoleDrain)
	consoleDrain = 200 * time.Millisecond
	fc := newFakeConn()
	p := newTestProvider(t, fc, qemuCfg(), nil)
	vm := testVM()
	vm.SerialLogPath = ""
	wantDiag(t, p.Console(ctx, testEnv, vm, strings.NewReader(""), io.Discard), "no console")
	if err := p.StartVM(ctx, testEnv, vm); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := p.Console(ctx, testEnv, vm, strings.NewReader("uname\n"), &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "echo:uname\n" {
		t.Fatalf("console output %q", out.String())
	}
}

func TestValidateSpec(t *testing.T) {
	p := newTestProvider(t, newFakeConn(), qemuCfg(), nil)
	good := testVM()
	if err := p.ValidateSpec(ctx, testEnv, []*providerv1.Network{mgmtNet(), {Name: "n1", Type: "bridge"}}, []*providerv1.VM{good}); err != nil {
		t.Fatalf("valid spec refused: %v", err)
	}
	bad := testVM()
	bad.Disks[1].Dev = "vda"
	bad.Nics[1].Net = "nowhere"
	bad.CpuCustom = `<cpu mode="host-passthrough"/>`
	err := p.ValidateSpec(ctx, testEnv, []*providerv1.Network{mgmtNet(), {Name: "n1", Type: "vxlan"}}, []*providerv1.VM{bad})
	var d sdk.Diagnostics
	if !errors.As(err, &d) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"nets.n1", "vda is used twice", `unknown network "nowhere"`, "host-passthrough"} {
		if !strings.Contains(d.Error(), want) {
			t.Errorf("diagnostics %q miss %q", d.Error(), want)
		}
	}
	for _, x := range d {
		if x.Attribute == "" {
			t.Errorf("diagnostic %q has no attribute", x.Summary)
		}
	}
}

func TestUsedSubnets(t *testing.T) {
	fc := newFakeConn()
	p := newTestProvider(t, fc, map[string]string{SettingDomainType: "qemu", SettingURL: "qemu+tcp://127.0.0.1:1/system"}, nil)
	if err := p.StartNetwork(ctx, testEnv, mgmtNet()); err != nil {
		t.Fatal(err)
	}
	fc.nets["default"] = &fakeNet{xml: `<network><name>default</name><ip address="192.168.122.1" netmask="255.255.255.0"/></network>`}
	// Remote and no interface driver: networks only, with a warning.
	subs, err := p.UsedSubnets(ctx)
	var d sdk.Diagnostics
	if errors.As(err, &d) && d.HasErrors() {
		t.Fatal(err)
	}
	if len(d.Warnings()) != 1 {
		t.Fatalf("warnings %v, want one about host interfaces", d)
	}
	got := map[string]string{}
	for _, s := range subs {
		got[s.Cidr] = s.Reason
	}
	if got["192.168.201.0/24"] != "libvirt network 1a2b-n0" || got["192.168.122.0/24"] != "libvirt network default" {
		t.Fatalf("used subnets %v", got)
	}
	fc.ifaces = []string{`<interface type="ethernet" name="eth7"><protocol family="ipv4"><ip address="10.9.8.7" prefix="16"/></protocol></interface>`}
	subs, _ = p.UsedSubnets(ctx)
	found := false
	for _, s := range subs {
		found = found || (s.Cidr == "10.9.0.0/16" && s.Reason == "interface eth7")
	}
	if !found {
		t.Fatalf("remote interface subnet missing: %v", subs)
	}
}

func TestValidateSpecHostPassthroughFollowsDomainType(t *testing.T) {
	tests := []struct {
		name     string
		config   map[string]string
		probeErr error
		wantErr  bool
	}{
		{"auto resolving to kvm", nil, nil, false},
		{"auto falling back to tcg", nil, errors.New("failed to set MSR"), true},
		{"explicit qemu", qemuCfg(), nil, true},
		{"explicit kvm", map[string]string{SettingDomainType: "kvm"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestProvider(t, newFakeConn(), tt.config, tt.probeErr)
			vm := testVM()
			vm.CpuCustom = `<cpu mode="host-passthrough"/>`
			err := p.ValidateSpec(ctx, testEnv, []*providerv1.Network{mgmtNet(), {Name: "n1", Type: "bridge"}}, []*providerv1.VM{vm})
			var d sdk.Diagnostics
			errors.As(err, &d)
			if d.HasErrors() != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestProbeOnlyWhenDefiningDomains(t *testing.T) {
	fc := newFakeConn()
	p := newTestProvider(t, fc, nil, nil)
	probes := 0
	p.probeKVM = func(context.Context, string) error { probes++; return errors.New("broken kvm") }
	vm := testVM()
	vm.SerialLogPath = ""
	if _, err := p.VMState(ctx, testEnv, vm); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ListOwned(ctx); err != nil {
		t.Fatal(err)
	}
	if probes != 0 {
		t.Fatalf("read-only calls probed KVM %d times", probes)
	}
	err := p.StartVM(ctx, testEnv, vm)
	var d sdk.Diagnostics
	if !errors.As(err, &d) || d.HasErrors() || len(d.Warnings()) != 1 {
		t.Fatalf("StartVM = %v, want success with the fallback warning", err)
	}
	if err := p.StopVM(ctx, testEnv, vm); err != nil {
		t.Fatal(err)
	}
	if err := p.StartVM(ctx, testEnv, vm); err != nil {
		t.Fatalf("second StartVM = %v, want no repeated warning", err)
	}
	if probes != 1 {
		t.Fatalf("probed %d times, want once per process", probes)
	}
	if !strings.Contains(fc.doms["1a2b3c4d-vm0"].xml, `type="qemu"`) {
		t.Fatalf("domain is not qemu after the fallback:\n%s", fc.doms["1a2b3c4d-vm0"].xml)
	}
}
