package env

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"

	"github.com/lago-go/lago/core/errs"
)

func startAll(t *testing.T, f *fixture) {
	t.Helper()
	if err := f.m.Start(context.Background(), f.prefix, nil, StartOptions{NoWait: true}); err != nil {
		t.Fatal(err)
	}
}

func TestStopKeepsSharedNetsUp(t *testing.T) {
	tests := []struct {
		name     string
		stop     []string
		wantVMs  map[string]string
		wantNets map[string]string
	}{
		{"vm2 only: n0 still used by vm0 and vm1", []string{"vm2"},
			map[string]string{"vm0": "running", "vm1": "running", "vm2": "down"},
			map[string]string{"n0": "up", "n1": "down"}},
		{"vm0 and vm1: n0 still used by vm2", []string{"vm0", "vm1"},
			map[string]string{"vm0": "down", "vm1": "down", "vm2": "running"},
			map[string]string{"n0": "up", "n1": "up"}},
		{"everything", nil,
			map[string]string{"vm0": "down", "vm1": "down", "vm2": "down"},
			map[string]string{"n0": "down", "n1": "down"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			startAll(t, f)
			if err := f.m.Stop(context.Background(), f.prefix, tt.stop); err != nil {
				t.Fatal(err)
			}
			for vm, want := range tt.wantVMs {
				if got := f.prov.VMStateOf(testUUID, vm); got != want {
					t.Errorf("%s is %q, want %q", vm, got, want)
				}
			}
			for n, want := range tt.wantNets {
				if got := f.prov.NetStateOf(testUUID, n); got != want {
					t.Errorf("net %s is %q, want %q", n, got, want)
				}
			}
		})
	}
}

func TestStopIsParallelAndSkipsStoppedVMs(t *testing.T) {
	f := newFixture(t)
	startAll(t, f)
	f.prov.SetVMState(testUUID, "vm1", "shut off")
	f.prov.Delay["StopVM"] = 100 * time.Millisecond
	if err := f.m.Stop(context.Background(), f.prefix, nil); err != nil {
		t.Fatal(err)
	}
	if got := f.prov.MaxConcurrent("StopVM"); got != 2 {
		t.Errorf("max concurrent StopVM = %d, want 2", got)
	}
	if n := f.prov.Count("StopVM", "vm1"); n != 0 {
		t.Errorf("StopVM called on vm1, which was off")
	}
}

func TestStopReportsFailuresButStopsTheRest(t *testing.T) {
	f := newFixture(t)
	startAll(t, f)
	f.prov.FailOn["StopVM vm1"] = errBoom
	err := f.m.Stop(context.Background(), f.prefix, nil)
	if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), "vm1") {
		t.Fatalf("Stop error = %v, want boom naming vm1", err)
	}
	if st := f.prov.VMStateOf(testUUID, "vm0"); st != "down" {
		t.Errorf("vm0 is %q, want down", st)
	}
}

func TestShutdown(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(f *fixture)
		reboot   bool
		wantRuns []string
		wantErr  bool
	}{
		{name: "provider acpi", setup: func(f *fixture) {}},
		{name: "falls back to ssh poweroff", setup: func(f *fixture) {
			f.prov.NotImplemented["ShutdownVM"] = true
			// The fake ssh "poweroff" does not change the fake's
			// state, so make the VMs off as a guest would.
			go func() {
				for len(f.ssh.Runs()) < 3 {
					time.Sleep(5 * time.Millisecond)
				}
				for _, vm := range []string{"vm0", "vm1", "vm2"} {
					f.prov.SetVMState(testUUID, vm, "shut off")
				}
			}()
		}, wantRuns: []string{"vm0 [poweroff]", "vm1 [poweroff]", "vm2 [poweroff]"}},
		{name: "reboot falls back to ssh reboot", reboot: true, setup: func(f *fixture) {
			f.prov.FailOn["ShutdownVM"] = errBoom
		}, wantRuns: []string{"vm0 [reboot]", "vm1 [reboot]", "vm2 [reboot]",
			// boot id before and after each reboot
			"vm0 [cat " + bootIDPath + "]", "vm1 [cat " + bootIDPath + "]", "vm2 [cat " + bootIDPath + "]",
			"vm0 [cat " + bootIDPath + "]", "vm1 [cat " + bootIDPath + "]", "vm2 [cat " + bootIDPath + "]",
		}},
		{name: "provider reboot checks the boot id", reboot: true, setup: func(f *fixture) {},
			wantRuns: []string{
				"vm0 [cat " + bootIDPath + "]", "vm1 [cat " + bootIDPath + "]", "vm2 [cat " + bootIDPath + "]",
				"vm0 [cat " + bootIDPath + "]", "vm1 [cat " + bootIDPath + "]", "vm2 [cat " + bootIDPath + "]",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			startAll(t, f)
			tt.setup(f)
			err := f.m.Shutdown(context.Background(), f.prefix, nil, tt.reboot)
			if err != nil {
				t.Fatal(err)
			}
			runs := f.ssh.Runs()
			if len(runs) != len(tt.wantRuns) {
				t.Fatalf("ssh runs = %v, want %v", runs, tt.wantRuns)
			}
			for _, w := range tt.wantRuns {
				found := false
				for _, r := range runs {
					found = found || r == w
				}
				if !found {
					t.Errorf("ssh runs %v lack %q", runs, w)
				}
			}
			if !tt.reboot {
				for _, vm := range []string{"vm0", "vm1", "vm2"} {
					if st := f.prov.VMStateOf(testUUID, vm); !isOff(st) {
						t.Errorf("%s is %q after shutdown", vm, st)
					}
				}
			}
		})
	}
}

