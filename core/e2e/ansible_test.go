//go:build e2e

package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestAnsibleInventory hands a real 2-VM environment (bootstrapped, so
// the prefix key is installed and no password is needed) to the real
// ansible: `lago ansible_hosts` (INI) and `lago -f json ansible_hosts`
// (through an inventory script) are read by `ansible-inventory --list`,
// which must find the key=value groups, the bare groups of `groups:` (a
// list and a string, which counts as one group) and each host with its
// address from `lago status`, the prefix key and user root; then
// `ansible all -m raw -a hostname` (raw needs no python in the busybox
// guest) logs in to each VM through the INI inventory and each answers
// its own name.
func TestAnsibleInventory(t *testing.T) {
	inventoryBin, err := exec.LookPath("ansible-inventory")
	if err != nil {
		t.Fatalf("ansible-inventory is not installed (make deps installs ansible-core): %v", err)
	}
	ansibleBin, err := exec.LookPath("ansible")
	if err != nil {
		t.Fatalf("ansible is not installed (make deps installs ansible-core): %v", err)
	}
	h := newHarness(t)
	h.extraEnv = append(h.extraEnv, "LIBGUESTFS_BACKEND=direct", "LIBGUESTFS_BACKEND_SETTINGS=force_tcg")
	withGroups := func(vm, groups string) string {
		return strings.Replace(vmBlock(vm, "net: lago"), "    vcpu: 1\n", "    vcpu: 1\n    groups: "+groups+"\n", 1)
	}
	h.initEnv(h.writeInitFile("domains:\n"+withGroups("vm0", "[web, db]")+withGroups("vm1", "web-server")+oneNet), "--bootstrap")
	h.must("start")
	st := h.status()
	ips := map[string]string{"vm0": st.vmIP("vm0", "lago"), "vm1": st.vmIP("vm1", "lago")}
	key := filepath.Join(h.dir, ".lago", "current", "id_rsa")
	if k, err := filepath.EvalSymlinks(key); err == nil {
		key = k
	}

	wantGroups := map[string][]string{
		"vm-type=default":           {"vm0", "vm1"},
		"vm-provider=local-libvirt": {"vm0", "vm1"},
		"groups=web":                {"vm0"},
		"groups=db":                 {"vm0"},
		"groups=web-server":         {"vm1"},
		"web":                       {"vm0"},
		"db":                        {"vm0"},
		"web-server":                {"vm1"},
	}
	check := func(t *testing.T, what string, got ansibleListing) {
		t.Helper()
		have := map[string][]string{}
		for name, g := range got.groups {
			if name == "all" || name == "ungrouped" {
				continue
			}
			hosts := append([]string(nil), g.Hosts...)
			sort.Strings(hosts)
			have[name] = hosts
		}
		if !reflect.DeepEqual(have, wantGroups) {
			t.Errorf("%s: ansible read groups\n%v\nwant\n%v", what, have, wantGroups)
		}
		if len(got.hostVars) != 2 {
			t.Errorf("%s: ansible has the variables of %d hosts, want 2: %v", what, len(got.hostVars), got.hostVars)
		}
		for vm, ip := range ips {
			v := got.hostVars[vm]
			if v["ansible_host"] != ip {
				t.Errorf("%s: %s has ansible_host %v, want %s (lago status)", what, vm, v["ansible_host"], ip)
			}
			if kf, _ := v["ansible_ssh_private_key_file"].(string); kf == "" {
				t.Errorf("%s: %s has no ansible_ssh_private_key_file", what, vm)
			} else if a, b := realPath(kf), realPath(key); a != b {
				t.Errorf("%s: %s has key file %s, want the prefix key %s", what, vm, kf, key)
			}
			if v["ansible_user"] != "root" {
				t.Errorf("%s: %s has ansible_user %v, want root", what, vm, v["ansible_user"])
			}
			if pw, ok := v["ansible_password"]; ok {
				t.Errorf("%s: %s has ansible_password %v although bootstrap installed the key", what, vm, pw)
			}
		}
	}

	dir := t.TempDir()
	ini := filepath.Join(dir, "hosts.ini")
	if err := os.WriteFile(ini, []byte(h.must("ansible_hosts")), 0o644); err != nil {
		t.Fatal(err)
	}
	check(t, "INI", runAnsibleList(t, inventoryBin, ini, "ini"))

	// Global options come before the verb, as in the original.
	js := h.must("-f", "json", "ansible_hosts")
	if !json.Valid([]byte(js)) {
		t.Fatalf("-f json ansible_hosts is not JSON:\n%s", js)
	}
	if err := os.WriteFile(filepath.Join(dir, "inventory.json"), []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "inventory.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec cat \"$(dirname \"$0\")/inventory.json\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	check(t, "JSON script", runAnsibleList(t, inventoryBin, script, "script"))

	// ansible itself logs in to both VMs with what the inventory says.
	for _, inv := range []struct{ name, source, plugin string }{{"INI", ini, "ini"}, {"JSON script", script, "script"}} {
		out := runAnsible(t, ansibleBin, inv.source, inv.plugin, "all", "-o", "-m", "raw", "-a", "hostname")
		for vm := range ips {
			// -o prints "vm0 | CHANGED | rc=0 | (stdout) vm0".
			found := false
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, vm+" | CHANGED | rc=0 |") && strings.Contains(line, "(stdout) "+vm) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: ansible -m raw -a hostname: no line of %s answering its name:\n%s", inv.name, vm, out)
			}
		}
	}

	h.must("destroy", "--yes")
	h.assertNothingLeft()
}

func realPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// ansibleListing is what `ansible-inventory --list` prints.
type ansibleListing struct {
	hostVars map[string]map[string]any
	groups   map[string]struct {
		Hosts    []string `json:"hosts"`
		Children []string `json:"children"`
	}
}

// ansibleEnv is an environment for ansible with nothing of the host's
// configuration, only plugin enabled, and every unparsed source an error.
func ansibleEnv(t *testing.T, plugin string) []string {
	home := t.TempDir()
	return append(os.Environ(),
		"HOME="+home,
		"ANSIBLE_CONFIG="+filepath.Join(home, "none.cfg"),
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(home, "tmp"),
		"ANSIBLE_SSH_CONTROL_PATH_DIR="+filepath.Join(home, "cp"),
		"ANSIBLE_INVENTORY_ENABLED="+plugin,
		"ANSIBLE_INVENTORY_UNPARSED_FAILED=True",
		"ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED=True",
		"ANSIBLE_NOCOLOR=1",
	)
}

func runAnsibleList(t *testing.T, bin, source, plugin string) ansibleListing {
	t.Helper()
	out := runAnsibleTool(t, bin, plugin, "-i", source, "--list")
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("decode ansible-inventory --list: %v\n%s", err, out)
	}
	l := ansibleListing{groups: map[string]struct {
		Hosts    []string `json:"hosts"`
		Children []string `json:"children"`
	}{}}
	for name, r := range raw {
		if name == "_meta" {
			var meta struct {
				HostVars map[string]map[string]any `json:"hostvars"`
			}
			if err := json.Unmarshal(r, &meta); err != nil {
				t.Fatalf("decode _meta: %v", err)
			}
			l.hostVars = meta.HostVars
			continue
		}
		g := l.groups[name]
		if err := json.Unmarshal(r, &g); err != nil {
			t.Fatalf("decode group %s: %v", name, err)
		}
		l.groups[name] = g
	}
	return l
}

func runAnsible(t *testing.T, bin, source, plugin string, args ...string) string {
	t.Helper()
	return runAnsibleTool(t, bin, plugin, append([]string{"-i", source}, args...)...)
}

// runAnsibleTool runs an ansible program and returns its stdout; a
// non-zero exit fails the test.
func runAnsibleTool(t *testing.T, bin, plugin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = ansibleEnv(t, plugin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s %s: %v in %s", filepath.Base(bin), strings.Join(args, " "), err, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", bin, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}
