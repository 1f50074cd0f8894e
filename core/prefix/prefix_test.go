package prefix

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/lago-go/lago/core/spec"
)

// copyTree copies src into dst keeping symlinks as symlinks.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		default:
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, 0o644)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// originalWorkdir returns a copy of a workdir laid out as the original
// Lago writes it, and the path of a folder deep inside the project.
func originalWorkdir(t *testing.T) (project, deep string) {
	t.Helper()
	project = t.TempDir()
	copyTree(t, "testdata/original", project)
	deep = filepath.Join(project, "src", "pkg")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	return project, deep
}

func TestReadOriginalWorkdir(t *testing.T) {
	project, deep := originalWorkdir(t)
	p, err := Find(FindOptions{Cwd: deep})
	if err != nil {
		t.Fatal(err)
	}
	wd := filepath.Join(project, ".lago")
	if p.Path != filepath.Join(wd, "default") || p.Name != "default" || p.Workdir == nil || p.Workdir.Path != wd {
		t.Fatalf("found %+v", p)
	}
	if !p.Initialized() {
		t.Error("fixture prefix not initialized")
	}
	if id, err := p.UUID(); err != nil || id != "fe689d3c39d011e5b22b54ee755a00ca" {
		t.Errorf("UUID() = %q, %v", id, err)
	}
	s, err := p.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Nets) != 2 || s.Nets[0].Name != "n0" || s.Nets[1].Type != spec.NetBridge {
		t.Fatalf("nets = %+v", s.Nets)
	}
	n0 := s.Net("n0")
	if n0.Gw != "192.168.201.1" || !n0.Management || n0.DHCP.Start != 100 || n0.Mapping["vm0-n0-0"] != "192.168.201.2" {
		t.Errorf("n0 = %+v", n0)
	}
	vm := s.VM("vm0")
	if vm == nil || vm.Memory != 512 || vm.MgmtNet != "n0" || !reflect.DeepEqual([]string(vm.Groups), []string{"web"}) {
		t.Fatalf("vm0 = %+v", vm)
	}
	if got := p.Expand(vm.Disks[0].Path); got != filepath.Join(p.Path, "images", "vm0_root.qcow2") {
		t.Errorf("disk path = %q", got)
	}
	if got := spec.MACFromIP(vm.NICs[0].IP); got != "54:52:c0:a8:c9:02" {
		t.Errorf("mac = %q", got)
	}
	names, err := p.Workdir.Prefixes()
	if err != nil || !reflect.DeepEqual(names, []string{"default", "other"}) {
		t.Errorf("Prefixes() = %q, %v", names, err)
	}
	// The prefix is found from inside itself and from the workdir too.
	for _, cwd := range []string{p.Path, filepath.Join(p.Path, "virt"), wd} {
		q, err := Find(FindOptions{Cwd: cwd})
		if err != nil || q.Path != p.Path {
			t.Errorf("Find from %s = %+v, %v", cwd, q, err)
		}
	}
}

func TestSetCurrent(t *testing.T) {
	project, deep := originalWorkdir(t)
	w, err := FindWorkdir(FindOptions{Cwd: deep})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SetCurrent("other"); err != nil {
		t.Fatal(err)
	}
	link, err := os.Readlink(filepath.Join(project, ".lago", "current"))
	if err != nil || link != "other" {
		t.Errorf("current -> %q, %v; want the relative link other", link, err)
	}
	p, err := Find(FindOptions{Cwd: deep})
	if err != nil || p.Name != "other" {
		t.Errorf("Find after set-current = %+v, %v", p, err)
	}
	for _, bad := range []string{"missing", "current", "../x", ""} {
		if err := w.SetCurrent(bad); err == nil {
			t.Errorf("SetCurrent(%q) succeeded", bad)
		}
	}
	entries, _ := os.ReadDir(w.Path)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("leftover temporary %s", e.Name())
		}
	}
}

