package inventory

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"
)

// ansibleInventory finds ansible-inventory. Where LAGO_REQUIRE_ANSIBLE=1
// (CI, which installs ansible-core) a missing tool fails the test, so the
// check cannot silently stop running.
func ansibleInventory(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ansible-inventory")
	if err != nil {
		if os.Getenv("LAGO_REQUIRE_ANSIBLE") == "1" {
			t.Fatalf("LAGO_REQUIRE_ANSIBLE=1 but ansible-inventory is not on PATH: %v (install ansible-core)", err)
		}
		t.Skipf("ansible-inventory not on PATH (install ansible-core; LAGO_REQUIRE_ANSIBLE=1 makes this a failure): %v", err)
	}
	return p
}

// listed is what `ansible-inventory --list` prints: hostvars and the
// groups with their hosts and children.
type listed struct {
	hostVars map[string]map[string]any
	groups   map[string]listedGroup
}

type listedGroup struct {
	Hosts    []string `json:"hosts"`
	Children []string `json:"children"`
}

// runList runs ansible-inventory --list on source with only plugin
// enabled, failing on anything it cannot parse, and decodes its output.
func runList(t *testing.T, bin, source, plugin string) listed {
	t.Helper()
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-i", source, "--list")
	cmd.Env = append(os.Environ(),
		"HOME="+home,
		"ANSIBLE_CONFIG="+filepath.Join(home, "none.cfg"),
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(home, "tmp"),
		"ANSIBLE_INVENTORY_ENABLED="+plugin,
		"ANSIBLE_INVENTORY_UNPARSED_FAILED=True",
		"ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED=True",
		"ANSIBLE_NOCOLOR=1",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ansible-inventory -i %s --list: %v\n%s", source, err, stderr.String())
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(stdout.Bytes(), &raw); err != nil {
		t.Fatalf("decode ansible-inventory output: %v\n%s", err, stdout.String())
	}
	out := listed{groups: map[string]listedGroup{}}
	for name, r := range raw {
		if name == "_meta" {
			var meta struct {
				HostVars map[string]map[string]any `json:"hostvars"`
			}
			if err := json.Unmarshal(r, &meta); err != nil {
				t.Fatalf("decode _meta: %v", err)
			}
			out.hostVars = meta.HostVars
			continue
		}
		var g listedGroup
		if err := json.Unmarshal(r, &g); err != nil {
			t.Fatalf("decode group %s: %v", name, err)
		}
		out.groups[name] = g
	}
	return out
}

// checkSame compares what ansible read with inv: the same groups with
// the same hosts (ansible keeps the hosts of [all] in no listed group),
// every group a child of all, and every host's variables as the same
// strings.
func checkSame(t *testing.T, what string, got listed, inv *Inventory) {
	t.Helper()
	want := map[string][]string{}
	children := []string{"ungrouped"}
	for _, g := range inv.Groups {
		if g.Name == "all" {
			continue
		}
		want[g.Name] = g.Hosts
		children = append(children, g.Name)
	}
	have := map[string][]string{}
	for name, g := range got.groups {
		if name == "all" || name == "ungrouped" {
			continue
		}
		hosts := append([]string(nil), g.Hosts...)
		sort.Strings(hosts)
		have[name] = hosts
	}
	if !reflect.DeepEqual(have, want) {
		t.Errorf("%s: ansible read groups\n%v\nwant\n%v", what, have, want)
	}
	all := append([]string(nil), got.groups["all"].Children...)
	sort.Strings(all)
	sort.Strings(children)
	if !reflect.DeepEqual(all, children) {
		t.Errorf("%s: children of all = %v, want %v", what, all, children)
	}
	wantVars := map[string]map[string]any{}
	for _, h := range inv.Hosts {
		vars := map[string]any{}
		for k, v := range inv.HostVarsOf(h.Name) {
			vars[k] = v
		}
		wantVars[h.Name] = vars
	}
	if !reflect.DeepEqual(got.hostVars, wantVars) {
		for name, vars := range wantVars {
			if !reflect.DeepEqual(got.hostVars[name], vars) {
				t.Errorf("%s: host %s: ansible read vars\n%#v\nwant\n%#v", what, name, got.hostVars[name], vars)
			}
		}
		if len(got.hostVars) != len(wantVars) {
			t.Errorf("%s: ansible has hostvars of %d hosts, want %d", what, len(got.hostVars), len(wantVars))
		}
	}
}

// TestAnsibleReadsInventory has the real ansible-inventory read the INI
// text (ini plugin) and a script printing the JSON (script plugin) and
// checks both give the Inventory's groups, hosts and variables: the
// quoting of values, the group names ansible accepts and the JSON shape
// are ansible's to judge, not ours.
func TestAnsibleReadsInventory(t *testing.T) {
	bin := ansibleInventory(t)
	hs := fixture(t)
	hs[0].Spec["groups"] = "web-server"
	hs[1].Spec["metadata"] = map[string]any{"roles": []any{"db", "cache"}, "n": 3.0, "on": true}
	hs[2].Address = ""
	// A host only in all, which the JSON shape lists under all itself.
	hs = append(hs, Host{Name: "solo", Spec: map[string]any{"groups": []any{"all"}}, Address: "192.168.200.9"})
	// Passwords ansible's INI parser would read as something else if
	// written bare.
	tricky := []string{"123456", "0x10", "1_000", "True", "...", "[1, 2]", "{'a': 1}", "1,2", "a b", "a#b",
		"it's", `say "hi"`, `back\slash`, "tab\tnl\nend", "pässword", "-1", "1.5", "(1)", "$HOME", "a;b", "%s"}
	for i, pw := range tricky {
		s := specOf(t, vm2JSON)
		name := "pw" + string(rune('a'+i))
		s["name"] = name
		hs = append(hs, Host{Name: name, Spec: s, Address: "192.168.201." + string(rune('2'+i%8)), KeyFile: "/tmp/a dir/id_rsa",
			User: "user #1", Password: pw, Vars: map[string]string{"ansible_ssh_common_args": "-o UserKnownHostsFile='/p q/known_hosts'"}})
	}
	inv, err := Build(hs, []string{"vm-type", "groups", "vm-provider", "metadata/roles", "metadata/n", "metadata/on", "/disks/0/metadata/distro"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	ini := filepath.Join(dir, "hosts.ini")
	if err := os.WriteFile(ini, []byte(inv.INI()), 0o644); err != nil {
		t.Fatal(err)
	}
	checkSame(t, "INI", runList(t, bin, ini, "ini"), inv)

	js, err := json.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "inventory.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "inventory.sh")
	// The script finds its JSON beside itself: no path is written into
	// it.
	body := "#!/bin/sh\nexec cat \"$(dirname \"$0\")/inventory.json\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	checkSame(t, "script", runList(t, bin, script, "script"), inv)
}
