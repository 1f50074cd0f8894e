package env

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lago-go/lago/core/env/envtest"
	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/spec"
	"github.com/lago-go/lago/sdk"
)

// collectFixture is a running prefix whose vm0 has artifacts under guest
// (this machine stands in for the guests): two files, a folder, a file
// inside that folder (nested artifacts) and a missing path; vm1 has none;
// vm2 has one file.
func collectFixture(t *testing.T, hold time.Duration) (f *fixture, c *connSSH, guest string) {
	t.Helper()
	guest = t.TempDir()
	mustWrite(t, filepath.Join(guest, "a.log"), "A")
	mustMkdir(t, filepath.Join(guest, "logs", "sub"))
	mustWrite(t, filepath.Join(guest, "logs", "sub", "b.log"), "B")
	mustWrite(t, filepath.Join(guest, "c.txt"), "C")
	f = &fixture{t: t, dir: t.TempDir(), ssh: newFakeSSH()}
	f.prefix = filepath.Join(f.dir, "default")
	f.prov = envtest.NewProvider()
	vms := []*spec.VM{testVM(0, "n0"), testVM(1, "n0"), testVM(2, "n0")}
	vms[0].Artifacts = []string{guest + "/a.log", guest + "/logs", guest + "/logs/sub/b.log", guest + "/missing"}
	vms[2].Artifacts = []string{guest + "/c.txt"}
	writePrefix(t, f.prefix, []*spec.Net{testNet("n0", 200, true)}, vms)
	for _, vm := range vms {
		f.prov.SetVMState(testUUID, vm.Name, "running")
	}
	c = &connSSH{hold: hold}
	f.m = New(Options{DefaultProvider: "local"}, Deps{
		Providers: func(context.Context, string) (sdk.Provider, error) { return f.prov, nil },
		SSH:       c,
	})
	return f, c, guest
}

// listTree maps every path under dir to its contents ("/" for a folder).
func listTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			got[rel] = "/"
			return nil
		}
		b, err := os.ReadFile(p)
		got[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func mapped(p string) string { return strings.ReplaceAll(p, "/", "_") }

// TestCollect: every VM's artifacts land in DIR/<vm>/ under their paths
// with / replaced by _, all of a VM's in one stream per group of
// non-nested paths, VMs in parallel; a missing path is skipped.
func TestCollect(t *testing.T) {
	f, conns, guest := collectFixture(t, 200*time.Millisecond)
	out := filepath.Join(t.TempDir(), "out")
	res, err := f.m.Collect(context.Background(), f.prefix, out, CollectOptions{})
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	want := map[string]string{
		"vm0/" + mapped(guest+"/a.log"):               "A",
		"vm0/" + mapped(guest+"/logs"):                "/",
		"vm0/" + mapped(guest+"/logs") + "/sub":       "/",
		"vm0/" + mapped(guest+"/logs") + "/sub/b.log": "B",
		"vm0/" + mapped(guest+"/logs/sub/b.log"):      "B",
		"vm1":                                         "/",
		"vm0":                                         "/",
		"vm2":                                         "/",
		"vm2/" + mapped(guest+"/c.txt"):               "C",
	}
	got := listTree(t, out)
	for k, v := range want {
		if got[filepath.FromSlash(k)] != v {
			t.Errorf("%s = %q, want %q", k, got[filepath.FromSlash(k)], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("collected %d paths, want %d: %v", len(got), len(want), got)
	}
	if len(res) != 3 || res[0].VM != "vm0" || len(res[0].Collected) != 3 || res[0].Files != 3 ||
		len(res[0].Skipped) != 1 || res[0].Skipped[0] != guest+"/missing" || res[2].Files != 1 || res[1].Files != 0 {
		t.Errorf("results = %+v", res)
	}
	// vm0: a probe, one stream for a.log and logs, another for the
	// nested logs/sub/b.log.
	if conns.conns["vm0"] != 1 || conns.runs["vm0"] != 3 || conns.runs["vm2"] != 2 {
		t.Errorf("connections %v, commands %v", conns.conns, conns.runs)
	}
	if conns.maxOpen < 2 {
		t.Errorf("at most %d VMs collected at once, want them in parallel", conns.maxOpen)
	}
}

// TestCollectNoSkip: with NoSkip a missing artifact is the user's error
// naming the VM and the path; the other artifacts are still collected.
func TestCollectNoSkip(t *testing.T) {
	f, _, guest := collectFixture(t, 0)
	out := filepath.Join(t.TempDir(), "out")
	res, err := f.m.Collect(context.Background(), f.prefix, out, CollectOptions{NoSkip: true})
	var pe *PathError
	if !errors.As(err, &pe) || pe.VM != "vm0" || pe.Path != guest+"/missing" || !errors.Is(err, ErrNoSuchPath) || !errs.IsUser(err) {
		t.Fatalf("Collect = %v, want a PathError for vm0's missing path", err)
	}
	if !strings.Contains(err.Error(), "vm0") || !strings.Contains(err.Error(), guest+"/missing") {
		t.Errorf("%q does not name the VM and the path", err)
	}
	if res[0].Files != 3 || res[2].Files != 1 {
		t.Errorf("results = %+v", res)
	}
}

// TestCollectTwice: an existing output folder is renamed with a timestamp
// suffix (no ":"), a second rename in the same second gets -2.
func TestCollectTwice(t *testing.T) {
	f, _, _ := collectFixture(t, 0)
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	now := func() time.Time { return time.Date(2024, 5, 6, 7, 8, 9, 0, time.Local) }
	for i := 0; i < 3; i++ {
		if _, err := f.m.Collect(context.Background(), f.prefix, out, CollectOptions{Now: now}); err != nil {
			t.Fatalf("Collect %d: %v", i, err)
		}
	}
	ents, _ := os.ReadDir(parent)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
		if _, err := os.Stat(filepath.Join(parent, e.Name(), "vm2")); err != nil {
			t.Errorf("%s: %v", e.Name(), err)
		}
	}
	sort.Strings(names)
	want := []string{"out", "out.2024-05-06T07-08-09", "out.2024-05-06T07-08-09-2"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("folders %q, want %q", names, want)
	}
}

// TestCollectBadArtifacts: artifacts that would share a name or cannot be
// one are refused before anything is touched.
func TestCollectBadArtifacts(t *testing.T) {
	tests := []struct {
		name      string
		artifacts []string
		want      string
	}{
		{"shared name", []string{"/a/b", "/a_b"}, "would both be collected as _a_b"},
		{"the whole disk", []string{"/"}, "not a path to collect"},
		{"dot-dot", []string{".."}, "not a path to collect"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			vm := testVM(0, "n0")
			vm.Artifacts = tc.artifacts
			writePrefix(t, f.prefix, []*spec.Net{testNet("n0", 200, true)}, []*spec.VM{vm})
			out := filepath.Join(t.TempDir(), "out")
			mustMkdir(t, out)
			_, err := f.m.Collect(context.Background(), f.prefix, out, CollectOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errs.IsUser(err) {
				t.Fatalf("Collect = %v, want a user error with %q", err, tc.want)
			}
			if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 1 {
				t.Errorf("the output folder was moved or written")
			}
		})
	}
}
