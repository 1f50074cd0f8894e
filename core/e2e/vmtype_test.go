//go:build e2e

package e2e_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestVMTypeHooks runs the example vm-type plugin (examples/vmtype-tiny,
// built by `make examples` into LAGO_E2E_EXAMPLES and found only through
// LAGO_PLUGIN_PATH) on the tiny guest: init refuses a type no plugin
// serves; with `vm-type: tiny` init stores the artifact its NormalizeSpec
// adds, start returns only after its AfterStart saw port 22 and left its
// file in the guest (its time in start's log at -l debug), and status
// shows its kernel field under the VM, and only under the typed VM.
func TestVMTypeHooks(t *testing.T) {
	examples := os.Getenv("LAGO_E2E_EXAMPLES")
	if examples == "" {
		t.Fatal("LAGO_E2E_EXAMPLES (the folder `make examples` builds into) is not set: run through test/e2e/run.sh")
	}
	if _, err := os.Stat(filepath.Join(examples, "lago-plugin-tiny")); err != nil {
		t.Fatalf("example plugin missing (run make examples): %v", err)
	}
	h := newHarness(t)
	h.env.PluginPath = examples + string(os.PathListSeparator) + h.env.PluginPath

	typed := strings.Replace(vmBlock("vm0", "net: lago"), "    memory: 256\n", "    memory: 256\n    vm-type: tiny\n", 1)

	// An unknown type is refused at init, naming the file, line and field.
	bad := h.writeInitFile("domains:\n" + strings.Replace(typed, "vm-type: tiny", "vm-type: no-such-type", 1) + oneNet)
	r := h.lago("init", "--template-repo-path", h.env.TemplateRepo, "--skip-bootstrap", bad)
	if r.code == 0 {
		t.Fatalf("init with an unknown vm type succeeded:\n%s", r)
	}
	for _, want := range []string{"LagoInitFile:", ": domains.vm0.vm-type: unknown vm type", `"no-such-type"`, "tiny"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("init error lacks %q:\n%s", want, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(h.dir, ".lago")); !os.IsNotExist(err) {
		t.Errorf("a refused init left %s/.lago (%v)", h.dir, err)
	}

	h.initEnv(h.writeInitFile("domains:\n" + typed + vmBlock("vm1", "net: lago") + oneNet))
	prefix, err := filepath.EvalSymlinks(filepath.Join(h.dir, ".lago", "current"))
	if err != nil {
		t.Fatal(err)
	}
	// NormalizeSpec: the artifact and metadata are in the stored spec.
	var spec struct {
		Artifacts []string
		Metadata  map[string]any
	}
	b, err := os.ReadFile(filepath.Join(prefix, "virt", "vm-vm0"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(spec.Artifacts, "/var/log") || spec.Metadata["vmtype-tiny"] != "normalized" {
		t.Errorf("vm0 spec after init lacks the type's artifact or metadata:\n%s", b)
	}
	if b1, _ := os.ReadFile(filepath.Join(prefix, "virt", "vm-vm1")); strings.Contains(string(b1), "vmtype-tiny") {
		t.Errorf("vm1 (no type) was normalized too:\n%s", b1)
	}

	// AfterStart: done before start returned, its time in the log.
	started := h.lago("-l", "debug", "start")
	if started.code != 0 {
		t.Fatalf("start:\n%s", started)
	}
	if !strings.Contains(started.stderr, "vm type ready") || !strings.Contains(started.stderr, "vm=vm0") || !strings.Contains(started.stderr, "after=") {
		t.Errorf("start's log does not show AfterStart's time (\"vm type ready vm=vm0 ... after=\"):\n%s", started.stderr)
	}
	if got := strings.TrimSpace(h.shell("vm0", "ls", "/tmp/vmtype-tiny-ready")); got != "/tmp/vmtype-tiny-ready" {
		t.Errorf("after start, vm0 lacks the ready file AfterStart leaves: %q", got)
	}
	if got := h.lago("shell", "vm1", "ls", "/tmp/vmtype-tiny-ready"); got.code == 0 {
		t.Errorf("vm1 (no type) has the ready file:\n%s", got)
	}

	// StatusFields: the kernel under vm0 only.
	kernel := strings.TrimSpace(h.shell("vm0", "uname", "-r"))
	st := h.status()
	if got, _ := st.vm("vm0")["kernel"].(string); got == "" || got != kernel {
		t.Errorf("status of vm0 shows kernel %q, want %q:\n%s", got, kernel, st.text)
	}
	if _, ok := st.vm("vm1")["kernel"]; ok {
		t.Errorf("status of vm1 (no type) shows a kernel:\n%s", st.text)
	}
	if got := st.vmStatus("vm0"); got != "running" {
		t.Errorf("vm0 is %q, want running (a type's field must not replace lago's)", got)
	}

	h.must("destroy", "--yes")
	h.assertNothingLeft()
}
