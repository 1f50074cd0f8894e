package env

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lago-go/lago/core/env/envtest"
	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/spec"
)

// bridgeFixture is a prefix whose VM vmb has its only NIC, its management
// NIC, on the bridge net lab (no address from lago), next to vm0 managed
// on the nat net n0.
func bridgeFixture(t *testing.T, log *bytes.Buffer) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, dir: dir, prefix: filepath.Join(dir, "default"), prov: envtest.NewProvider(), ssh: newFakeSSH()}
	lab := &spec.Net{Name: "lab", Type: spec.NetBridge, Management: true, Mapping: map[string]string{}}
	vmb := testVM(9, "n0")
	vmb.Name, vmb.MgmtNet, vmb.NICs = "vmb", "lab", []spec.NIC{{Net: "lab"}}
	writePrefix(t, f.prefix, []*spec.Net{lab, testNet("n0", 200, false)}, []*spec.VM{vmb, testVM(0, "n0")})
	f.m = f.manager(Options{Logger: slog.New(slog.NewTextHandler(log, nil))})
	// A wait for vmb would never end.
	f.ssh.never["vmb"] = true
	return f
}

// TestBridgeOnlyVM: start does not wait for a VM whose management NIC is
// on a bridge net and says so; status shows ip N/A; shell explains why it
// cannot connect.
func TestBridgeOnlyVM(t *testing.T) {
	var log bytes.Buffer
	f := bridgeFixture(t, &log)
	ctx := context.Background()

	begin := time.Now()
	if err := f.m.Start(ctx, f.prefix, nil, StartOptions{Timeout: 10 * time.Second}); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("Start took %s: it waited for the bridge VM", d)
	}
	if got := strings.Join(f.ssh.waits, ","); got != "vm0" {
		t.Errorf("waited for ssh on %q, want only vm0", got)
	}
	for _, vm := range []string{"vm0", "vmb"} {
		if st := f.prov.VMStateOf(testUUID, vm); st != stateRunning {
			t.Errorf("%s is %q, want running", vm, st)
		}
	}
	for _, w := range []string{"level=WARN", "not waiting for ssh", "vm=vmb", "net=lab"} {
		if !strings.Contains(log.String(), w) {
			t.Errorf("start's log lacks %q:\n%s", w, log.String())
		}
	}

	doc, err := f.m.StatusDocument(ctx, f.prefix)
	if err != nil {
		t.Fatal(err)
	}
	nic := doc["Prefix"].(map[string]any)["VMs"].(map[string]any)["vmb"].(map[string]any)["NICs"].(map[string]any)["eth0"].(map[string]any)
	if nic["ip"] != "N/A" || nic["network"] != "lab" {
		t.Errorf("status of vmb's NIC = %v, want ip N/A on lab", nic)
	}

	var out, stderr bytes.Buffer
	_, err = f.m.Shell(ctx, f.prefix, "vmb", []string{"true"}, nil, &out, &stderr)
	var na *NoAddressError
	if !errors.As(err, &na) || !errs.IsUser(err) {
		t.Fatalf("Shell error = %v, want a user NoAddressError", err)
	}
	for _, w := range []string{"vm vmb has no address lago knows", "bridge net lab", "lago console vmb"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Shell error %q lacks %q", err, w)
		}
	}
	if runs := f.ssh.Runs(); len(runs) != 0 {
		t.Errorf("ssh ran %v", runs)
	}
}
