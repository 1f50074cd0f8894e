package env

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"

	"github.com/lago-go/lago/core/env/envtest"
	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/initfile"
	"github.com/lago-go/lago/core/spec"
	"github.com/lago-go/lago/sdk"
)

// exportProvider is the envtest fake with an Export that writes each
// non-iso disk's image as a provider would: dst/<file name of its path>.
type exportProvider struct {
	*envtest.Provider
	mu   sync.Mutex
	reqs []*providerv1.ExportRequest
	// fail makes the export of that VM fail after writing its images.
	fail string
}

func (p *exportProvider) Export(ctx context.Context, req *providerv1.ExportRequest) ([]string, error) {
	if _, err := p.Provider.Export(ctx, req); err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.reqs = append(p.reqs, req)
	p.mu.Unlock()
	var paths []string
	for _, d := range req.GetVm().GetDisks() {
		if d.GetType() == spec.DiskISO {
			continue
		}
		out := filepath.Join(req.GetDstDir(), filepath.Base(d.GetPath()))
		if err := os.WriteFile(out, []byte("image of "+d.GetPath()), 0o644); err != nil {
			return paths, err
		}
		paths = append(paths, out)
	}
	if req.GetVm().GetName() == p.fail {
		return paths, errBoom
	}
	return paths, nil
}

// exportFixture is newFixture's environment with a template image on
// disk behind every VM's root disk, vm2 also with an empty and an iso
// disk, and a provider that exports.
func exportFixture(t *testing.T) (*fixture, *exportProvider, string) {
	t.Helper()
	f := newFixture(t)
	tpl := filepath.Join(f.dir, "store", "repo:tiny:v1")
	mustMkdir(t, filepath.Dir(tpl))
	// 3 MiB with data only in the middle MiB: the copy must keep holes.
	b := make([]byte, 3<<20)
	copy(b[1<<20:], "template data")
	mustWrite(t, tpl, string(b))
	e, err := f.m.Load(f.prefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, vm := range e.VMs {
		vm.Disks[0].TemplateImage = &spec.TemplateImage{Path: tpl, Key: "repo:tiny:v1", Format: "qcow2"}
		vm.Disks[0].Metadata = map[string]any{"distro": "el7"}
		vm.Disks[0].Build = []spec.BuildStep{{Builder: "virt-customize", Options: []spec.BuildOption{{Name: "touch", Values: []string{"/x"}}}}}
		vm.RootPassword = "secret"
		vm.Metadata = map[string]any{"deploy-scripts": []any{"$LAGO_PREFIX_PATH/scripts/a.sh"}, "owner": "qa"}
	}
	vm2 := e.VM("vm2")
	vm2.Disks = append(vm2.Disks,
		spec.Disk{Name: "data", Dev: "vdb", Type: spec.DiskEmpty, Format: "raw", Size: "1G", Path: spec.PrefixPathVar + "/images/vm2_data.raw"},
		spec.Disk{Name: "cd", Dev: "hdc", Type: spec.DiskISO, Format: "raw", Path: "/isos/boot.iso"})
	writePrefix(t, f.prefix, e.Nets, e.VMs)
	p := &exportProvider{Provider: f.prov}
	f.m = New(Options{DefaultProvider: "local"}, Deps{Providers: func(context.Context, string) (sdk.Provider, error) { return p, nil }})
	return f, p, tpl
}

func sha1Hex(b []byte) string {
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func TestExport(t *testing.T) {
	images := []string{"vm0_root.qcow2", "vm1_root.qcow2", "vm2_data.raw", "vm2_root.qcow2"}
	withSidecars := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, n, n+".hash", n+".metadata")
		}
		return out
	}
	tests := []struct {
		name      string
		o         ExportOptions
		needXZ    bool
		wantFiles []string
		wantBase  string
	}{
		{"layered", ExportOptions{}, false,
			append(withSidecars(append([]string{"repo:tiny:v1"}, images...)...), "LagoInitFile"), "./repo:tiny:v1"},
		{"standalone", ExportOptions{Standalone: true, WithoutThreads: true, InitFileName: "Init.json", Format: "json"}, false,
			append(withSidecars(images...), "Init.json"), ""},
		{"standalone compressed", ExportOptions{Standalone: true, Compress: true}, true,
			func() []string {
				var out []string
				for _, n := range images {
					out = append(out, n+".hash", n+".metadata", n+".xz")
				}
				return append(out, "LagoInitFile")
			}(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needXZ {
				if _, err := exec.LookPath("xz"); err != nil {
					t.Skip("xz not installed")
				}
			}
			f, p, tpl := exportFixture(t)
			dst := filepath.Join(f.dir, "export")
			tt.o.DstDir = dst
			res, err := f.m.Export(context.Background(), f.prefix, tt.o)
			if err != nil {
				t.Fatal(err)
			}
			want := append([]string(nil), tt.wantFiles...)
			sort.Strings(want)
			if got := listDir(t, dst); !reflect.DeepEqual(got, want) {
				t.Fatalf("export folder holds\n%v\nwant\n%v", got, want)
			}
			if len(p.reqs) != 3 {
				t.Fatalf("%d provider exports, want 3", len(p.reqs))
			}
			for _, r := range p.reqs {
				if r.GetStandalone() != tt.o.Standalone || r.GetCompress() || r.GetDstDir() != dst {
					t.Fatalf("provider asked %v: want standalone %v, no qcow2 compression, into %s", r, tt.o.Standalone, dst)
				}
			}
			if len(res.Disks) != 4 {
				t.Fatalf("result disks %+v", res.Disks)
			}
			for _, d := range res.Disks {
				content := []byte("image of " + d.Source)
				if d.Hash != sha1Hex(content) {
					t.Fatalf("%s/%s hash %s, want the sha1 of the uncompressed image", d.VM, d.Disk, d.Hash)
				}
				name := filepath.Base(d.Source)
				if h, _ := os.ReadFile(filepath.Join(dst, name+".hash")); string(h) != d.Hash {
					t.Fatalf("%s.hash = %q, want %s", name, h, d.Hash)
				}
				var meta map[string]any
				mb, _ := os.ReadFile(filepath.Join(dst, name+".metadata"))
				if err := json.Unmarshal(mb, &meta); err != nil {
					t.Fatalf("%s.metadata: %v: %s", name, err, mb)
				}
				wantBase := "None"
				if d.Disk == "root" && tt.wantBase != "" {
					wantBase = tt.wantBase
				}
				if meta["sha1"] != d.Hash || meta["name"] != name || meta["size"] != float64(len(content)) || meta["base"] != wantBase {
					t.Fatalf("%s.metadata = %v", name, meta)
				}
				if d.Disk == "root" && meta["distro"] != "el7" {
					t.Fatalf("%s.metadata lost the template's metadata: %v", name, meta)
				}
				if d.Disk == "root" && d.Base != tt.wantBase {
					t.Fatalf("%s base %q, want %q", name, d.Base, tt.wantBase)
				}
				if tt.o.Compress {
					if d.Path != filepath.Join(dst, name+".xz") {
						t.Fatalf("path %s, want the .xz", d.Path)
					}
					out, err := exec.Command("xz", "-dc", "--", d.Path).Output()
					if err != nil || string(out) != string(content) {
						t.Fatalf("xz -dc %s: %v: %q", d.Path, err, out)
					}
				}
			}
			if tt.wantBase != "" {
				// The template copy has the same content, and its holes.
				src, _ := os.ReadFile(tpl)
				cp, _ := os.ReadFile(filepath.Join(dst, "repo:tiny:v1"))
				if string(src) != string(cp) {
					t.Fatal("the template copy differs from the template")
				}
				fi, err := os.Stat(filepath.Join(dst, "repo:tiny:v1"))
				if err != nil {
					t.Fatal(err)
				}
				if used := fi.Sys().(*syscall.Stat_t).Blocks * 512; used >= 3<<20 {
					t.Fatalf("the template copy uses %d bytes: not sparse", used)
				}
			}
			checkExportedInitFile(t, res.InitFile, dst, tt.o.Standalone)
		})
	}
}

