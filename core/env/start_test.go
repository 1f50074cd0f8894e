package env

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lago-go/lago/core/errs"
)

func TestStartNetsBeforeVMsAndParallel(t *testing.T) {
	tests := []struct {
		name        string
		parallelism int
		wantMax     int
	}{
		{"unbounded", 0, 3},
		{"one at a time", 1, 1},
		{"two at a time", 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.prov.Delay["StartVM"] = 100 * time.Millisecond
			f.prov.Delay["StartNetwork"] = 50 * time.Millisecond
			if err := f.m.Start(context.Background(), f.prefix, nil, StartOptions{Parallelism: tt.parallelism}); err != nil {
				t.Fatalf("Start: %v", err)
			}
			if got := f.prov.MaxConcurrent("StartVM"); got != tt.wantMax {
				t.Errorf("max concurrent StartVM = %d, want %d", got, tt.wantMax)
			}
			if got := f.prov.MaxConcurrent("StartNetwork"); got != 2 {
				t.Errorf("max concurrent StartNetwork = %d, want 2 (nets in parallel)", got)
			}
			var lastNet, firstVM time.Time
			for _, c := range f.prov.Calls() {
				switch c.Method {
				case "StartNetwork":
					if c.Done.After(lastNet) {
						lastNet = c.Done
					}
				case "StartVM":
					if firstVM.IsZero() || c.At.Before(firstVM) {
						firstVM = c.At
					}
				}
			}
			if firstVM.Before(lastNet) {
				t.Errorf("a VM started at %v before the last network was up at %v", firstVM, lastNet)
			}
			for _, vm := range []string{"vm0", "vm1", "vm2"} {
				if st := f.prov.VMStateOf(testUUID, vm); st != "running" {
					t.Errorf("%s is %q, want running", vm, st)
				}
			}
			if got := len(f.ssh.targets); got != 3 {
				t.Errorf("waited for ssh on %d VMs, want 3", got)
			}
		})
	}
}

