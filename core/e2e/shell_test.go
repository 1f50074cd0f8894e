//go:build e2e

package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestShellCommandLine: `lago shell VM CMD...` hands the guest's login
// shell one command line, the words joined with single spaces, as `ssh
// host CMD...` does: exit codes, pipes, expansions and word splitting are
// the guest shell's, directly and through the VM's kept connection. The
// same environment's status shows the original's text for a list value
// (deploy-scripts) in each built-in format.
func TestShellCommandLine(t *testing.T) {
	h := newHarness(t)
	var scripts []string
	for _, name := range []string{"a.sh", "b.sh"} {
		p := filepath.Join(h.dir, name)
		if err := os.WriteFile(p, []byte("true\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		scripts = append(scripts, p)
	}
	vm := strings.Replace(vmBlock("vm0", "net: lago"), "    vcpu: 1\n",
		"    vcpu: 1\n    metadata:\n      deploy-scripts:\n        - "+scripts[0]+"\n        - "+scripts[1]+"\n", 1)
	h.initEnv(h.writeInitFile("domains:\n" + vm + oneNet))

	t.Run("status", func(t *testing.T) {
		h := h.sub(t)
		md, _ := h.status().vm("vm0")["metadata"].(map[string]any)
		list, _ := md["deploy-scripts"].([]any)
		if len(list) != 2 {
			t.Fatalf("status json: deploy-scripts = %v, want 2 scripts", md["deploy-scripts"])
		}
		a, b := list[0].(string), list[1].(string)
		const ind = "                " // [Prefix] [VMs] [vm0] [metadata]: four levels
		checks := []struct{ format, want string }{
			{"default", "\n" + ind + "deploy-scripts: \n" + ind + "    " + a + "\n" + ind + "    " + b + "\n"},
			{"flat", "\nVMs/vm0/metadata/deploy-scripts: " + a + "\nVMs/vm0/metadata/deploy-scripts: " + b + "\n"},
			{"flat", "\nVMs/vm0/snapshots: \n"},
			{"yaml", "\n      metadata:\n        deploy-scripts:\n        - " + a + "\n        - " + b + "\n"},
			{"yaml", "\n      root password: '123456'\n      snapshots: ''\n"},
		}
		for _, c := range checks {
			if out := h.must("-f", c.format, "status"); !strings.Contains(out, c.want) {
				t.Errorf("status -f %s lacks %q:\n%s", c.format, c.want, out)
			}
		}
	})

	h.must("start")
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"exit status", []string{"exit 7"}, 7, ""},
		{"pipe in the guest", []string{"grep ^ID= /etc/os-release | cut -d= -f2"}, 0, "busybox\n"},
		{"unquoted words", []string{"echo", "a", "b"}, 0, "a b\n"},
		{"words split again by the guest", []string{"echo", "a  b"}, 0, "a b\n"},
		{"guest expansion", []string{"echo", "$HOME", "$((6*7))"}, 0, "/root 42\n"},
		{"status of the last command", []string{"false;", "echo", "$?"}, 0, "1\n"},
	}
	run := func(t *testing.T, h *harness) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h := h.sub(t)
				r := h.lago(append([]string{"shell", "vm0"}, tt.args...)...)
				if r.code != tt.code || r.stdout != tt.out {
					t.Errorf("got exit %d stdout %q, want exit %d stdout %q\n%s", r.code, r.stdout, tt.code, tt.out, r)
				}
			})
		}
	}
	// Each case connects on its own with ssh_persist off, then through
	// the mux that the first command with it on starts.
	t.Run("direct", func(t *testing.T) {
		h := h.sub(t)
		h.extraEnv = append(append([]string(nil), h.extraEnv...), "LAGO_SSH_PERSIST=0")
		before := h.muxSockets(h.uuid())
		run(t, h)
		if socks := h.muxSockets(h.uuid()); len(socks) != len(before) {
			t.Errorf("shells with ssh_persist off started a mux: %v", socks)
		}
	})
	h.must("shell", "vm0", "true")
	eventually(t, 30*time.Second, 50*time.Millisecond, "the VM's ssh mux", func() bool { return len(h.muxSockets(h.uuid())) == 1 })
	t.Run("mux", func(t *testing.T) { run(t, h.sub(t)) })

	// A lone word naming a local file is still a script fed to the guest.
	t.Run("script", func(t *testing.T) {
		h := h.sub(t)
		p := filepath.Join(h.dir, "s.sh")
		if err := os.WriteFile(p, []byte("echo from-script\nexit 4\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := h.lago("shell", "vm0", p); r.code != 4 || r.stdout != "from-script\n" {
			t.Errorf("script: %s", r)
		}
	})

	h.must("destroy", "--yes")
	h.assertNothingLeft()
}
