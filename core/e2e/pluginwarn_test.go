//go:build e2e

package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDomainTypeAutoWarnsOnce: with domain_type auto on a host where KVM
// does not work (the CI hosts), the libvirt provider falls back to TCG
// with a warning. The user sees it once per command, in lago's style; the
// plugin's own hclog line goes to the prefix log, not the terminal.
func TestDomainTypeAutoWarnsOnce(t *testing.T) {
	h := newHarness(t)
	// The harness's config pins domain_type = qemu; this test needs auto.
	conf := fmt.Sprintf("[lago]\nlease_dir = %s\n\n[init]\ntemplate_store = %s\ntemplate_repos = %s\n\n[provider local-libvirt]\nplugin = libvirt\n",
		h.env.LeaseDir, h.env.Store, h.env.Repos)
	if err := os.WriteFile(h.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	initFile := h.writeInitFile("domains:\n" + vmBlock("vm0", "net: lago") + oneNet)
	const warning = "lago: warning: domain_type auto: using qemu (TCG emulation, slow) instead of kvm: "
	var warned int
	for _, args := range [][]string{
		{"init", "--template-repo-path", h.env.TemplateRepo, "--skip-bootstrap", initFile},
		{"start"},
	} {
		r := h.lago(args...)
		if r.code != 0 {
			t.Fatalf("%s", r)
		}
		n := strings.Count(r.stderr, warning)
		if n > 1 {
			t.Errorf("lago %s printed the warning %d times:\n%s", args[0], n, r.stderr)
		}
		warned += n
		for _, raw := range []string{"[WARN]", "lago-plugin-provider-libvirt"} {
			if strings.Contains(r.stderr, raw) {
				t.Errorf("lago %s printed the plugin's raw log line (%q):\n%s", args[0], raw, r.stderr)
			}
		}
		if id := h.uuid(); id != "" && args[0] == "init" {
			*h.uuids = append(*h.uuids, id)
		}
	}
	log, err := os.ReadFile(filepath.Join(h.dir, ".lago", "current", "logs", "lago.log"))
	if err != nil {
		t.Fatalf("prefix log: %v", err)
	}
	raw := strings.Contains(string(log), "[WARN]  lago-plugin-provider-libvirt: domain_type auto: using qemu")
	if warned == 0 && !raw {
		t.Skip("KVM works on this host: domain_type auto gives no warning")
	}
	if warned == 0 {
		t.Errorf("the warning was never shown to the user")
	}
	if !raw {
		t.Errorf("the plugin's warning line is not in the prefix log:\n%s", log)
	}
	h.must("destroy", "--yes")
	h.assertNothingLeft()
}
