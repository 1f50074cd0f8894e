package env

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/lago-go/lago/core/errs"
	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
)

// treeOf lists every file below dir with its size and mode, to check that
// a destroy left a folder exactly as it was.
func treeOf(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel+" "+st.Mode().String()+" "+strconv.FormatInt(st.Size(), 10))
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// envState is what a destroy through a link must leave alone: the target
// prefix's files, its leases and its provider objects.
type envState struct {
	tree   string
	leases int
	owned  int
}

func (f *initFixture) stateOf(prefixDir string) envState {
	f.t.Helper()
	entries, err := f.leases.List(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return envState{tree: treeOf(f.t, prefixDir), leases: len(entries), owned: len(f.prov.Owned(""))}
}

// Destroy through a symlinked workdir or prefix removes only the link:
// the environment behind it keeps its files (uuid, markers, keys, specs,
// disks), its leases and its provider objects, as the original does.
func TestDestroyThroughSymlinkRemovesOnlyTheLink(t *testing.T) {
	tests := []struct {
		name string
		// link makes the link to the initialized prefix target (in the
		// real workdir real) and returns the link to check.
		destroy func(t *testing.T, f *initFixture, realWorkdir string) (link string, err error)
		// keep are paths that must still exist afterwards.
		keep func(f *initFixture, realWorkdir string) []string
	}{
		{
			name: "workdir link, current prefix",
			destroy: func(t *testing.T, f *initFixture, real string) (string, error) {
				link := filepath.Join(f.dir, "proj", ".lago")
				mustMkdir(t, filepath.Dir(link))
				mustSymlink(t, real, link)
				return link, f.m.DestroyInWorkdir(context.Background(), link, "")
			},
		},
		{
			name: "workdir link, named prefix",
			destroy: func(t *testing.T, f *initFixture, real string) (string, error) {
				link := filepath.Join(f.dir, "proj", ".lago")
				mustMkdir(t, filepath.Dir(link))
				mustSymlink(t, real, link)
				return link, f.m.DestroyInWorkdir(context.Background(), link, DefaultPrefixName)
			},
		},
		{
			name: "workdir link, all prefixes",
			destroy: func(t *testing.T, f *initFixture, real string) (string, error) {
				link := filepath.Join(f.dir, "proj", ".lago")
				mustMkdir(t, filepath.Dir(link))
				mustSymlink(t, real, link)
				return link, f.m.DestroyAll(context.Background(), link)
			},
		},
		{
			name: "workdir link without current",
			destroy: func(t *testing.T, f *initFixture, real string) (string, error) {
				link := filepath.Join(f.dir, "proj", ".lago")
				mustMkdir(t, filepath.Dir(link))
				mustSymlink(t, real, link)
				return link, f.m.DestroyUnlinkedWorkdir(context.Background(), link)
			},
		},
		{
			name: "prefix link on its own",
			destroy: func(t *testing.T, f *initFixture, real string) (string, error) {
				link := filepath.Join(f.dir, "prefix-link")
				mustSymlink(t, filepath.Join(real, DefaultPrefixName), link)
				return link, f.m.Destroy(context.Background(), link)
			},
		},
		{
			name: "prefix link in another workdir",
			destroy: func(t *testing.T, f *initFixture, real string) (string, error) {
				other := filepath.Join(f.dir, "other", ".lago")
				mustMkdir(t, other)
				link := filepath.Join(other, "linked")
				mustSymlink(t, filepath.Join(real, DefaultPrefixName), link)
				mustSymlink(t, "linked", filepath.Join(other, CurrentLink))
				return link, f.m.DestroyInWorkdir(context.Background(), other, "")
			},
		},
		{
			name: "prefix link among real prefixes, all prefixes",
			destroy: func(t *testing.T, f *initFixture, real string) (string, error) {
				// The other workdir's own prefix is destroyed; the
				// linked one only unlinked.
				o := f.opts()
				o.Workdir = filepath.Join(f.dir, "other", ".lago")
				if _, err := f.m.Init(context.Background(), o); err != nil {
					t.Fatal(err)
				}
				link := filepath.Join(o.Workdir, "linked")
				mustSymlink(t, filepath.Join(real, DefaultPrefixName), link)
				if err := f.m.DestroyAll(context.Background(), o.Workdir); err != nil {
					return link, err
				}
				if _, err := os.Lstat(o.Workdir); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("the other workdir is still there: %v", err)
				}
				return link, nil
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newInitFixture(t)
			ctx := context.Background()
			// The environment lives in a workdir "on another disk".
			real := filepath.Join(f.dir, "disk2", ".lago")
			o := f.opts()
			o.Workdir = real
			if _, err := f.m.Init(ctx, o); err != nil {
				t.Fatal(err)
			}
			prefixDir := filepath.Join(real, DefaultPrefixName)
			before := f.stateOf(prefixDir)
			if before.leases == 0 || before.owned == 0 {
				t.Fatalf("the fixture has no leases or objects: %+v", before)
			}
			link, err := tt.destroy(t, f, real)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(link); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the link %s is still there: %v", link, err)
			}
			after := f.stateOf(prefixDir)
			if after.tree != before.tree {
				t.Errorf("the prefix behind the link changed:\nbefore:\n%s\nafter:\n%s", before.tree, after.tree)
			}
			if after.leases != before.leases {
				t.Errorf("leases %d, want %d: the link's target lost its leases", after.leases, before.leases)
			}
			if after.owned < before.owned {
				t.Errorf("provider objects %d, want %d: the link's target lost its VMs or networks", after.owned, before.owned)
			}
			if cur, err := CurrentPrefix(real); err != nil || cur != DefaultPrefixName {
				t.Errorf("the target workdir's current = %q, %v", cur, err)
			}
		})
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// A destroy killed while it removed the prefix's files leaves a folder the
// next destroy recognises and finishes, whatever it had removed.
func TestDestroyResumesAfterAKilledDestroy(t *testing.T) {
	tests := []struct {
		name string
		// left removes what the killed destroy had removed.
		left func(t *testing.T, p string)
	}{
		{"no file removed yet", func(t *testing.T, p string) {}},
		{"initialized removed", func(t *testing.T, p string) { mustRemove(t, filepath.Join(p, fileInitialized)) }},
		{"initialized and some folders removed", func(t *testing.T, p string) {
			mustRemove(t, filepath.Join(p, fileInitialized))
			mustRemove(t, filepath.Join(p, "images"))
			mustRemove(t, filepath.Join(p, "virt"))
		}},
		{"all but the uuid removed", func(t *testing.T, p string) {
			entries, _ := os.ReadDir(p)
			for _, e := range entries {
				if e.Name() != fileUUID {
					mustRemove(t, filepath.Join(p, e.Name()))
				}
			}
		}},
		{"only the empty folder left", func(t *testing.T, p string) {
			entries, _ := os.ReadDir(p)
			for _, e := range entries {
				mustRemove(t, filepath.Join(p, e.Name()))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newInitFixture(t)
			ctx := context.Background()
			if _, err := f.m.Init(ctx, f.opts()); err != nil {
				t.Fatal(err)
			}
			// The killed destroy had torn down the provider objects and
			// leases: it removes files only after that.
			e, err := loadLenient(f.prefix())
			if err != nil {
				t.Fatal(err)
			}
			if err := f.m.teardown(ctx, e); err != nil {
				t.Fatal(err)
			}
			tt.left(t, f.prefix())
			if err := f.m.DestroyInWorkdir(ctx, f.workdir, DefaultPrefixName); err != nil {
				t.Fatalf("the next destroy: %v", err)
			}
			f.assertNothingLeft()
		})
	}
}

func mustRemove(t *testing.T, p string) {
	t.Helper()
	if err := os.RemoveAll(p); err != nil {
		t.Fatal(err)
	}
}

// A workdir whose last prefix goes is removed only if it holds nothing
// else: files lago did not make are the user's.
func TestDestroyKeepsAWorkdirHoldingOtherFiles(t *testing.T) {
	f := newInitFixture(t)
	ctx := context.Background()
	if _, err := f.m.Init(ctx, f.opts()); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(f.workdir, "NOTES.txt"), "mine")
	err := f.m.DestroyAll(ctx, f.workdir)
	if !errs.IsUser(err) || !strings.Contains(err.Error(), "NOTES.txt") {
		t.Fatalf("DestroyAll = %v, want a user error naming NOTES.txt", err)
	}
	if b, err := os.ReadFile(filepath.Join(f.workdir, "NOTES.txt")); err != nil || string(b) != "mine" {
		t.Errorf("the user's file: %q, %v", b, err)
	}
	if _, err := os.Stat(f.prefix()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the prefix is still there: %v", err)
	}
	if o := f.prov.Owned(""); len(o) != 0 {
		t.Errorf("provider objects left: %v", o)
	}
}

// pretendSelf makes Orphans run as host and uid.
func pretendSelf(t *testing.T, host string, uid int) {
	t.Helper()
	old := self
	self = func() identity { return identity{host: host, uid: uid} }
	t.Cleanup(func() { self = old })
}

// failUUIDReads makes reading the uuid file at path fail with errno.
func failUUIDReads(t *testing.T, path string, errno syscall.Errno) {
	t.Helper()
	old := readOwnerUUID
	readOwnerUUID = func(p string) ([]byte, error) {
		if p == path {
			return nil, &fs.PathError{Op: "open", Path: p, Err: errno}
		}
		return old(p)
	}
	t.Cleanup(func() { readOwnerUUID = old })
}

func uid32(n int) *uint32 { u := uint32(n); return &u }

// judgeOwner: only "does not exist" (or another uuid) proves an owner
// gone; an unreadable prefix is alive; objects of another host or uid are
// kept unless their prefix is visibly alive; tags of older versions are
// trusted only when the path is this user's.
func TestJudgeOwner(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "live")
	mustMkdir(t, live)
	mustWrite(t, filepath.Join(live, fileUUID), "u-live")
	gone := filepath.Join(dir, "gone")
	notDir := filepath.Join(dir, "file")
	mustWrite(t, notDir, "x")
	foreignDir := filepath.Join(dir, "foreign")
	mustMkdir(t, foreignDir)
	me := os.Getuid()
	other := me + 1
	if err := os.Chown(foreignDir, other, -1); err != nil {
		t.Logf("cannot chown (not root): the legacy foreign-folder case is skipped: %v", err)
		foreignDir = ""
	}
	const host = "this-host"
	tests := []struct {
		name       string
		path, uuid string
		host       string
		uid        *uint32
		errno      syscall.Errno // reading path/uuid fails with it
		wantOrphan bool
		wantKept   string // substring; "" = not kept
	}{
		{name: "alive", path: live, uuid: "u-live", host: host, uid: uid32(me)},
		{name: "alive though made elsewhere (a shared folder)", path: live, uuid: "u-live", host: "other-host", uid: uid32(other)},
		{name: "ENOENT: gone", path: gone, uuid: "u1", host: host, uid: uid32(me), wantOrphan: true},
		{name: "ENOTDIR: gone", path: filepath.Join(notDir, "p"), uuid: "u1", host: host, uid: uid32(me), wantOrphan: true},
		{name: "another uuid in its place: gone", path: live, uuid: "u-old", host: host, uid: uid32(me), wantOrphan: true},
		{name: "EACCES: alive", path: live, uuid: "u-live", host: host, uid: uid32(me), errno: syscall.EACCES, wantKept: "cannot check its owner prefix"},
		{name: "EIO: alive", path: live, uuid: "u-live", host: host, uid: uid32(me), errno: syscall.EIO, wantKept: "cannot check"},
		{name: "another host", path: gone, uuid: "u1", host: "build-9", uid: uid32(me), wantKept: "host build-9"},
		{name: "another uid", path: gone, uuid: "u1", host: host, uid: uid32(other), wantKept: "uid " + strconv.Itoa(other)},
		{name: "another uid, unreadable", path: live, uuid: "u-live", host: host, uid: uid32(other), errno: syscall.EACCES, wantKept: "uid " + strconv.Itoa(other)},
		{name: "no prefix in the tag", path: "", uuid: "u1", wantKept: "no owner tag names its prefix"},
		{name: "legacy tag, gone, folder is mine", path: filepath.Join(dir, "a", "b"), uuid: "u1", wantOrphan: true},
		{name: "legacy tag, another uuid, folder is mine", path: live, uuid: "u-old", wantOrphan: true},
		{name: "legacy tag, unreadable", path: live, uuid: "u-live", errno: syscall.EACCES, wantKept: "cannot check"},
		{name: "legacy tag, relative path", path: "rel/p", uuid: "u1", wantKept: "relative"},
	}
	if foreignDir != "" {
		tests = append(tests, struct {
			name       string
			path, uuid string
			host       string
			uid        *uint32
			errno      syscall.Errno
			wantOrphan bool
			wantKept   string
		}{name: "legacy tag, gone, nearest folder is another user's", path: filepath.Join(foreignDir, ".lago", "default"), uuid: "u1", wantKept: "is not this user's"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.errno != 0 {
				failUUIDReads(t, filepath.Join(tt.path, fileUUID), tt.errno)
			}
			orphan, kept := judgeOwner(tt.path, tt.uuid, tt.host, tt.uid, identity{host: host, uid: me})
			if orphan != tt.wantOrphan {
				t.Errorf("orphan = %v (kept %q), want %v", orphan, kept, tt.wantOrphan)
			}
			if (kept == "") != (tt.wantKept == "") || !strings.Contains(kept, tt.wantKept) {
				t.Errorf("kept = %q, want %q", kept, tt.wantKept)
			}
			if orphan && kept != "" {
				t.Errorf("both orphan and kept (%q)", kept)
			}
		})
	}
}