func TestShutdownTimesOut(t *testing.T) {
	f := newFixture(t)
	startAll(t, f)
	f.prov.NotImplemented["ShutdownVM"] = true
	m := f.manager(Options{ShutdownTimeout: 200 * time.Millisecond})
	err := m.Shutdown(context.Background(), f.prefix, []string{"vm0"}, false)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "vm0") {
		t.Fatalf("Shutdown error = %v, want a deadline naming vm0", err)
	}
}

func TestStatusReportsLiveStates(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	st, err := f.m.Status(ctx, f.prefix)
	if err != nil {
		t.Fatal(err)
	}
	if st.Up() {
		t.Error("a never started prefix reports Up")
	}
	for vm, s := range st.VMs {
		if s != "down" {
			t.Errorf("%s is %q before start", vm, s)
		}
	}
	if err := f.m.Start(ctx, f.prefix, []string{"vm0"}, StartOptions{NoWait: true}); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Snapshot(ctx, f.prefix, "s1"); err != nil {
		t.Fatal(err)
	}
	f.prov.FailOn["VMState vm1"] = errBoom
	f.prov.Delay["VMState"] = 100 * time.Millisecond
	f.prov.Delay["NetworkState"] = 100 * time.Millisecond
	f.prov.Delay["ListSnapshots"] = 100 * time.Millisecond
	begin := time.Now()
	st, err = f.m.Status(ctx, f.prefix)
	if err != nil {
		t.Fatal(err)
	}
	// Eight queries of 100ms each: 800ms one after another.
	if el := time.Since(begin); el > 500*time.Millisecond {
		t.Errorf("Status took %v; queries of 100ms each should run in parallel", el)
	}
	want := map[string]string{"vm0": "running", "vm1": "unknown", "vm2": "down"}
	for vm, w := range want {
		if st.VMs[vm] != w {
			t.Errorf("%s is %q, want %q", vm, st.VMs[vm], w)
		}
	}
	if st.Nets["n0"] != "up" || st.Nets["n1"] != "down" {
		t.Errorf("nets = %v, want n0 up, n1 down", st.Nets)
	}
	if got := st.Snapshots["vm2"]; len(got) != 1 || got[0] != "s1" {
		t.Errorf("snapshots of vm2 = %v, want [s1]", got)
	}
	if len(st.Errors) != 1 || !errors.Is(st.Errors[0], errBoom) {
		t.Errorf("errors = %v, want the failing vm1 query", st.Errors)
	}
	if !st.Up() {
		t.Error("Up is false with vm0 running")
	}
}

