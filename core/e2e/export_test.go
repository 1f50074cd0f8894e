//go:build e2e

package e2e_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExportRoundTrip exports a VM that ran and wrote a file, both ways,
// and brings each export up with `init` in a fresh workdir on this host
// while the original environment still exists: the file is there.
func TestExportRoundTrip(t *testing.T) {
	h := newHarness(t)
	h.initEnv(h.writeInitFile("domains:\n" + vmBlock("vm0", "net: lago") + oneNet))
	h.must("start")
	token := fmt.Sprintf("written-before-export-%d", time.Now().UnixNano())
	h.shell("vm0", "echo "+token+" > /root/marker && sync")

	// A running VM is refused, by name, and nothing is written.
	refused := filepath.Join(h.dir, "refused")
	if r := h.lago("export", "--dst-dir", refused); r.code != 2 || !strings.Contains(r.stderr, "vm0 (running)") {
		t.Fatalf("export of a running vm:\n%s", r)
	}
	if _, err := os.Stat(refused); !os.IsNotExist(err) {
		t.Fatalf("a refused export made %s: %v", refused, err)
	}
	h.must("stop")

	for _, way := range []struct {
		name  string
		flags []string
	}{
		{"layered", nil},
		{"standalone", []string{"--standalone"}},
	} {
		t.Run(way.name, func(t *testing.T) {
			h := h.sub(t)
			dst := filepath.Join(h.dir, "export-"+way.name)
			h.must(append([]string{"-f", "yaml", "export", "--dst-dir", dst}, way.flags...)...)
			img := filepath.Join(dst, "vm0_root.qcow2")
			for _, f := range []string{img, img + ".hash", img + ".metadata", filepath.Join(dst, "LagoInitFile")} {
				if _, err := os.Stat(f); err != nil {
					t.Fatalf("export did not write %s: %v", f, err)
				}
			}
			out, err := exec.Command("qemu-img", "info", "--output=json", "--", img).Output()
			if err != nil {
				t.Fatalf("qemu-img info %s: %v", img, err)
			}
			var info struct {
				Backing string `json:"backing-filename"`
			}
			if err := json.Unmarshal(out, &info); err != nil {
				t.Fatal(err)
			}
			if way.name == "standalone" && info.Backing != "" {
				t.Fatalf("standalone image backs onto %q", info.Backing)
			}
			if way.name == "layered" {
				if !strings.HasPrefix(info.Backing, "./") {
					t.Fatalf("layered image backs onto %q, want a name relative to it", info.Backing)
				}
				if _, err := os.Stat(filepath.Join(dst, info.Backing)); err != nil {
					t.Fatalf("the template is not beside the layer: %v", err)
				}
			}

			// A fresh workdir inits the export while the original exists.
			n := newHarness(t)
			n.initEnv(filepath.Join(dst, "LagoInitFile"))
			n.must("start")
			if got := strings.TrimSpace(n.shell("vm0", "cat /root/marker")); got != token {
				t.Fatalf("the exported vm0 has /root/marker %q, want %q", got, token)
			}
			n.must("destroy", "--yes")
			n.assertNothingLeft()
			// The export is untouched by use: the copy ran on its own layer.
			if out2, err := exec.Command("qemu-img", "info", "--output=json", "--", img).Output(); err != nil || string(out2) != string(out) {
				t.Fatalf("using the export changed %s: %v\n%s\n%s", img, err, out, out2)
			}
		})
	}
	h.must("destroy", "--yes")
	h.assertNothingLeft()
}
