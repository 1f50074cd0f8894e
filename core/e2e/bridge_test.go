//go:build e2e

package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBridgeOnlyVM: an environment whose only net is a bridge, as the
// original accepts: the bridge becomes the management net, lago gives the
// VM's NIC no address (nothing serves DHCP on the bridge here), start
// returns without waiting for ssh and says so, status shows ip N/A, shell
// explains why it cannot connect, and destroy leaves nothing.
//
// It also runs every command with LAGO__START__WAIT_SUSPEND set, as the
// original's CI users do: each command works and the notice is printed
// once, not once by the front-end and again by the engine.
func TestBridgeOnlyVM(t *testing.T) {
	h := newHarness(t)
	h.extraEnv = append(h.extraEnv, "LAGO__START__WAIT_SUSPEND=1.0")
	const notice = "LAGO__START__WAIT_SUSPEND: wait_suspend has no effect"
	once := func(r result) {
		t.Helper()
		if n := strings.Count(r.stderr, notice); n != 1 {
			t.Errorf("lago %s printed the wait_suspend notice %d times, want once:\n%s", strings.Join(r.args, " "), n, r.stderr)
		}
	}

	h.initEnv(h.writeInitFile("domains:\n" + vmBlock("vm0", "net: lab") + "nets:\n  lab:\n    type: bridge\n"))
	if l := h.leasesOf(); len(l) != 0 {
		t.Errorf("a bridge-only environment leased subnets: %v", l)
	}

	begin := time.Now()
	r := h.lago("start")
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	once(r)
	for _, w := range []string{"not waiting for ssh", "vm=vm0", "net=lab"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("start does not say it skips the ssh wait (%q missing):\n%s", w, r.stderr)
		}
	}
	t.Logf("start returned after %s", time.Since(begin).Round(time.Millisecond))

	st := h.status()
	if got := st.vmStatus("vm0"); got != "running" {
		t.Errorf("vm0 is %q, want running", got)
	}
	if got := st.netStatus("lab"); got != "up" {
		t.Errorf("net lab is %q, want up", got)
	}
	if got := st.vmIP("vm0", "lab"); got != "N/A" {
		t.Errorf("vm0's ip on lab is %q, want N/A", got)
	}
	if def := h.must("status"); !strings.Contains(def, "ip: N/A") {
		t.Errorf("default status lacks ip: N/A:\n%s", def)
	}

	// The VM's NIC is a port of the bridge net's bridge.
	for _, tap := range h.taps("vm0") {
		master, err := os.Readlink(filepath.Join("/sys/class/net", tap, "master"))
		if err != nil {
			t.Errorf("tap %s of vm0 is on no bridge: %v", tap, err)
			continue
		}
		bridge := filepath.Base(master)
		var lab string
		for _, o := range libvirtObjects(t, h.env.URI, h.dir) {
			if o.Kind == "network" && strings.HasSuffix(o.Name, "-lab") {
				lab = o.Name
			}
		}
		info, err := virsh(t, h.env.URI, "net-info", lab)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(info, bridge) {
			t.Errorf("tap %s is on bridge %s, not the one of network %s:\n%s", tap, bridge, lab, info)
		}
	}

	r = h.lago("shell", "vm0", "true")
	if r.code != 2 {
		t.Errorf("shell on a VM without an address: want exit 2\n%s", r)
	}
	for _, w := range []string{"vm vm0 has no address lago knows", "bridge net lab", "lago console vm0"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("shell does not explain (%q missing):\n%s", w, r.stderr)
		}
	}

	r = h.lago("destroy", "--yes")
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	once(r)
	h.assertNothingLeft()
}