func TestStartSubsetStartsOnlyItsNets(t *testing.T) {
	f := newFixture(t)
	if err := f.m.Start(context.Background(), f.prefix, []string{"vm0"}, StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := f.prov.Count("StartNetwork", "n1"); n != 0 {
		t.Errorf("n1 started %d times; vm0 does not use it", n)
	}
	if n := f.prov.Count("StartVM", ""); n != 1 {
		t.Errorf("StartVM called %d times, want 1", n)
	}
}

func TestStartIsIdempotent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.m.Start(ctx, f.prefix, nil, StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Start(ctx, f.prefix, nil, StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := f.prov.Count("StartVM", ""); n != 3 {
		t.Errorf("StartVM called %d times over two starts, want 3", n)
	}
	if n := f.prov.Count("StartNetwork", ""); n != 2 {
		t.Errorf("StartNetwork called %d times over two starts, want 2", n)
	}
}

// TestStartTimeoutSerialTailFromProvider: with no local serial log (a
// remote hypervisor), the error quotes what the VM's provider reads, or
// says there is no log when the provider cannot read one.
func TestStartTimeoutSerialTailFromProvider(t *testing.T) {
	for _, tc := range []struct {
		name     string
		log      string
		notImpl  bool
		want     []string
		dontWant []string
	}{
		{name: "provider has it", log: "remote boot 1\nremote boot 2\n",
			want: []string{"remote boot 2", "read through provider"}},
		{name: "provider has none yet",
			want: []string{"no serial console log"}, dontWant: []string{"read through provider"}},
		{name: "provider cannot read logs", notImpl: true, log: "never asked",
			want: []string{"no serial console log"}, dontWant: []string{"never asked"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.ssh.never["vm1"] = true
			if tc.log != "" {
				f.prov.SerialLogs["vm1"] = []byte(tc.log)
			}
			if tc.notImpl {
				f.prov.NotImplemented["SerialLog"] = true
			}
			err := f.m.Start(context.Background(), f.prefix, nil, StartOptions{Timeout: 300 * time.Millisecond})
			if err == nil {
				t.Fatal("Start succeeded although vm1 never answers ssh")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, w := range tc.dontWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q contains %q", err, w)
				}
			}
			if n := f.prov.Count("SerialLog", "vm1"); n < 1 {
				t.Error("the provider was never asked for vm1's serial log")
			}
		})
	}
}

func TestStartTimeoutNamesVMWithSerialTail(t *testing.T) {
	f := newFixture(t)
	f.ssh.never["vm1"] = true
	mustMkdir(t, filepath.Join(f.prefix, dirLogs))
	var lines []string
	for i := 1; i <= 30; i++ {
		lines = append(lines, fmt.Sprintf("boot line %02d", i))
	}
	mustWrite(t, filepath.Join(f.prefix, dirLogs, "vm1.serial.log"), strings.Join(lines, "\n")+"\n")

	start := time.Now()
	err := f.m.Start(context.Background(), f.prefix, nil, StartOptions{Timeout: 300 * time.Millisecond})
	if err == nil {
		t.Fatal("Start succeeded although vm1 never answers ssh")
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("Start took %v with a 300ms timeout", el)
	}
	msg := err.Error()
	for _, want := range []string{"vm1", "did not answer ssh", "boot line 30", "boot line 11"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, "boot line 10") {
		t.Errorf("error quotes more than the last 20 serial lines: %q", msg)
	}
	if n := f.prov.Count("SerialLog", "vm1"); n != 0 {
		t.Errorf("the provider was asked for vm1's serial log %d times although the prefix has it", n)
	}
	if strings.Contains(msg, "vm0") || strings.Contains(msg, "vm2") {
		t.Errorf("error names VMs that came up: %q", msg)
	}
	assertAllDown(t, f)
}

func TestStartRollsBackOnFailure(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fixture)
		want  string
	}{
		{"vm start fails", func(f *fixture) { f.prov.FailOn["StartVM vm2"] = errBoom }, "start vm vm2"},
		{"second net fails", func(f *fixture) { f.prov.FailOn["StartNetwork n1"] = errBoom }, "start network n1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tt.setup(f)
			err := f.m.Start(context.Background(), f.prefix, nil, StartOptions{})
			if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Start error = %v, want one wrapping boom and naming %q", err, tt.want)
			}
			assertAllDown(t, f)
		})
	}
}

func TestStartRollsBackOnCancel(t *testing.T) {
	f := newFixture(t)
	f.ssh.delay["vm0"] = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for f.prov.Count("StartVM", "") < 3 {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	err := f.m.Start(ctx, f.prefix, nil, StartOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Start error = %v, want context.Canceled", err)
	}
	assertAllDown(t, f)
}

func TestStartRollbackKeepsWhatWasRunning(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.m.Start(ctx, f.prefix, []string{"vm0"}, StartOptions{}); err != nil {
		t.Fatal(err)
	}
	f.prov.FailOn["StartVM vm2"] = errBoom
	if err := f.m.Start(ctx, f.prefix, nil, StartOptions{}); !errors.Is(err, errBoom) {
		t.Fatalf("Start error = %v, want boom", err)
	}
	if st := f.prov.VMStateOf(testUUID, "vm0"); st != "running" {
		t.Errorf("vm0, running before the failed start, is %q", st)
	}
	if st := f.prov.NetStateOf(testUUID, "n0"); st != "up" {
		t.Errorf("n0, up before the failed start, is %q", st)
	}
	if st := f.prov.VMStateOf(testUUID, "vm1"); st != "down" {
		t.Errorf("vm1, started by the failed start, is %q", st)
	}
	if st := f.prov.NetStateOf(testUUID, "n1"); st != "down" {
		t.Errorf("n1, started by the failed start, is %q", st)
	}
}

func TestStartUserErrors(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		prefix string
		vms    []string
	}{
		{"unknown vm", f.prefix, []string{"nope"}},
		{"ambiguous suffix", f.prefix, []string{"m"}},
		{"missing prefix", filepath.Join(f.dir, "absent"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.m.Start(context.Background(), tt.prefix, tt.vms, StartOptions{})
			if !errs.IsUser(err) {
				t.Fatalf("Start error = %v, want a user error", err)
			}
		})
	}
	if n := len(f.prov.Calls()); n != 0 {
		t.Errorf("bad input made %d provider calls", n)
	}
}

