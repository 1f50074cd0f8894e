package hostcheck

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func acl(entries ...aclEntry) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

func TestMayExecute(t *testing.T) {
	qemu := Identity{Name: "libvirt-qemu", UID: 64055, GIDs: []uint32{107, 64055}}
	home := func(mode fs.FileMode, entries ...aclEntry) fileInfo {
		fi := fileInfo{mode: fs.ModeDir | mode, uid: 1001, gid: 1001}
		if len(entries) > 0 {
			var err error
			if fi.acl, err = parseACL(acl(entries...)); err != nil {
				t.Fatal(err)
			}
		}
		return fi
	}
	base := []aclEntry{{aclUserObj, 7, 0}, {aclGroupObj, 0, 0}, {aclOther, 0, 0}}
	tests := []struct {
		name string
		fi   fileInfo
		id   Identity
		want bool
	}{
		{"0700 home", home(0o700), qemu, false},
		{"0711 home", home(0o711), qemu, true},
		{"0750 home, qemu not in group", home(0o750), qemu, false},
		{"0710 home, qemu in its group", fileInfo{mode: fs.ModeDir | 0o710, uid: 1001, gid: 107}, qemu, true},
		{"owner bits for the owner", home(0o700), Identity{UID: 1001, GIDs: []uint32{1001}}, true},
		{"root enters anything", home(0o000), Identity{UID: 0}, true},
		{"acl names qemu", home(0o700, append(base, aclEntry{aclUser, 1, 64055}, aclEntry{aclMask, 1, 0})...), qemu, true},
		{"acl names qemu, mask takes x away", home(0o700, append(base, aclEntry{aclUser, 1, 64055}, aclEntry{aclMask, 0, 0})...), qemu, false},
		{"acl names another user", home(0o700, append(base, aclEntry{aclUser, 1, 5}, aclEntry{aclMask, 1, 0})...), qemu, false},
		{"acl group of qemu", home(0o700, append(base, aclEntry{aclGroup, 1, 107}, aclEntry{aclMask, 1, 0})...), qemu, true},
		{"acl other x", home(0o701, aclEntry{aclUserObj, 7, 0}, aclEntry{aclGroupObj, 0, 0}, aclEntry{aclUser, 0, 5}, aclEntry{aclMask, 0, 0}, aclEntry{aclOther, 1, 0}), qemu, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mayExecute(tt.fi, tt.id); got != tt.want {
				t.Fatalf("mayExecute = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseACLRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, {1, 0, 0, 0}, append(acl(aclEntry{aclOther, 1, 0}), 9)} {
		if _, err := parseACL(b); err == nil {
			t.Errorf("parseACL(%v): no error", b)
		}
	}
}

// TestReachNamesTheBlockingFolder: the first folder qemu cannot enter is
// named with both fixes; folders that do not exist yet are lago's to make.
func TestReachNamesTheBlockingFolder(t *testing.T) {
	qemu := Identity{Name: "libvirt-qemu", UID: 64055, GIDs: []uint32{107}}
	dirs := map[string]fileInfo{
		"/":                 {mode: fs.ModeDir | 0o755},
		"/home":             {mode: fs.ModeDir | 0o755},
		"/home/alice":       {mode: fs.ModeDir | 0o700, uid: 1001, gid: 1001},
		"/home/alice/work":  {mode: fs.ModeDir | 0o755, uid: 1001, gid: 1001},
		"/srv":              {mode: fs.ModeDir | 0o755},
		"/srv/lago":         {mode: fs.ModeDir | 0o711},
		"/srv/lago/envfile": {mode: 0o644},
	}
	old := statFunc
	t.Cleanup(func() { statFunc = old })
	statFunc = func(p string) (fileInfo, error) {
		if fi, ok := dirs[p]; ok {
			return fi, nil
		}
		return fileInfo{}, fs.ErrNotExist
	}
	r := Reach("qemu reaches the workdir", "/home/alice/work/.lago", qemu)
	if r.OK || !strings.Contains(r.Detail, "/home/alice ") || !strings.Contains(r.Fix, "chmod o+x /home/alice") ||
		!strings.Contains(r.Fix, "setfacl -m u:libvirt-qemu:x /home/alice") {
		t.Fatalf("blocked home: %+v", r)
	}
	if r := Reach("x", "/srv/lago/new/deeper/.lago", qemu); !r.OK {
		t.Fatalf("missing folders below a traversable one: %+v", r)
	}
	if r := Reach("x", "/srv/lago/envfile/x", qemu); r.OK {
		t.Fatalf("a file on the path: %+v", r)
	}
}

func TestLocalSocket(t *testing.T) {
	tests := []struct {
		uri   string
		local bool
		sock  string
	}{
		{"qemu:///system", true, ""},
		{"", true, ""},
		{"qemu+unix:///system?socket=/tmp/s", true, "/tmp/s"},
		{"qemu:///session", false, ""},
		{"qemu+tcp://127.0.0.1:16509/system", false, ""},
		{"qemu+ssh://root@host/system", false, ""},
	}
	for _, tt := range tests {
		sock, local := LocalSocket(tt.uri)
		if local != tt.local || (tt.sock != "" && sock != tt.sock) || (local && !strings.HasSuffix(sock, "-sock") && tt.sock == "") {
			t.Errorf("LocalSocket(%q) = %q, %v", tt.uri, sock, local)
		}
	}
}

func TestLibvirtSocket(t *testing.T) {
	dir := t.TempDir()
	sock := fakeDaemon(t, []uint32{authNone}, "")
	if r := LibvirtSocket("qemu+unix:///system?socket=" + sock); !r.OK {
		t.Fatalf("listening socket: %+v", r)
	}
	missing := filepath.Join(dir, "none")
	r := LibvirtSocket("qemu+unix:///system?socket=" + missing)
	if r.OK || !strings.Contains(r.Detail, missing) || !strings.Contains(r.Fix, "start") {
		t.Fatalf("missing socket: %+v", r)
	}
	if r := LibvirtSocket("qemu+tcp://127.0.0.1/system"); !r.OK || !strings.Contains(r.Detail, "not checked") {
		t.Fatalf("remote uri: %+v", r)
	}
}

func TestStoreChecks(t *testing.T) {
	dir := t.TempDir()
	if r := Writable("lease store", filepath.Join(dir, "a", "subnets"), "[lago] lease_dir"); !r.OK || !strings.Contains(r.Detail, "may create it") {
		t.Fatalf("missing store under a writable folder: %+v", r)
	}
	shared := filepath.Join(dir, "shared")
	for _, tt := range []struct {
		mode fs.FileMode
		ok   bool
		fix  string
	}{
		{0o755, false, "chmod 2775"},
		{0o775 | fs.ModeSticky, false, "chmod -t"},
		{0o775, false, "chmod g+s"},
		{0o775 | fs.ModeSetgid, true, ""},
	} {
		if err := mkdirMode(shared, tt.mode); err != nil {
			t.Fatal(err)
		}
		r := Shared("lease store", shared)
		if r.OK != tt.ok || !strings.Contains(r.Fix, tt.fix) {
			t.Errorf("mode %v: %+v", tt.mode, r)
		}
	}
}

func TestFailures(t *testing.T) {
	if err := Failures(Result{OK: true}); err != nil {
		t.Fatal(err)
	}
	err := Failures(Result{OK: true}, Result{Name: "libvirt socket", Detail: "permission denied on /x", Fix: "add bob to group libvirt"})
	var he *Error
	if !errors.As(err, &he) || len(he.Failed) != 1 || !errors.Is(err, ErrHostSetup) {
		t.Fatalf("Failures: %v", err)
	}
	if msg := err.Error(); strings.Count(msg, "add bob to group libvirt") != 1 || !strings.Contains(msg, "nothing was created") {
		t.Fatalf("message: %s", msg)
	}
}

func mkdirMode(dir string, mode fs.FileMode) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.Chmod(dir, mode)
}

// A workdir linked out of a closed home is reached through the link's
// target, as qemu opens the disks by the path init resolved.
func TestReachFollowsLinksOutOfAClosedHome(t *testing.T) {
	top := t.TempDir()
	for _, d := range []string{filepath.Dir(top), top} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	home := filepath.Join(top, "home")
	data := filepath.Join(top, "data")
	for _, d := range []string{home, data} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(data, filepath.Join(home, "proj")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(home, "inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	// Another user, in none of the folders' groups.
	q := Identity{Name: "qemu-test", UID: 54321, GIDs: []uint32{54321}}
	if r := Reach("workdir", filepath.Join(home, "proj", ".lago"), q); !r.OK {
		t.Errorf("through the link: %+v, want OK (qemu opens %s)", r, data)
	}
	if r := Reach("workdir", filepath.Join(home, "inside", ".lago"), q); r.OK || !strings.Contains(r.Detail, home) {
		t.Errorf("inside the closed home: %+v, want a failure naming %s", r, home)
	}
}