// checkExportedInitFile parses the exported init file as init does.
func checkExportedInitFile(t *testing.T, file, dst string, standalone bool) {
	t.Helper()
	cfg, err := initfile.Load(file, initfile.Options{PrefixPath: "/new/prefix", WorkdirPath: "/new", SkipPathChecks: true})
	if err != nil {
		b, _ := os.ReadFile(file)
		t.Fatalf("the exported init file does not load: %v\n%s", err, b)
	}
	if len(cfg.VMs) != 3 || len(cfg.Nets) != 2 {
		t.Fatalf("init file has %d vms, %d nets", len(cfg.VMs), len(cfg.Nets))
	}
	for _, n := range cfg.Nets {
		if n.Gw != "" {
			t.Fatalf("net %s keeps the old subnet %s", n.Name, n.Gw)
		}
	}
	for _, vm := range cfg.VMs {
		if vm.RootPassword != "secret" || vm.Metadata["owner"] != "qa" || vm.Metadata["deploy-scripts"] != nil {
			t.Fatalf("vm %s: root-password %q metadata %v", vm.Name, vm.RootPassword, vm.Metadata)
		}
		for _, nic := range vm.NICs {
			if nic.IP != "" {
				t.Fatalf("vm %s keeps the old address %s", vm.Name, nic.IP)
			}
		}
		root := vm.Disks[0]
		if root.Type != spec.DiskTemplate || root.TemplateType != "qcow2" || root.Path != filepath.Join(dst, vm.Name+"_root.qcow2") || len(root.Build) != 0 {
			t.Fatalf("vm %s root disk %+v", vm.Name, root)
		}
		if vm.Name == "vm2" {
			data, cd := vm.Disks[1], vm.Disks[2]
			if data.Type != spec.DiskFile || !data.MakeACopy || data.Format != "raw" || data.Path != filepath.Join(dst, "vm2_data.raw") {
				t.Fatalf("vm2 empty disk became %+v", data)
			}
			if cd.Type != spec.DiskISO || cd.Path != "/isos/boot.iso" {
				t.Fatalf("vm2 iso disk became %+v", cd)
			}
		}
	}
}

