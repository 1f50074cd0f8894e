package env

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lago-go/lago/core/errs"
	lagossh "github.com/lago-go/lago/core/ssh"
	"github.com/lago-go/lago/sdk"
)

// TestCollectStopped: a VM that is not running has its artifacts read from
// its disks by its provider, with the same layout and accounting as over
// ssh, without any ssh connection; a running VM in the same collect goes
// over ssh.
func TestCollectStopped(t *testing.T) {
	for _, state := range []string{"shut off", "down", "crashed"} {
		t.Run(state, func(t *testing.T) {
			f, conns, guest := collectFixture(t, 0)
			f.prov.SetVMState(testUUID, "vm0", state)
			f.prov.SetDiskTree("vm0", "/") // this host stands in for vm0's disks
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
				"vm0":                                         "/", "vm1": "/", "vm2": "/",
				"vm2/" + mapped(guest+"/c.txt"): "C",
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
			r := res[0]
			if !r.FromDisks || len(r.Collected) != 3 || r.Files != 3 || r.Bytes != 3 || len(r.Skipped) != 1 || r.Skipped[0] != guest+"/missing" {
				t.Errorf("vm0 result = %+v", r)
			}
			if res[2].FromDisks || res[2].Files != 1 {
				t.Errorf("vm2 (running) result = %+v", res[2])
			}
			if conns.conns["vm0"] != 0 || conns.conns["vm2"] != 1 {
				t.Errorf("ssh connections %v: vm0 is stopped, vm2 runs", conns.conns)
			}
			// One read for a.log, logs and missing, one for the nested
			// logs/sub/b.log.
			if n := f.prov.Count("ReadFiles", "vm0"); n != 2 {
				t.Errorf("%d ReadFiles for vm0, want 2", n)
			}
			if n := f.prov.Count("ReadFiles", "vm2"); n != 0 {
				t.Errorf("ReadFiles for the running vm2")
			}
		})
	}
}

// TestCollectStoppedNoSkip: a path missing on a stopped VM's disks is the
// same user error naming the VM and the path as on a running one.
func TestCollectStoppedNoSkip(t *testing.T) {
	f, _, guest := collectFixture(t, 0)
	f.prov.SetVMState(testUUID, "vm0", "shut off")
	f.prov.SetDiskTree("vm0", "/")
	res, err := f.m.Collect(context.Background(), f.prefix, filepath.Join(t.TempDir(), "out"), CollectOptions{NoSkip: true})
	var pe *PathError
	if !errors.As(err, &pe) || pe.VM != "vm0" || pe.Path != guest+"/missing" || !errs.IsUser(err) {
		t.Fatalf("Collect = %v, want a PathError for vm0's missing path", err)
	}
	if res[0].Files != 3 || !res[0].FromDisks {
		t.Errorf("vm0 result = %+v", res[0])
	}
}

