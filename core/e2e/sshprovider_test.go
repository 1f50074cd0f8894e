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

// TestSSHProvider runs the example out-of-tree plugins (examples/, built by
// `make examples` into LAGO_E2E_EXAMPLES, found only through
// LAGO_PLUGIN_PATH) against a real machine: a VM of the libvirt provider in
// one prefix is, for a second prefix, a machine that already exists and
// answers ssh, which that prefix reaches through a named instance of the
// ssh provider. Lago must discover the plugins, init, start and report the
// machine as running, shell into it, and leave it alone on stop and
// destroy; the markdown output plugin renders the second prefix's status.
func TestSSHProvider(t *testing.T) {
	examples := os.Getenv("LAGO_E2E_EXAMPLES")
	if examples == "" {
		t.Fatal("LAGO_E2E_EXAMPLES (the folder `make examples` builds into) is not set: run through test/e2e/run.sh")
	}
	for _, bin := range []string{"lago-plugin-ssh", "lago-plugin-markdown"} {
		if _, err := os.Stat(filepath.Join(examples, bin)); err != nil {
			t.Fatalf("example plugin missing (run make examples): %v", err)
		}
	}

	// The machine: vm0 of the libvirt provider, trusting its prefix's key
	// (the ssh provider's credentials) and holding a file to find.
	lab := newHarness(t)
	lab.initEnv(lab.writeInitFile("domains:\n" + vmBlock("vm0", "net: lago") + oneNet))
	lab.must("start")
	labStatus := lab.status()
	ip := labStatus.vmIP("vm0", "lago")
	nets, _ := labStatus.prefix()["Networks"].(map[string]any)
	lagoNet, _ := nets["lago"].(map[string]any)
	gw, _ := lagoNet["gateway"].(string)
	if gw == "" {
		t.Fatalf("status has no gateway of net lago:\n%s", labStatus.text)
	}
	labPrefix, err := filepath.EvalSymlinks(filepath.Join(lab.dir, ".lago", "current"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(filepath.Join(labPrefix, "id_rsa.pub"))
	if err != nil {
		t.Fatal(err)
	}
	// lago shell sends its words as one command line, as ssh does.
	if r := lab.lagoStdin(string(pub), "shell", "vm0", "cat >> /root/.ssh/authorized_keys"); r.code != 0 {
		t.Fatalf("authorize the lab prefix's key on vm0:\n%s", r)
	}
	lab.shell("vm0", "echo made-by-libvirt > /root/ssh-provider-mark")

	// The second prefix: its own lease folder (the subnet is the lab
	// prefix's), the example plugins on LAGO_PLUGIN_PATH, and an ssh
	// provider instance with vm0's address, the lab prefix's key and the
	// host key that prefix recorded.
	h := newHarness(t)
	h.env.LeaseDir = filepath.Join(h.dir, "leases")
	h.env.PluginPath = examples + string(os.PathListSeparator) + h.env.PluginPath
	h.writeConfig(fmt.Sprintf("[provider ssh-lab]\nplugin = ssh\nhost = %s\nuser = root\nkey = %s\nknown_hosts = %s\n",
		ip, filepath.Join(labPrefix, "id_rsa"), filepath.Join(labPrefix, "known_hosts")))

	var listed struct {
		Plugins []struct {
			Name, Path, Status string
			Components         []struct{ Name, Kind string }
		}
	}
	if err := json.Unmarshal([]byte(h.must("--out-format", "json", "plugins")), &listed); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, p := range listed.Plugins {
		for _, c := range p.Components {
			if strings.HasPrefix(p.Path, examples) && p.Status == "ok" {
				found[c.Kind+"/"+c.Name] = true
			}
		}
	}
	if !found["provider/ssh"] || !found["output/markdown"] {
		t.Fatalf("lago plugins does not list the examples from %s as usable: %+v", examples, listed)
	}

	h.initEnv(h.writeInitFile(fmt.Sprintf(`domains:
  machine:
    vm-provider: ssh-lab
    nics:
      - net: lab
        ip: %s
nets:
  lab:
    type: nat
    gw: %s
    management: true
`, ip, gw)))
	// The machine runs before lago starts anything: state is reachability.
	if got := h.status().vmStatus("machine"); got != "running" {
		t.Errorf("status after init: machine is %q, want running (it answers ssh)", got)
	}
	h.must("start")
	st := h.status()
	if got := st.vmStatus("machine"); got != "running" {
		t.Errorf("status after start: machine is %q, want running", got)
	}
	if got := st.netStatus("lab"); got != "down" {
		t.Errorf("net lab is %q, want down: the ssh provider runs no network", got)
	}
	md := h.must("--out-format", "markdown", "status")
	for _, want := range []string{"# Prefix", "### machine", "- **status**: running", "| eth0 | " + ip + " | lab |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown status lacks %q:\n%s", want, md)
		}
	}
	if got := strings.TrimSpace(h.shell("machine", "cat", "/root/ssh-provider-mark")); got != "made-by-libvirt" {
		t.Errorf("shell through the ssh provider read %q, want made-by-libvirt", got)
	}

	// stop and destroy leave the machine alone.
	h.must("stop")
	if got := lab.domainState(lab.env.URI, "vm0"); got != "running" {
		t.Fatalf("after stop of the ssh prefix, vm0 is %q, want running", got)
	}
	if got := h.status().vmStatus("machine"); got != "running" {
		t.Errorf("status after stop: machine is %q, want running (stop leaves it alone)", got)
	}
	h.must("destroy", "--yes")
	if _, err := os.Stat(filepath.Join(h.dir, ".lago")); !os.IsNotExist(err) {
		t.Errorf("destroy left the workdir: %v", err)
	}
	h.assertNothingLeft()
	if got := lab.domainState(lab.env.URI, "vm0"); got != "running" {
		t.Fatalf("after destroy of the ssh prefix, vm0 is %q, want running", got)
	}
	if got := strings.TrimSpace(lab.shell("vm0", "cat", "/root/ssh-provider-mark")); got != "made-by-libvirt" {
		t.Errorf("vm0 after the ssh prefix's destroy: mark is %q", got)
	}

	lab.must("destroy", "--yes")
	lab.assertNothingLeft()
}