func TestExportRefusesRunningVMs(t *testing.T) {
	f, p, _ := exportFixture(t)
	f.prov.SetVMState(testUUID, "vm1", "running")
	f.prov.SetVMState(testUUID, "vm2", "paused")
	dst := filepath.Join(f.dir, "export")
	for _, o := range []ExportOptions{{DstDir: dst}, {DstDir: dst, CollectOnly: true}} {
		_, err := f.m.Export(context.Background(), f.prefix, o)
		var nerr *VMsNotOffError
		if !errors.As(err, &nerr) || !errors.Is(err, ErrVMsNotOff) || !errs.IsUser(err) {
			t.Fatalf("err %v, want a user VMsNotOffError", err)
		}
		if !reflect.DeepEqual(nerr.VMs, []string{"vm1 (running)", "vm2 (paused)"}) || !strings.Contains(err.Error(), "vm1 (running), vm2 (paused)") {
			t.Fatalf("error names %v: %v", nerr.VMs, err)
		}
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) || len(p.reqs) != 0 {
		t.Fatalf("a refused export wrote something: %v, %d provider calls", err, len(p.reqs))
	}
	// Only the selected VMs must be off.
	if _, err := f.m.Export(context.Background(), f.prefix, ExportOptions{DstDir: dst, VMs: []string{"vm0"}}); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, dst); !reflect.DeepEqual(got, []string{"LagoInitFile", "repo:tiny:v1", "repo:tiny:v1.hash", "repo:tiny:v1.metadata", "vm0_root.qcow2", "vm0_root.qcow2.hash", "vm0_root.qcow2.metadata"}) {
		t.Fatalf("export of vm0 wrote %v", got)
	}
}

func TestExportCollectOnly(t *testing.T) {
	f, p, _ := exportFixture(t)
	dst := filepath.Join(f.dir, "export")
	res, err := f.m.Export(context.Background(), f.prefix, ExportOptions{DstDir: dst, CollectOnly: true, VMs: []string{"vm2"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []ExportedDisk{
		{VM: "vm2", Disk: "root", Source: filepath.Join(f.prefix, "images", "vm2_root.qcow2")},
		{VM: "vm2", Disk: "data", Source: filepath.Join(f.prefix, "images", "vm2_data.raw")},
	}
	if !reflect.DeepEqual(res.Disks, want) || res.InitFile != "" {
		t.Fatalf("collect-only gave %+v", res)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) || len(p.reqs) != 0 {
		t.Fatalf("collect-only wrote something: %v, %d provider calls", err, len(p.reqs))
	}
}

func TestExportFailureRemovesWhatItWrote(t *testing.T) {
	f, p, _ := exportFixture(t)
	p.fail = "vm1"
	dst := filepath.Join(f.dir, "export")
	mustMkdir(t, dst)
	mustWrite(t, filepath.Join(dst, "mine.txt"), "the user's")
	_, err := f.m.Export(context.Background(), f.prefix, ExportOptions{DstDir: dst})
	if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), "vm1") {
		t.Fatalf("err %v, want the provider's, naming vm1", err)
	}
	if got := listDir(t, dst); !reflect.DeepEqual(got, []string{"mine.txt"}) {
		t.Fatalf("a failed export left %v", got)
	}
}

func TestExportBadOptions(t *testing.T) {
	f, _, _ := exportFixture(t)
	tests := []struct {
		name string
		o    ExportOptions
		want string
	}{
		{"init file path", ExportOptions{InitFileName: "../x"}, "must be a file name"},
		{"format", ExportOptions{Format: "toml"}, "want yaml or json"},
		{"name clash", ExportOptions{InitFileName: "vm0_root.qcow2"}, "would both be written as vm0_root.qcow2"},
		{"unknown vm", ExportOptions{VMs: []string{"nope"}}, `no vm named "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.DstDir = filepath.Join(f.dir, "export")
			_, err := f.m.Export(context.Background(), f.prefix, tt.o)
			if err == nil || !errs.IsUser(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want a user error with %q", err, tt.want)
			}
		})
	}
}
