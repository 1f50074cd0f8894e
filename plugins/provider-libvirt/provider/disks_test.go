package provider

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	"libvirt.org/go/libvirtxml"
)

func needQemuImg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		skipOrFail(t, "qemu-img not installed: install qemu-utils to run disk tests")
	}
}

type fullInfo struct {
	Format          string `json:"format"`
	VirtualSize     int64  `json:"virtual-size"`
	BackingFilename string `json:"backing-filename"`
	BackingFormat   string `json:"backing-filename-format"`
}

func info(t *testing.T, path string) fullInfo {
	t.Helper()
	out, err := exec.Command("qemu-img", "info", "--output=json", path).Output()
	if err != nil {
		t.Fatalf("qemu-img info %s: %v", path, err)
	}
	var i fullInfo
	if err := json.Unmarshal(out, &i); err != nil {
		t.Fatal(err)
	}
	return i
}

func mkImage(t *testing.T, path, format, size string) {
	t.Helper()
	if out, err := exec.Command("qemu-img", "create", "-f", format, path, size).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
}

func TestPrepareDisksLocal(t *testing.T) {
	needQemuImg(t)
	dir := t.TempDir()
	tpl := filepath.Join(dir, "store", "repo:el:v1")
	if err := os.MkdirAll(filepath.Dir(tpl), 0o755); err != nil {
		t.Fatal(err)
	}
	mkImage(t, tpl, "raw", "16M")
	src := filepath.Join(dir, "src.qcow2")
	mkImage(t, src, "qcow2", "8M")
	img := filepath.Join(dir, "prefix", "images")
	vm := &providerv1.VM{Name: "vm0", Disks: []*providerv1.Disk{
		{Name: "root", Dev: "vda", Type: "template", Path: filepath.Join(img, "vm0_root.qcow2"), TemplatePath: tpl, TemplateFormat: "raw"},
		{Name: "auto", Dev: "vdb", Type: "template", Path: filepath.Join(img, "vm0_auto.qcow2"), TemplatePath: tpl},
		{Name: "data", Dev: "vdc", Type: "empty", Path: filepath.Join(img, "vm0_data.qcow2"), SizeBytes: 32 << 20},
		{Name: "copy", Dev: "vdd", Type: "file", Format: "qcow2", Path: filepath.Join(img, "vm0_copy.qcow2"), SourcePath: src, MakeACopy: true},
		{Name: "inplace", Dev: "vde", Type: "file", Format: "qcow2", SourcePath: src},
		{Name: "cd", Dev: "hdc", Type: "iso", SourcePath: "/isos/x.iso"},
	}}
	p := newTestProvider(t, newFakeConn(), qemuCfg(), nil)
	got, err := p.PrepareDisks(ctx, testEnv, vm)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ path, format string }{
		{vm.Disks[0].Path, "qcow2"}, {vm.Disks[1].Path, "qcow2"}, {vm.Disks[2].Path, "qcow2"},
		{vm.Disks[3].Path, "qcow2"}, {src, "qcow2"}, {"/isos/x.iso", "raw"},
	}
	for i, w := range want {
		if got[i].Name != vm.Disks[i].Name || got[i].Path != w.path || got[i].Format != w.format {
			t.Errorf("disk %d = %+v, want %+v", i, got[i], w)
		}
	}
	for _, i := range []int{0, 1} {
		ov := info(t, vm.Disks[i].Path)
		if ov.Format != "qcow2" || ov.BackingFilename != tpl || ov.BackingFormat != "raw" || ov.VirtualSize != 16<<20 {
			t.Errorf("overlay %d info %+v: want qcow2 on %s with explicit backing format raw", i, ov, tpl)
		}
	}
	if e := info(t, vm.Disks[2].Path); e.Format != "qcow2" || e.VirtualSize != 32<<20 {
		t.Errorf("empty disk %+v", e)
	}
	if c := info(t, vm.Disks[3].Path); c.Format != "qcow2" || c.VirtualSize != 8<<20 {
		t.Errorf("copied disk %+v", c)
	}
	// A second run keeps the existing disks (it must not wipe a VM's data).
	if err := os.WriteFile(vm.Disks[2].Path+".marker", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(vm.Disks[0].Path)
	if _, err := p.PrepareDisks(ctx, testEnv, vm); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(vm.Disks[0].Path)
	if !before.ModTime().Equal(after.ModTime()) {
		t.Error("second PrepareDisks rewrote the overlay")
	}
}