func TestSnapshotRevert(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	startAll(t, f)
	f.prov.SetVMState(testUUID, "vm1", "shut off")
	if err := f.m.Snapshot(ctx, f.prefix, "clean"); err != nil {
		t.Fatal(err)
	}
	if n := f.prov.Count("Snapshot", ""); n != 3 {
		t.Errorf("Snapshot called %d times, want 3 (stopped VMs too)", n)
	}
	list, err := f.m.ListSnapshots(ctx, f.prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || len(list["vm1"]) != 1 {
		t.Errorf("ListSnapshots = %v", list)
	}
	if err := f.m.Revert(ctx, f.prefix, "clean"); err != nil {
		t.Fatal(err)
	}
	err = f.m.Revert(ctx, f.prefix, "other")
	if err == nil || !strings.Contains(err.Error(), "revert vm vm") {
		t.Errorf("Revert to a missing snapshot: %v", err)
	}
	if err := f.m.Snapshot(ctx, f.prefix, ""); err == nil {
		t.Error("Snapshot with an empty name succeeded")
	}
}

func TestShellUsesManagementIPAndSuffix(t *testing.T) {
	f := newFixture(t)
	f.ssh.exit = 7
	var out strings.Builder
	code, err := f.m.Shell(context.Background(), f.prefix, "2", []string{"hostname"}, nil, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code != 7 {
		t.Errorf("exit code = %d, want the remote 7", code)
	}
	tg := f.ssh.targets[0]
	if tg.VM != "vm2" || tg.Host != "192.168.200.12" || tg.User != "root" || tg.Password != DefaultSSHPassword ||
		tg.KeyFile != filepath.Join(f.prefix, fileKey) {
		t.Errorf("target = %+v", tg)
	}
}

func TestCleanupStopsAndUninitializes(t *testing.T) {
	f := newFixture(t)
	startAll(t, f)
	if err := f.m.Cleanup(context.Background(), f.prefix); err != nil {
		t.Fatal(err)
	}
	assertAllDown(t, f)
	if _, err := os.Stat(filepath.Join(f.prefix, fileInitialized)); !os.IsNotExist(err) {
		t.Errorf("initialized still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.prefix, fileUUID)); err != nil {
		t.Errorf("uuid gone: %v", err)
	}
}

func TestOrphans(t *testing.T) {
	f := newFixture(t)
	startAll(t, f)
	gone := filepath.Join(f.dir, "gone")
	f.prov.AddOwned(&providerv1.OwnedResource{Kind: "domain", Name: "x-vm", OwnerPrefix: gone, OwnerUuid: "ffff"})
	f.prov.AddOwned(&providerv1.OwnedResource{Kind: "domain", Name: "y-vm", OwnerPrefix: f.prefix, OwnerUuid: "stale"})
	ctx := context.Background()
	orphans, err := f.m.Orphans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range orphans {
		names = append(names, o.Name)
	}
	if len(names) != 2 || !strings.Contains(strings.Join(names, ","), "x-vm") || !strings.Contains(strings.Join(names, ","), "y-vm") {
		t.Fatalf("orphans = %v, want x-vm and y-vm", names)
	}
	if err := f.m.RemoveOrphans(ctx, orphans); err != nil {
		t.Fatal(err)
	}
	if n := len(f.prov.Owned("ffff")) + len(f.prov.Owned("stale")); n != 0 {
		t.Errorf("%d orphans left", n)
	}
	if n := len(f.prov.Owned(testUUID)); n == 0 {
		t.Error("RemoveOrphans removed the live prefix's objects")
	}
}

func TestStatusDocument(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.m.Start(ctx, f.prefix, []string{"vm0"}, StartOptions{NoWait: true}); err != nil {
		t.Fatal(err)
	}
	doc, err := f.m.StatusDocument(ctx, f.prefix)
	if err != nil {
		t.Fatal(err)
	}
	p := doc["Prefix"].(map[string]any)
	if p["UUID"] != testUUID || p["Base directory"] != f.prefix {
		t.Errorf("prefix section = %v", p)
	}
	vms := p["VMs"].(map[string]any)
	if st := vms["vm0"].(map[string]any)["status"]; st != "running" {
		t.Errorf("vm0 status = %v", st)
	}
	if st := vms["vm1"].(map[string]any)["status"]; st != "down" {
		t.Errorf("vm1 status = %v", st)
	}
	// A powered-off but still defined domain reads "down", as the
	// original's vanished domains did.
	f.prov.SetVMState(testUUID, "vm2", "shut off")
	doc, err = f.m.StatusDocument(ctx, f.prefix)
	if err != nil {
		t.Fatal(err)
	}
	if st := doc["Prefix"].(map[string]any)["VMs"].(map[string]any)["vm2"].(map[string]any)["status"]; st != "down" {
		t.Errorf("shut off vm2 status = %v, want down", st)
	}
	if pw := vms["vm1"].(map[string]any)["root password"]; pw != DefaultSSHPassword {
		t.Errorf("vm1 root password = %v, want the configured default", pw)
	}
	nets := p["Networks"].(map[string]any)
	if st := nets["n0"].(map[string]any)["status"]; st != "up" {
		t.Errorf("n0 status = %v", st)
	}
	if gw := nets["n1"].(map[string]any)["gateway"]; gw != "192.168.201.1" {
		t.Errorf("n1 gateway = %v", gw)
	}
}

func TestShellOnStoppedVMSaysSo(t *testing.T) {
	f := newFixture(t)
	f.ssh.runErr = errors.New("dial tcp 192.168.200.10:22: connect: no route to host")
	_, err := f.m.Shell(context.Background(), f.prefix, "vm0", []string{"true"}, nil, nil, nil)
	if !errs.IsUser(err) || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("Shell error = %v, want a user error saying vm0 is not running", err)
	}
	startAll(t, f)
	_, err = f.m.Shell(context.Background(), f.prefix, "vm0", []string{"true"}, nil, nil, nil)
	if err == nil || errs.IsUser(err) || !strings.Contains(err.Error(), "no route") {
		t.Fatalf("Shell error = %v, want the ssh failure", err)
	}
}

func TestConsole(t *testing.T) {
	f := newFixture(t)
	var out strings.Builder
	if err := f.m.Console(context.Background(), f.prefix, "1", strings.NewReader(""), &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "console of vm1\n" {
		t.Errorf("console output %q", out.String())
	}
}

// TestRebootWaitsForSSH: `shutdown --reboot` returns only when the guests
// answer ssh again, and names one that does not.
func TestRebootWaitsForSSH(t *testing.T) {
	f := newFixture(t)
	f.m = f.manager(Options{ShutdownTimeout: 300 * time.Millisecond})
	startAll(t, f)
	f.ssh.mu.Lock()
	f.ssh.waits = nil
	f.ssh.never["vm1"] = true
	f.ssh.mu.Unlock()
	err := f.m.Shutdown(context.Background(), f.prefix, nil, true)
	if err == nil || !strings.Contains(err.Error(), "reboot vm vm1") {
		t.Fatalf("reboot with vm1 silent = %v, want an error naming vm1", err)
	}
	f.ssh.mu.Lock()
	waited := map[string]bool{}
	for _, vm := range f.ssh.waits {
		waited[vm] = true
	}
	f.ssh.mu.Unlock()
	if len(waited) != 3 {
		t.Errorf("waited for %v after the reboot, want all 3 VMs", waited)
	}
}

// TestRebootWaitsForNewBoot: a guest whose old sshd still answers after
// the reboot request has not rebooted yet; shutdown --reboot keeps
// waiting for a new boot id and names the VM that never gets one.
func TestRebootWaitsForNewBoot(t *testing.T) {
	f := newFixture(t)
	f.m = f.manager(Options{ShutdownTimeout: 700 * time.Millisecond})
	startAll(t, f)
	f.ssh.mu.Lock()
	f.ssh.sameBoot["vm2"] = true
	f.ssh.mu.Unlock()
	start := time.Now()
	err := f.m.Shutdown(context.Background(), f.prefix, nil, true)
	if err == nil || !strings.Contains(err.Error(), "reboot vm vm2: still the same boot (boot-0)") {
		t.Fatalf("reboot with vm2 never rebooting = %v, want an error naming vm2's unchanged boot", err)
	}
	if strings.Contains(err.Error(), "vm0") || strings.Contains(err.Error(), "vm1") {
		t.Errorf("error blames VMs that did reboot: %v", err)
	}
	if d := time.Since(start); d < 600*time.Millisecond {
		t.Errorf("gave up after %s, before the %s timeout", d, 700*time.Millisecond)
	}
	f.ssh.mu.Lock()
	reads := f.ssh.boots
	f.ssh.mu.Unlock()
	for _, vm := range []string{"vm0", "vm1"} {
		if reads[vm] != 2 {
			t.Errorf("%s boot id read %d times, want 2 (before and after)", vm, reads[vm])
		}
	}
}

// TestVerbsReleaseKeptSSH: verbs that change what runs in a VM close the
// kept ssh connections of exactly the VMs they touch, so no later command
// reaches a VM's past through one.
func TestVerbsReleaseKeptSSH(t *testing.T) {
	tests := []struct {
		name string
		verb func(f *fixture) error
		want []string
	}{
		{name: "stop of a subset", verb: func(f *fixture) error { return f.m.Stop(context.Background(), f.prefix, []string{"vm1"}) }, want: []string{"vm1"}},
		{name: "stop of all", verb: func(f *fixture) error { return f.m.Stop(context.Background(), f.prefix, nil) }, want: []string{"vm0", "vm1", "vm2"}},
		{name: "shutdown releases before and after", verb: func(f *fixture) error {
			return f.m.Shutdown(context.Background(), f.prefix, []string{"vm2"}, false)
		}, want: []string{"vm2", "vm2"}},
		{name: "reboot", verb: func(f *fixture) error {
			return f.m.Shutdown(context.Background(), f.prefix, []string{"vm0"}, true)
		}, want: []string{"vm0", "vm0"}},
		{name: "revert", verb: func(f *fixture) error {
			if err := f.m.Snapshot(context.Background(), f.prefix, "s"); err != nil {
				return err
			}
			return f.m.Revert(context.Background(), f.prefix, "s")
		}, want: []string{"vm0", "vm1", "vm2"}},
		{name: "destroy", verb: func(f *fixture) error { return f.m.Destroy(context.Background(), f.prefix) }, want: []string{"all:" + testUUID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			startAll(t, f)
			f.ssh.Released()
			if err := tt.verb(f); err != nil {
				t.Fatal(err)
			}
			if got := f.ssh.Released(); strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("released %v, want %v", got, tt.want)
			}
		})
	}
}