// TestCollectStoppedHostile: whatever a stopped VM's disks make its
// provider send stays inside DIR/<vm>/: absolute names, "..", a chain of
// symbolic links and names not asked for are refused, nothing is left
// for the refused artifact, and the other VMs are collected.
func TestCollectStoppedHostile(t *testing.T) {
	outside := t.TempDir()
	tests := []struct {
		name    string
		entries []hostileEntry
	}{
		{"absolute name", []hostileEntry{{name: "var/log/", typ: tar.TypeDir}, {name: outside + "/evil", body: "x"}}},
		{"dot-dot", []hostileEntry{{name: "var/log/", typ: tar.TypeDir}, {name: "var/log/../../../../../../" + outside[1:] + "/evil", body: "x"}}},
		{"link chain", []hostileEntry{{name: "var/log/", typ: tar.TypeDir}, {name: "var/log/a", typ: tar.TypeSymlink, link: "."},
			{name: "var/log/a/b", typ: tar.TypeSymlink, link: ".."}, {name: "var/log/b/x", body: "x"}}},
		{"write through a link", []hostileEntry{{name: "var/log/", typ: tar.TypeDir}, {name: "var/log/l", typ: tar.TypeSymlink, link: outside},
			{name: "var/log/l/evil", body: "x"}}},
		{"not asked for", []hostileEntry{{name: "var/log/", typ: tar.TypeDir}, {name: "etc/cron.d/evil", body: "x"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, _, _ := collectFixture(t, 0)
			e, err := f.m.Load(f.prefix)
			if err != nil {
				t.Fatal(err)
			}
			e.VM("vm0").Artifacts = []string{"/var/log"}
			writePrefix(t, f.prefix, e.Nets, e.VMs)
			f.prov.SetVMState(testUUID, "vm0", "shut off")
			f.prov.SetDiskStream("vm0", hostileTar(t, tc.entries))
			out := filepath.Join(t.TempDir(), "out")
			res, err := f.m.Collect(context.Background(), f.prefix, out, CollectOptions{})
			if !errors.Is(err, lagossh.ErrUnsafeEntry) || !errors.Is(res[0].Err, lagossh.ErrUnsafeEntry) {
				t.Fatalf("Collect = %v, want ErrUnsafeEntry for vm0", err)
			}
			if ents, _ := os.ReadDir(filepath.Join(out, "vm0")); len(ents) != 0 {
				t.Errorf("vm0's folder holds %s after a refused stream", ents[0].Name())
			}
			if ents, _ := os.ReadDir(outside); len(ents) != 0 {
				t.Errorf("written outside the output: %s", ents[0].Name())
			}
			if res[2].Err != nil || res[2].Files != 1 {
				t.Errorf("vm2 result = %+v", res[2])
			}
		})
	}
}

// TestCollectStoppedUnsupported: a provider without ReadFiles makes a
// stopped VM's collect a typed user error that says what to do, and the
// other VMs are still collected.
func TestCollectStoppedUnsupported(t *testing.T) {
	f, _, _ := collectFixture(t, 0)
	f.prov.SetVMState(testUUID, "vm0", "shut off")
	f.prov.NotImplemented["ReadFiles"] = true
	res, err := f.m.Collect(context.Background(), f.prefix, filepath.Join(t.TempDir(), "out"), CollectOptions{})
	var nd *NoDiskReadError
	if !errors.As(err, &nd) || nd.VM != "vm0" || !errors.Is(err, ErrVMNotRunning) || !errors.Is(err, sdk.ErrNotImplemented) || !errs.IsUser(err) {
		t.Fatalf("Collect = %v, want a NoDiskReadError for vm0", err)
	}
	if !strings.Contains(err.Error(), "lago start") {
		t.Errorf("%q does not say what to do", err)
	}
	if res[2].Err != nil || res[2].Files != 1 {
		t.Errorf("vm2 result = %+v", res[2])
	}
}

// TestCollectStoppedProviderFails: a provider that fails (here: the VM
// turned out to be running) fails that VM's artifacts with its error.
func TestCollectStoppedProviderFails(t *testing.T) {
	f, _, _ := collectFixture(t, 0)
	f.prov.SetVMState(testUUID, "vm0", "shut off")
	f.prov.FailOn["ReadFiles vm0"] = errors.New("disk locked")
	res, err := f.m.Collect(context.Background(), f.prefix, filepath.Join(t.TempDir(), "out"), CollectOptions{})
	if err == nil || !strings.Contains(err.Error(), "disk locked") || !strings.Contains(err.Error(), "vm0") {
		t.Fatalf("Collect = %v, want vm0's provider error", err)
	}
	if len(res[0].Collected) != 0 || res[0].Err == nil {
		t.Errorf("vm0 result = %+v", res[0])
	}
}

type hostileEntry struct {
	name, link, body string
	typ              byte
}

func hostileTar(t *testing.T, entries []hostileEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: typ, Mode: 0o644, Format: tar.FormatGNU}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