func TestPrepareDisksLocalErrors(t *testing.T) {
	needQemuImg(t)
	dir := t.TempDir()
	tests := []struct {
		name string
		disk *providerv1.Disk
		want string
	}{
		{"missing template", &providerv1.Disk{Name: "root", Type: "template", Path: filepath.Join(dir, "a.qcow2"), TemplatePath: filepath.Join(dir, "nope"), TemplateFormat: "raw"}, "disk 'root': cannot prepare"},
		{"empty without size", &providerv1.Disk{Name: "e", Type: "empty", Path: filepath.Join(dir, "e.qcow2")}, "needs a size"},
		{"file without source", &providerv1.Disk{Name: "f", Type: "file", Path: filepath.Join(dir, "f")}, "no source path"},
	}
	p := newTestProvider(t, newFakeConn(), qemuCfg(), nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.PrepareDisks(ctx, testEnv, &providerv1.VM{Name: "vm0", Disks: []*providerv1.Disk{tt.disk}})
			wantDiag(t, err, tt.want)
		})
	}
}

func TestPrepareDisksRemote(t *testing.T) {
	needQemuImg(t)
	dir := t.TempDir()
	tpl := filepath.Join(dir, "repo:el:v1")
	mkImage(t, tpl, "qcow2", "16M")
	iso := filepath.Join(dir, "x.iso")
	if err := os.WriteFile(iso, []byte("iso bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	fc := newFakeConn()
	p := newTestProvider(t, fc, map[string]string{SettingDomainType: "qemu", SettingURL: "qemu+tcp://127.0.0.1:1/system"}, nil)
	mkVM := func(name string) *providerv1.VM {
		return &providerv1.VM{Name: name, MemoryMib: 256, Disks: []*providerv1.Disk{
			{Name: "root", Dev: "vda", Type: "template", Path: filepath.Join(dir, "images", name+"_root.qcow2"),
				TemplatePath: tpl, TemplateFormat: "qcow2", TemplateKey: "repo:el:v1", TemplateHash: "0123456789abcdef0123"},
			{Name: "data", Dev: "vdb", Type: "empty", SizeBytes: 1 << 30, Path: filepath.Join(dir, "images", name+"_data.qcow2")},
			{Name: "cd", Dev: "hdc", Type: "iso", SourcePath: iso},
		}}
	}
	tname := "lago-template-repo_el_v1-0123456789ab.qcow2"
	pool := func() *fakePool { return fc.pools["lago"] }
	for _, name := range []string{"vm0", "vm1"} {
		vm := mkVM(name)
		got, err := p.PrepareDisks(ctx, testEnv, vm)
		if err != nil {
			t.Fatal(err)
		}
		// Staged locally, so the core can build and bootstrap the disks.
		if got[0].Path != vm.Disks[0].Path || got[0].Format != "qcow2" || got[2].Path != iso {
			t.Fatalf("prepared %+v", got)
		}
		if i := info(t, got[0].Path); i.BackingFilename != tpl || i.BackingFormat != "qcow2" {
			t.Fatalf("local overlay %+v", i)
		}
		for v := range pool().vols {
			if strings.Contains(v, "-"+name+"-") {
				t.Fatalf("volume %s exists before StartVM", v)
			}
		}
		for i := 0; i < 2; i++ { // pushing happens once
			if err := p.StartVM(ctx, testEnv, vm); err != nil {
				t.Fatal(err)
			}
			if err := p.StopVM(ctx, testEnv, vm); err != nil {
				t.Fatal(err)
			}
		}
	}
	calls := strings.Join(fc.Calls(), "\n")
	if !strings.Contains(calls, "DefinePool lago dir "+DefaultPoolPath) {
		t.Fatalf("pool not created:\n%s", calls)
	}
	if n := strings.Count(calls, "UploadVolume lago/"+tname); n != 1 {
		t.Fatalf("template uploaded %d times, want once per host:\n%s", n, calls)
	}
	if n := strings.Count(calls, "UploadVolume lago/lago-"+testUUID+"-vm0-root.qcow2"); n != 1 {
		t.Fatalf("vm0 root pushed %d times, want once:\n%s", n, calls)
	}
	want, _ := os.ReadFile(tpl)
	if !bytes.Equal(pool().vols[tname].data, want) {
		t.Fatal("uploaded template differs from the local file")
	}
	// The pushed overlay is qcow2 and backed by the template volume's path
	// on the host, not by the client's file.
	pushed := filepath.Join(dir, "pushed.qcow2")
	if err := os.WriteFile(pushed, pool().vols["lago-"+testUUID+"-vm0-root.qcow2"].data, 0o644); err != nil {
		t.Fatal(err)
	}
	if i := info(t, pushed); i.Format != "qcow2" || i.BackingFilename != "/pool/lago/"+tname || i.BackingFormat != "qcow2" {
		t.Fatalf("pushed overlay %+v", i)
	}
	if string(pool().vols["lago-"+testUUID+"-vm0-cd.raw"].data) != "iso bytes" {
		t.Fatal("iso not uploaded")
	}
	if _, err := os.Stat(filepath.Join(dir, "images", ".vm0_root.qcow2.upload")); !os.IsNotExist(err) {
		t.Fatalf("temporary upload copy left behind: %v", err)
	}
	// The domain uses the volumes.
	var dom libvirtxml.Domain
	if err := dom.Unmarshal(fc.doms["1a2b3c4d-vm0"].xml); err != nil {
		t.Fatal(err)
	}
	if v := dom.Devices.Disks[0].Source.Volume; v == nil || v.Pool != "lago" || v.Volume != "lago-"+testUUID+"-vm0-root.qcow2" {
		t.Fatalf("domain disk source %+v", dom.Devices.Disks[0].Source)
	}
	// ListOwned finds the disk volumes (not the shared template) and
	// RemoveOwned deletes them.
	owned, err := p.ListOwned(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vols := 0
	for _, r := range owned {
		if r.Kind == KindVolume {
			vols++
			if r.OwnerUuid != testUUID || r.OwnerPrefix != testEnv.PrefixPath {
				t.Fatalf("volume %+v", r)
			}
		}
	}
	if vols != 6 {
		t.Fatalf("%d owned volumes, want 6: %v", vols, owned)
	}
	if err := p.RemoveOwned(ctx, testEnv, nil); err != nil {
		t.Fatal(err)
	}
	if len(pool().vols) != 1 || pool().vols[tname] == nil {
		t.Fatalf("volumes left: %v (want only the shared template)", pool().vols)
	}
}

func TestExportLocal(t *testing.T) {
	needQemuImg(t)
	dir := t.TempDir()
	// A store template's name has colons, which qemu reads as a protocol
	// unless the backing name starts with "./".
	tpl := filepath.Join(dir, "store", "repo:el:v1")
	if err := os.MkdirAll(filepath.Dir(tpl), 0o755); err != nil {
		t.Fatal(err)
	}
	mkImage(t, tpl, "raw", "8M")
	vm := &providerv1.VM{Name: "vm0", Disks: []*providerv1.Disk{
		{Name: "root", Dev: "vda", Type: "template", Path: filepath.Join(dir, "vm0_root.qcow2"), TemplatePath: tpl, TemplateFormat: "raw"},
		{Name: "cd", Dev: "hdc", Type: "iso", SourcePath: "/isos/x.iso"},
		{Name: "data", Dev: "vdb", Type: "empty", Format: "raw", SizeBytes: 4 << 20, Path: filepath.Join(dir, "vm0_data.raw")},
	}}
	fc := newFakeConn()
	p := newTestProvider(t, fc, qemuCfg(), nil)
	if _, err := p.PrepareDisks(ctx, testEnv, vm); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		standalone bool
		compress   bool
		backing    string
	}{
		{"layered", false, false, "./repo:el:v1"},
		{"standalone", true, false, ""},
		{"standalone compressed", true, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "out")
			paths, err := p.Export(ctx, &providerv1.ExportRequest{Env: testEnv, Vm: vm, DstDir: dst, Standalone: tt.standalone, Compress: tt.compress})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{filepath.Join(dst, "vm0_root.qcow2"), filepath.Join(dst, "vm0_data.raw")}
			if !reflect.DeepEqual(paths, want) {
				t.Fatalf("paths %v, want %v (the iso is not exported)", paths, want)
			}
			i := info(t, paths[0])
			if i.Format != "qcow2" || i.BackingFilename != tt.backing || i.VirtualSize != 8<<20 {
				t.Fatalf("exported %+v, want backing %q", i, tt.backing)
			}
			if d := info(t, paths[1]); d.Format != "raw" || d.VirtualSize != 4<<20 {
				t.Fatalf("exported empty disk %+v, want raw of 4 MiB", d)
			}
			if tt.backing != "" {
				// With the template beside it (the core copies it there)
				// the whole chain opens.
				if err := os.Link(tpl, filepath.Join(dst, "repo:el:v1")); err != nil {
					t.Fatal(err)
				}
				if out, err := exec.Command("qemu-img", "info", "--backing-chain", "--", paths[0]).CombinedOutput(); err != nil {
					t.Fatalf("exported chain does not open: %v: %s", err, out)
				}
			}
		})
	}
	fc.doms["1a2b3c4d-vm0"] = &fakeDom{state: DomainRunning}
	_, err := p.Export(ctx, &providerv1.ExportRequest{Env: testEnv, Vm: vm, DstDir: dir})
	wantDiag(t, err, "export needs the VM off")
}