// Orphans lists objects of another host or uid, and those whose owner
// cannot be read, with a hint; RemoveOrphans keeps them and removes only
// the conclusively orphaned ones.
func TestOrphansKeepWhatTheyCannotCheck(t *testing.T) {
	f := newFixture(t)
	startAll(t, f)
	me := os.Getuid()
	pretendSelf(t, "here", me)
	gone := filepath.Join(f.dir, "gone")
	unreadable := filepath.Join(f.dir, "unreadable")
	mustMkdir(t, unreadable)
	mustWrite(t, filepath.Join(unreadable, fileUUID), "u-unreadable")
	failUUIDReads(t, filepath.Join(unreadable, fileUUID), syscall.EACCES)
	add := func(name, prefix, uuid, host string, uid *uint32) {
		f.prov.AddOwned(&providerv1.OwnedResource{Kind: "domain", Name: name, OwnerPrefix: prefix, OwnerUuid: uuid, OwnerHost: host, OwnerUid: uid, State: "running"})
	}
	add("mine-gone", gone, "u-mine", "here", uid32(me))
	add("other-host", gone, "u-host", "there", uid32(me))
	add("other-uid", gone, "u-uid", "here", uid32(me+1))
	add("unreadable", unreadable, "u-unreadable", "here", uid32(me))
	add("legacy-gone", gone, "u-legacy", "", nil)
	ctx := context.Background()
	orphans, err := f.m.Orphans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, o := range orphans {
		got[o.Name] = o.Kept
		if o.Kept != "" && !strings.Contains(o.String(), o.OwnerPrefix) {
			t.Errorf("String() = %q lacks the owner", o)
		}
	}
	want := map[string]string{"mine-gone": "", "legacy-gone": "", "other-host": "host there", "other-uid": "uid " + strconv.Itoa(me+1), "unreadable": "cannot check"}
	if len(got) != len(want) {
		t.Errorf("orphans = %v, want %v (the live prefix's objects must not be listed)", got, want)
	}
	for name, w := range want {
		k, ok := got[name]
		if !ok || (k == "") != (w == "") || !strings.Contains(k, w) {
			t.Errorf("%s: kept %q (listed %v), want %q", name, k, ok, w)
		}
	}
	if err := f.m.RemoveOrphans(ctx, orphans); err != nil {
		t.Fatal(err)
	}
	left := map[string]bool{}
	for _, r := range f.prov.Owned("") {
		left[r.Name] = true
	}
	for _, name := range []string{"other-host", "other-uid", "unreadable"} {
		if !left[name] {
			t.Errorf("%s was removed", name)
		}
	}
	for _, name := range []string{"mine-gone", "legacy-gone"} {
		if left[name] {
			t.Errorf("orphan %s was not removed", name)
		}
	}
	if n := len(f.prov.Owned(testUUID)); n == 0 {
		t.Error("RemoveOrphans removed the live prefix's objects")
	}
}