func TestStartUninitializedIsUserError(t *testing.T) {
	f := newFixture(t)
	if err := os.Remove(filepath.Join(f.prefix, fileInitialized)); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Start(context.Background(), f.prefix, nil, StartOptions{}); !errs.IsUser(err) {
		t.Fatalf("Start error = %v, want a user error", err)
	}
}

func assertAllDown(t *testing.T, f *fixture) {
	t.Helper()
	for _, vm := range []string{"vm0", "vm1", "vm2"} {
		if st := f.prov.VMStateOf(testUUID, vm); st != "down" {
			t.Errorf("%s is %q after rollback, want down", vm, st)
		}
	}
	for _, n := range []string{"n0", "n1"} {
		if st := f.prov.NetStateOf(testUUID, n); st != "down" {
			t.Errorf("net %s is %q after rollback, want down", n, st)
		}
	}
}

// TestStartNoticesDeadGuests: while start waits for ssh, a VM that stops
// or whose kernel panics (in the prefix's log, or in the provider's for a
// remote hypervisor) fails the start at once, named with its console; a
// panic left in the log by an earlier boot does not count.
func TestStartNoticesDeadGuests(t *testing.T) {
	oldPanic := "old boot\n[ 0.02] Kernel panic - not syncing: IO-APIC + timer doesn't work!\n"
	newPanic := "new boot\n[ 0.03] Kernel panic - not syncing: VFS: Unable to mount root fs\n"
	for _, tc := range []struct {
		name   string
		local  bool   // the log is the prefix's file (else the provider's)
		event  string // what happens to vm1 after 200 ms
		want   string
		quoted string
	}{
		{name: "stops", local: true, event: "stop", want: "vm1 stopped (shut off)", quoted: "old boot"},
		{name: "panics, local log", local: true, event: "panic", want: "vm1 hit a kernel panic", quoted: "Unable to mount root fs"},
		{name: "panics, remote log", event: "panic", want: "vm1 hit a kernel panic", quoted: "Unable to mount root fs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.m = f.manager(Options{BootWatchInterval: 20 * time.Millisecond})
			f.ssh.never["vm1"] = true
			logPath := filepath.Join(f.prefix, dirLogs, "vm1.serial.log")
			mustMkdir(t, filepath.Join(f.prefix, dirLogs))
			setLog := func(s string) {
				if tc.local {
					mustWrite(t, logPath, s)
				} else {
					f.prov.SetSerialLog("vm1", []byte(s))
				}
			}
			setLog(oldPanic)
			go func() {
				time.Sleep(200 * time.Millisecond)
				switch tc.event {
				case "stop":
					f.prov.SetVMState(testUUID, "vm1", "shut off")
				case "panic":
					setLog(oldPanic + newPanic)
				}
			}()
			start := time.Now()
			err := f.m.Start(context.Background(), f.prefix, nil, StartOptions{Timeout: time.Minute})
			if err == nil {
				t.Fatal("Start succeeded although vm1 died")
			}
			if el := time.Since(start); el > 10*time.Second {
				t.Errorf("Start took %v to notice", el)
			}
			for _, w := range []string{tc.want, tc.quoted} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			assertAllDown(t, f)
		})
	}
}

// TestStartIgnoresOldPanics: a panic that an earlier boot left in the log
// does not fail a boot that goes well.
func TestStartIgnoresOldPanics(t *testing.T) {
	f := newFixture(t)
	f.m = f.manager(Options{BootWatchInterval: 10 * time.Millisecond})
	f.ssh.delay["vm1"] = 300 * time.Millisecond
	mustMkdir(t, filepath.Join(f.prefix, dirLogs))
	mustWrite(t, filepath.Join(f.prefix, dirLogs, "vm1.serial.log"), "[ 0.02] Kernel panic - not syncing: old\n")
	if err := f.m.Start(context.Background(), f.prefix, nil, StartOptions{Timeout: time.Minute}); err != nil {
		t.Fatalf("Start failed on an old panic: %v", err)
	}
}
