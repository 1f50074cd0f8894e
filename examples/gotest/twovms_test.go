//go:build e2e

package gotest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lago-go/lago/core/lago/lagotest"
)

func TestTwoVMs(t *testing.T) {
	env := lagotest.Up(t, lagotest.Options{InitFile: "testdata/LagoInitFile"})
	ctx := t.Context()

	vm0, err := env.VM("vm0")
	if err != nil {
		t.Fatal(err)
	}
	vm1, err := env.VM("vm1")
	if err != nil {
		t.Fatal(err)
	}

	// Commands: vm1 reaches vm0 on the environment's network.
	if out, err := vm1.Output(ctx, "ping", "-c", "1", "-W", "5", vm0.Address); err != nil {
		t.Fatalf("vm1 cannot ping vm0 (%s): %v\n%s", vm0.Address, err, out)
	}
	r, err := vm0.RunShell(ctx, "hostname; exit 3")
	if err != nil || r.ExitCode != 3 || strings.TrimSpace(string(r.Stdout)) == "" {
		t.Fatalf("RunShell: %+v %v", r, err)
	}

	// Copy a file in and back out.
	local := filepath.Join(t.TempDir(), "hello.txt")
	if err := os.WriteFile(local, []byte("hello from the host\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := vm0.CopyTo(ctx, local, "/root/hello.txt"); err != nil {
		t.Fatalf("CopyTo: %v", err)
	}
	if out, err := vm0.Output(ctx, "cat", "/root/hello.txt"); err != nil || string(out) != "hello from the host\n" {
		t.Fatalf("cat in the VM: %q %v", out, err)
	}
	back := filepath.Join(t.TempDir(), "back.txt")
	if err := vm0.CopyFrom(ctx, "/root/hello.txt", back); err != nil {
		t.Fatalf("CopyFrom: %v", err)
	}
	if b, err := os.ReadFile(back); err != nil || string(b) != "hello from the host\n" {
		t.Fatalf("copied back: %q %v", b, err)
	}

	// The ansible inventory: one group per `groups` entry, hosts by address.
	inv, err := env.AnsibleInventory(ctx)
	if err != nil {
		t.Fatalf("AnsibleInventory: %v", err)
	}
	for _, want := range []string{"[groups=web]", "[groups=db]", "vm0 ansible_host=" + vm0.Address, "vm1 ansible_host=" + vm1.Address} {
		if !strings.Contains(inv, want) {
			t.Errorf("inventory lacks %q:\n%s", want, inv)
		}
	}
	path, cleanup, err := env.AnsibleInventoryFile(ctx)
	if err != nil {
		t.Fatalf("AnsibleInventoryFile: %v", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != inv {
		t.Errorf("inventory file %s: %v (differs from AnsibleInventory)", path, err)
	}
	cleanup()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("inventory file %s left after cleanup", path)
	}
}