// RemoveOrphans judges every owner again: one that came back since the
// list was made keeps its objects, and so does one made unreadable.
func TestRemoveOrphansJudgesAgain(t *testing.T) {
	f := newFixture(t)
	pretendSelf(t, "here", os.Getuid())
	back := filepath.Join(f.dir, "back")
	f.prov.AddOwned(&providerv1.OwnedResource{Kind: "domain", Name: "x", OwnerPrefix: back, OwnerUuid: "u-back", OwnerHost: "here", OwnerUid: uid32(os.Getuid())})
	ctx := context.Background()
	orphans, err := f.m.Orphans(ctx)
	if err != nil || len(orphans) != 1 {
		t.Fatalf("orphans = %v, %v", orphans, err)
	}
	mustMkdir(t, back)
	mustWrite(t, filepath.Join(back, fileUUID), "u-back")
	if err := f.m.RemoveOrphans(ctx, orphans); err != nil {
		t.Fatal(err)
	}
	if len(f.prov.Owned("u-back")) != 1 {
		t.Error("the objects of an owner that came back were removed")
	}
}

func TestScriptCopyMode(t *testing.T) {
	for _, tt := range []struct{ src, want fs.FileMode }{
		{0o755, 0o755}, {0o700, 0o700}, {0o644, 0o744}, {0o600, 0o700}, {0o777, 0o755}, {0o750, 0o750},
	} {
		if got := scriptCopyMode(tt.src); got != tt.want {
			t.Errorf("scriptCopyMode(%o) = %o, want %o", tt.src, got, tt.want)
		}
	}
}