func TestCreatePrefix(t *testing.T) {
	w, err := CreateWorkdir(filepath.Join(t.TempDir(), ".lago"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := w.CreatePrefix(DefaultPrefixName, false, CreateOptions{LagoVersion: "0.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(p.UUIDPath())
	if err != nil || !regexp.MustCompile(`^[0-9a-f]{32}$`).Match(raw) {
		t.Errorf("uuid file = %q, %v", raw, err)
	}
	st, err := os.Stat(p.PrivateKeyPath())
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode = %v, %v", st.Mode(), err)
	}
	privPEM, _ := os.ReadFile(p.PrivateKeyPath())
	signer, err := ssh.ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatalf("ParsePrivateKey: %v", err)
	}
	if signer.PublicKey().Type() != ssh.KeyAlgoRSA {
		t.Errorf("key type %s", signer.PublicKey().Type())
	}
	pubLine, _ := os.ReadFile(p.PublicKeyPath())
	pub, comment, _, _, err := ssh.ParseAuthorizedKey(pubLine)
	if err != nil || !reflect.DeepEqual(pub.Marshal(), signer.PublicKey().Marshal()) || comment != "lago@"+string(raw) {
		t.Errorf("public key does not match: %v %q", err, comment)
	}
	var md map[string]string
	if b, err := os.ReadFile(p.MetadataPath()); err != nil || json.Unmarshal(b, &md) != nil || md["lago_version"] != "0.1.0" {
		t.Errorf("metadata = %v", md)
	}
	for _, d := range []string{"logs", "images", "scripts", "virt"} {
		if st, err := os.Stat(filepath.Join(p.Path, d)); err != nil || !st.IsDir() {
			t.Errorf("missing folder %s", d)
		}
	}
	// Half-made: not initialized, yet found through current and by name.
	if p.Initialized() {
		t.Error("initialized before MarkInitialized")
	}
	for _, name := range []string{"", "current", "default"} {
		q, err := Find(FindOptions{WorkdirPath: w.Path, PrefixName: name})
		if err != nil || q.Path != p.Path || q.Initialized() {
			t.Errorf("Find(prefix %q) = %+v, %v", name, q, err)
		}
	}
	if err := p.MarkInitialized(); err != nil || !p.Initialized() {
		t.Errorf("MarkInitialized: %v", err)
	}
	if err := p.Uninitialize(); err != nil || p.Initialized() {
		t.Errorf("Uninitialize: %v", err)
	}
	if _, err := w.CreatePrefix(DefaultPrefixName, false, CreateOptions{}); err == nil {
		t.Error("second prefix with the same name succeeded")
	}
	empty := filepath.Join(w.Path, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(empty, CreateOptions{}); err == nil {
		t.Error("Create used an existing folder without AllowExistingEmpty")
	}
	if _, err := Create(empty, CreateOptions{AllowExistingEmpty: true}); err != nil {
		t.Errorf("Create in an empty folder: %v", err)
	}
	// A second prefix becomes current only when asked.
	if _, err := w.CreatePrefix("two", false, CreateOptions{KeyType: "ed25519"}); err != nil {
		t.Fatal(err)
	}
	if cur, _ := w.Current(); cur != DefaultPrefixName {
		t.Errorf("current = %q", cur)
	}
	if _, err := w.CreatePrefix("three", true, CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if cur, _ := w.Current(); cur != "three" {
		t.Errorf("current = %q", cur)
	}
}

func TestEd25519Key(t *testing.T) {
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "id_rsa"), filepath.Join(dir, "id_rsa.pub")
	if err := GenerateKeyPair(priv, pub, "ed25519", ""); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(priv)
	s, err := ssh.ParsePrivateKey(b)
	if err != nil || s.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Fatalf("ParsePrivateKey: %v", err)
	}
	if err := GenerateKeyPair(priv, pub, "dsa", ""); err == nil {
		t.Error("dsa accepted")
	}
}

func TestSaveLoad(t *testing.T) {
	p, err := Create(filepath.Join(t.TempDir(), "p"), CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in := &Specs{
		Nets: []spec.Net{{Name: "lago", Type: "nat", Gw: "192.168.200.1", Management: true, Mapping: map[string]string{"vm0": "192.168.200.2"}}},
		VMs: []spec.VM{{Name: "vm0", Memory: 1024, VCPU: 2, MgmtNet: "lago",
			NICs:  []spec.NIC{{Net: "lago", IP: "192.168.200.2", MAC: "54:52:c0:a8:c8:02"}},
			Disks: []spec.Disk{{Name: "root", Dev: "vda", Type: "template", Format: "qcow2", Path: filepath.Join(p.Path, "images", "vm0_root.qcow2")}}}},
	}
	if err := p.Save(in); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(p.VirtPath("vm-vm0"))
	if !strings.Contains(string(raw), "\n    \"name\": \"vm0\"") || !strings.Contains(string(raw), `"path": "$LAGO_PREFIX_PATH/images/vm0_root.qcow2"`) {
		t.Errorf("vm spec not indented by 4 or path not collapsed:\n%s", raw)
	}
	if in.VMs[0].Disks[0].Path[0] != '/' {
		t.Error("Save changed its input")
	}
	out, err := p.Load()
	if err != nil {
		t.Fatal(err)
	}
	want := *in
	want.VMs = append([]spec.VM(nil), in.VMs...)
	want.VMs[0].Disks = []spec.Disk{in.VMs[0].Disks[0]}
	want.VMs[0].Disks[0].Path = "$LAGO_PREFIX_PATH/images/vm0_root.qcow2"
	if !reflect.DeepEqual(out, &want) {
		t.Errorf("Load after Save:\n got %+v\nwant %+v", out, &want)
	}
	// Saving fewer VMs removes the stale spec.
	if err := p.Save(&Specs{Nets: in.Nets}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.VirtPath("vm-vm0")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale vm spec left: %v", err)
	}
	if err := p.Save(&Specs{VMs: []spec.VM{{Name: "../escape"}}}); err == nil {
		t.Error("a VM name with a slash was saved")
	}
}

func TestFind(t *testing.T) {
	root := t.TempDir()
	mk := func(path string) {
		if err := os.MkdirAll(filepath.Join(root, path), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	touch := func(path string) {
		if err := os.WriteFile(filepath.Join(root, path), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// a: a workdir with prefixes default and x; current -> default.
	mk("a/.lago/default")
	mk("a/.lago/x")
	mk("a/deep/er")
	touch("a/.lago/default/initialized")
	if err := os.Symlink("default", filepath.Join(root, "a/.lago/current")); err != nil {
		t.Fatal(err)
	}
	// b: the original's old layout, .lago is the prefix itself.
	mk("b/.lago")
	mk("b/sub")
	touch("b/.lago/initialized")
	// c: nothing.
	mk("c")
	tests := []struct {
		name    string
		opts    FindOptions
		want    string
		wantErr bool
	}{
		{"workdir above", FindOptions{Cwd: "a/deep/er"}, "a/.lago/default", false},
		{"named prefix", FindOptions{Cwd: "a/deep", PrefixName: "x"}, "a/.lago/x", false},
		{"unknown prefix", FindOptions{Cwd: "a", PrefixName: "nope"}, "", true},
		{"workdir path", FindOptions{WorkdirPath: "a/.lago", Cwd: "c"}, "a/.lago/default", false},
		{"prefix path", FindOptions{PrefixPath: "a/.lago/x"}, "a/.lago/x", false},
		{"old layout", FindOptions{Cwd: "b/sub"}, "b/.lago", false},
		{"old layout as workdir path", FindOptions{WorkdirPath: "b/.lago"}, "b/.lago", false},
		{"nothing", FindOptions{Cwd: "c"}, "", true},
		{"bad name", FindOptions{Cwd: "a", PrefixName: "../a"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			for _, f := range []*string{&o.Cwd, &o.WorkdirPath, &o.PrefixPath} {
				if *f != "" {
					*f = filepath.Join(root, *f)
				}
			}
			p, err := Find(o)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("found %+v, want error", p)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Path != filepath.Join(root, tt.want) {
				t.Errorf("found %s, want %s", p.Path, tt.want)
			}
		})
	}
	_, err := Find(FindOptions{Cwd: filepath.Join(root, "c")})
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("error %v is not ErrNotFound", err)
	}
}

func TestRemovePrefix(t *testing.T) {
	project, _ := originalWorkdir(t)
	w, err := OpenWorkdir(filepath.Join(project, ".lago"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.RemovePrefix("current"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(w.Path, "default")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("default still there: %v", err)
	}
	if cur, err := w.Current(); err != nil || cur != "other" {
		t.Errorf("current = %q, %v; want it moved to other", cur, err)
	}
	if err := w.RemovePrefix("other"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(w.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty workdir left: %v", err)
	}
}

func TestRemoveSymlinkedWorkdirAndHalfMade(t *testing.T) {
	root := t.TempDir()
	real := filepath.Join(root, "real")
	w, err := CreateWorkdir(real)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.CreatePrefix("default", true, CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "proj", ".lago")
	os.MkdirAll(filepath.Dir(link), 0o755)
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	// The half-made prefix (no initialized) is found through the link;
	// removing it through the symlinked workdir removes only the link,
	// and the prefix behind it stays whole.
	p, err := Find(FindOptions{Cwd: filepath.Dir(link)})
	if err != nil || p.Initialized() {
		t.Fatalf("Find = %+v, %v", p, err)
	}
	if err := p.Workdir.RemovePrefix(p.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("link left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(real, "default", UUIDFile)); err != nil {
		t.Errorf("the prefix behind the link was removed: %v", err)
	}
	if cur, err := (&Workdir{Path: real}).Current(); err != nil || cur != "default" {
		t.Errorf("the target workdir's current = %q, %v", cur, err)
	}
	// A folder that is no prefix is never deleted.
	other := filepath.Join(root, "precious")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "data"), []byte("x"), 0o644)
	if err := Remove(&Prefix{Path: other}); err == nil {
		t.Error("removed a folder without uuid or initialized")
	}
	if err := Remove(&Prefix{Path: filepath.Join(root, "gone")}); err != nil {
		t.Errorf("removing a missing prefix: %v", err)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	for _, content := range []string{"one", "two"} {
		if err := WriteFileAtomic(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		if string(b) != content {
			t.Errorf("content %q, want %q", b, content)
		}
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("leftover files: %v", entries)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), nil, 0o644); err == nil {
		t.Error("write into a missing folder succeeded")
	}
}

func TestScriptPath(t *testing.T) {
	p := &Prefix{Path: "/w/p"}
	if got := p.ScriptPath("/home/u/deploy.sh"); got != "/w/p/scripts/_home_u_deploy.sh" {
		t.Errorf("ScriptPath = %q", got)
	}
}

// BenchmarkCreate measures making a prefix (dominated by the RSA key).
func BenchmarkCreate(b *testing.B) {
	dir := b.TempDir()
	for i := 0; i < b.N; i++ {
		if _, err := Create(filepath.Join(dir, strconv.Itoa(i)), CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
