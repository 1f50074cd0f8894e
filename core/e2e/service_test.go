//go:build e2e

package e2e_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServiceManagers: `lago service` on real guests with their real init
// systems (test/e2e/mkservicetemplates.sh): a Debian guest with systemd as
// pid 1 and one with sysvinit (checked in /proc/1/comm), in one environment. On each, ssh is active
// (exit 0), cron stopped is inactive (3) and started again active (0), a
// service that does not exist is missing (4), and the service manager
// detected on first use is recorded in the VM's spec: systemd on one,
// sysvinit on the other.
func TestServiceManagers(t *testing.T) {
	repo := os.Getenv("LAGO_E2E_SERVICE_REPO")
	if repo == "" {
		t.Fatal("LAGO_E2E_SERVICE_REPO is empty: the systemd and sysvinit guests did not build " +
			"(test/e2e/run.sh logs test/e2e/mkservicetemplates.sh to service-templates.log)")
	}
	h := newHarness(t)
	// pid1 is /proc/1/comm: the init system really runs the guest.
	guests := []struct{ vm, template, pid1 string }{
		{"sd0", "systemd", "systemd"},
		{"sv0", "sysvinit", "init"},
	}
	var init strings.Builder
	init.WriteString("domains:\n")
	for _, g := range guests {
		fmt.Fprintf(&init, "  %s:\n    memory: 512\n    vcpu: 1\n    nics:\n      - net: lago\n", g.vm)
		fmt.Fprintf(&init, "    disks:\n      - template_name: %s\n        type: template\n        name: root\n        dev: vda\n        format: qcow2\n", g.template)
	}
	init.WriteString(oneNet)
	h.must("init", "--template-repo-path", repo, "--skip-bootstrap", h.writeInitFile(init.String()))
	if id := h.uuid(); id != "" {
		*h.uuids = append(*h.uuids, id)
	}
	h.must("start")

	for _, g := range guests {
		t.Run(g.template, func(t *testing.T) {
			h := h.sub(t)
			if got := strings.TrimSpace(h.shell(g.vm, "cat /proc/1/comm")); got != g.pid1 {
				t.Errorf("pid 1 of %s is %q, want %q", g.vm, got, g.pid1)
			}
			steps := []struct {
				args     []string
				wantExit int
				wantOut  string
			}{
				{[]string{"ssh"}, 0, "ssh: active\n"},
				{[]string{"ssh", "status"}, 0, "ssh: active\n"},
				{[]string{"cron", "stop"}, 0, ""},
				{[]string{"cron"}, 3, "cron: inactive\n"},
				{[]string{"cron", "start"}, 0, ""},
				{[]string{"cron"}, 0, "cron: active\n"},
				{[]string{"no-such-service"}, 4, "no-such-service: missing\n"},
			}
			for _, s := range steps {
				r := h.lago(append([]string{"service", g.vm}, s.args...)...)
				if r.code != s.wantExit || r.stdout != s.wantOut {
					t.Errorf("%s\nwant exit %d, stdout %q", r, s.wantExit, s.wantOut)
				}
			}
			b, err := os.ReadFile(filepath.Join(h.dir, ".lago", "current", "virt", "vm-"+g.vm))
			if err != nil {
				t.Fatal(err)
			}
			var vm struct {
				ServiceProvider string `json:"service_provider"`
			}
			if err := json.Unmarshal(b, &vm); err != nil {
				t.Fatalf("spec of %s: %v\n%s", g.vm, err, b)
			}
			if vm.ServiceProvider != g.template {
				t.Errorf("service_provider of %s is %q, want %q", g.vm, vm.ServiceProvider, g.template)
			}
		})
	}
	h.must("destroy", "--yes")
}