// The VM specs hold the guests' passwords: after init they and the
// private key are readable by their owner only, whatever the umask.
func TestInitWritesSecretsOwnerOnly(t *testing.T) {
	for _, umask := range []int{0, 0o022} {
		t.Run("umask "+strconv.FormatInt(int64(umask), 8), func(t *testing.T) {
			old := syscall.Umask(umask)
			defer syscall.Umask(old)
			f := newInitFixture(t)
			if _, err := f.m.Init(context.Background(), f.opts()); err != nil {
				t.Fatal(err)
			}
			p := f.prefix()
			for _, rel := range []string{"id_rsa", "virt/vm-vm0", "virt/vm-vm1"} {
				st, err := os.Stat(filepath.Join(p, rel))
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm() != 0o600 {
					t.Errorf("%s: mode %o, want 0600", rel, st.Mode().Perm())
				}
			}
			scripts, _ := filepath.Glob(filepath.Join(p, "scripts", "*"))
			if len(scripts) == 0 {
				t.Fatal("no deploy script copied")
			}
			for _, s := range scripts {
				// setup.sh is 0644: the copy is the owner's to run, and
				// grants group and others no more than the original.
				st, _ := os.Stat(s)
				if st.Mode().Perm() != 0o744 {
					t.Errorf("%s: mode %o, want 0744", s, st.Mode().Perm())
				}
			}
		})
	}
}
