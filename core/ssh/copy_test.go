package ssh

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lago-go/lago/core/ssh/sshtest"
)

// The test server runs commands on this host, so "remote" paths are local
// temp folders here. With guestTools, the commands find only busybox's
// applets on PATH, as on the e2e tiny guest, optionally without some.

// guestTools makes the test server's commands see the given tools: "host"
// (this machine's), "busybox", or "busybox" without the applets listed
// after it.
func guestTools(t *testing.T, kind string, without ...string) {
	t.Helper()
	if kind == "host" {
		return
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed")
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	dir := t.TempDir()
	skip := map[string]bool{}
	for _, w := range without {
		skip[w] = true
	}
	for _, a := range strings.Fields(string(out)) {
		if skip[a] {
			continue
		}
		if err := os.Symlink(bb, filepath.Join(dir, a)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
}

type treeFile struct {
	name string // slash-separated; a trailing / is a folder
	mode fs.FileMode
	body string
	link string
}

var testTree = []treeFile{
	{name: "a.txt", mode: 0o640, body: "A"},
	{name: "it's $x", mode: 0o600, body: "odd name"},
	{name: "sub/", mode: 0o750},
	{name: "sub/b.txt", mode: 0o604, body: "B"},
	{name: "sub/deeper/", mode: 0o755},
	{name: "sub/deeper/c", mode: 0o755, body: "C"},
	{name: "sub/link", link: "b.txt"},
	{name: "empty/", mode: 0o700},
	{name: strings.Repeat("long-", 30) + "name", mode: 0o644, body: "a name past 100 bytes"},
}

// makeTree writes testTree under dir with distinct whole-second times.
func makeTree(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range testTree {
		p := filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(f.name, "/")))
		var err error
		switch {
		case f.link != "":
			err = os.Symlink(f.link, p)
		case strings.HasSuffix(f.name, "/"):
			err = os.Mkdir(p, f.mode)
		default:
			err = os.WriteFile(p, []byte(f.body), f.mode)
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.link == "" {
			if err := os.Chmod(p, f.mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Times last, deepest first: writing into a folder changes its time.
	for i := len(testTree) - 1; i >= 0; i-- {
		f := testTree[i]
		if f.link != "" {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(f.name, "/")))
		if err := os.Chtimes(p, treeTime(i), treeTime(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(dir, treeTime(100), treeTime(100)); err != nil {
		t.Fatal(err)
	}
}

func treeTime(i int) time.Time { return time.Unix(1600000000+int64(i)*3600, 0) }

// checkTree compares dir with testTree: contents, modes, times, links.
func checkTree(t *testing.T, dir string) {
	t.Helper()
	for i, f := range testTree {
		p := filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(f.name, "/")))
		st, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s: %v", f.name, err)
			continue
		}
		if f.link != "" {
			if got, _ := os.Readlink(p); got != f.link {
				t.Errorf("%s links to %q, want %q", f.name, got, f.link)
			}
			continue
		}
		if st.Mode().Perm() != f.mode {
			t.Errorf("%s: mode %o, want %o", f.name, st.Mode().Perm(), f.mode)
		}
		if !st.ModTime().Equal(treeTime(i)) {
			t.Errorf("%s: time %v, want %v", f.name, st.ModTime(), treeTime(i))
		}
		if !strings.HasSuffix(f.name, "/") {
			if got, _ := os.ReadFile(p); string(got) != f.body {
				t.Errorf("%s = %q, want %q", f.name, got, f.body)
			}
		}
	}
	if st, err := os.Stat(dir); err == nil && !st.ModTime().Equal(treeTime(100)) {
		t.Errorf("%s: time %v, want %v", dir, st.ModTime(), treeTime(100))
	}
}

// noTemps fails when a copy left a temporary name in dir.
func noTemps(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".lago-") {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
}

var guestKinds = []struct {
	name    string
	kind    string
	without []string
}{
	{"host tools", "host", nil},
	{"busybox", "busybox", nil},
	{"busybox without tar", "busybox", []string{"tar"}},
	{"busybox without tar or stat", "busybox", []string{"tar", "stat"}},
}

func TestCopyFolderRoundTrip(t *testing.T) {
	for _, g := range guestKinds {
		t.Run(g.name, func(t *testing.T) {
			guestTools(t, g.kind, g.without...)
			srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
			c := dialT(t, Target{Addr: srv.Addr(), Password: "pw"})
			ctx := context.Background()
			src := filepath.Join(t.TempDir(), "src")
			makeTree(t, src)
			guest := t.TempDir()
			remote := filepath.Join(guest, "new dir")
			if err := c.CopyTo(ctx, src, remote); err != nil {
				t.Fatalf("CopyTo folder: %v", err)
			}
			host := t.TempDir()
			back := filepath.Join(host, "back")
			if err := c.CopyFrom(ctx, remote, back); err != nil {
				t.Fatalf("CopyFrom folder: %v", err)
			}
			noTemps(t, guest)
			noTemps(t, host)
			if len(g.without) > 1 { // without stat, modes and times do not come back
				for _, f := range testTree {
					p := filepath.Join(back, filepath.FromSlash(strings.TrimSuffix(f.name, "/")))
					if _, err := os.Lstat(p); err != nil {
						t.Errorf("%s: %v", f.name, err)
					}
				}
				checkTree(t, remote)
				return
			}
			checkTree(t, remote)
			checkTree(t, back)
			// Compressed, as collect asks (busybox: tar -z).
			zdir := t.TempDir()
			res, err := Pull(ctx, c, zdir, []PullItem{{Remote: remote, Name: "z"}}, PullOptions{Compress: true})
			if err != nil || res[0].Files != 5 {
				t.Fatalf("compressed Pull = %+v, %v", res, err)
			}
			checkTree(t, filepath.Join(zdir, "z"))

			// Into existing folders: under the source's name, as cp -r.
			if err := c.CopyTo(ctx, src, guest); err != nil {
				t.Fatalf("CopyTo into a folder: %v", err)
			}
			checkTree(t, filepath.Join(guest, "src"))
			if err := c.CopyFrom(ctx, remote, host); err != nil {
				t.Fatalf("CopyFrom into a folder: %v", err)
			}
			checkTree(t, filepath.Join(host, "new dir"))
			// Again onto the copies: merged, still the same.
			if err := c.CopyFrom(ctx, remote, back); err != nil {
				t.Fatalf("CopyFrom onto an existing copy: %v", err)
			}
			checkTree(t, filepath.Join(back, "new dir"))
		})
	}
}

func TestCopyFile(t *testing.T) {
	for _, g := range guestKinds {
		t.Run(g.name, func(t *testing.T) {
			guestTools(t, g.kind, g.without...)
			srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
			c := dialT(t, Target{Addr: srv.Addr(), Password: "pw"})
			ctx := context.Background()
			local := t.TempDir()
			remote := t.TempDir()
			src := filepath.Join(local, "-it's a file")
			if err := os.WriteFile(src, []byte("payload\n"), 0o750); err != nil {
				t.Fatal(err)
			}
			mtime := time.Unix(1700000000, 0)
			if err := os.Chtimes(src, mtime, mtime); err != nil {
				t.Fatal(err)
			}
			tests := []struct {
				name, to, want string
			}{
				{"to a file path", filepath.Join(remote, "dst $x"), filepath.Join(remote, "dst $x")},
				{"over an existing file", filepath.Join(remote, "dst $x"), filepath.Join(remote, "dst $x")},
				{"into an existing folder", remote, filepath.Join(remote, "-it's a file")},
			}
			for _, tc := range tests {
				if err := c.CopyTo(ctx, src, tc.to); err != nil {
					t.Fatalf("%s: CopyTo: %v", tc.name, err)
				}
				got, err := os.ReadFile(tc.want)
				if err != nil || string(got) != "payload\n" {
					t.Fatalf("%s: remote file = %q, %v", tc.name, got, err)
				}
				st, _ := os.Stat(tc.want)
				if st.Mode().Perm() != 0o750 || !st.ModTime().Equal(mtime) {
					t.Errorf("%s: mode %o time %v, want 750 %v", tc.name, st.Mode().Perm(), st.ModTime(), mtime)
				}
			}
			back := filepath.Join(local, "back")
			if err := c.CopyFrom(ctx, filepath.Join(remote, "dst $x"), back); err != nil {
				t.Fatalf("CopyFrom: %v", err)
			}
			if got, _ := os.ReadFile(back); string(got) != "payload\n" {
				t.Fatalf("copied back %q", got)
			}
			if st, _ := os.Stat(back); len(g.without) < 2 && (st.Mode().Perm() != 0o750 || !st.ModTime().Equal(mtime)) {
				t.Errorf("copied back with mode %o time %v, want 750 %v", st.Mode().Perm(), st.ModTime(), mtime)
			}
			// A link in the guest is followed.
			if err := os.Symlink("dst $x", filepath.Join(remote, "link")); err != nil {
				t.Fatal(err)
			}
			if err := c.CopyFrom(ctx, filepath.Join(remote, "link"), local); err != nil {
				t.Fatalf("CopyFrom of a link: %v", err)
			}
			if got, _ := os.ReadFile(filepath.Join(local, "link")); string(got) != "payload\n" {
				t.Fatalf("copied link %q", got)
			}
			noTemps(t, local)
			noTemps(t, remote)
		})
	}
}

// TestCopyMissing: a path that does not exist, on either side, is a
// *NotFoundError naming it, and no copy leaves anything behind.
func TestCopyMissing(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
	c := dialT(t, Target{Addr: srv.Addr(), Password: "pw"})
	ctx := context.Background()
	local, remote := t.TempDir(), t.TempDir()
	file := filepath.Join(local, "f")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		copy     func() error
		path     string
		isRemote bool
	}{
		{"remote source", func() error { return c.CopyFrom(ctx, filepath.Join(remote, "missing"), filepath.Join(local, "x")) },
			filepath.Join(remote, "missing"), true},
		{"remote parent", func() error { return c.CopyTo(ctx, file, filepath.Join(remote, "no", "f")) },
			filepath.Join(remote, "no"), true},
		{"local source", func() error { return c.CopyTo(ctx, filepath.Join(local, "missing"), remote) },
			filepath.Join(local, "missing"), false},
		{"local parent", func() error { return c.CopyFrom(ctx, filepath.Join(remote), filepath.Join(local, "no", "x")) },
			filepath.Join(local, "no"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.copy()
			var nf *NotFoundError
			if !errors.As(err, &nf) || nf.Path != tc.path || nf.Remote != tc.isRemote {
				t.Fatalf("err = %v, want a NotFoundError for %s (remote %v)", err, tc.path, tc.isRemote)
			}
			if tc.isRemote != errors.Is(err, ErrRemoteNotFound) || tc.isRemote == errors.Is(err, fs.ErrNotExist) {
				t.Errorf("errors.Is: remote %v, fs.ErrNotExist %v", errors.Is(err, ErrRemoteNotFound), errors.Is(err, fs.ErrNotExist))
			}
			if !strings.Contains(err.Error(), tc.path) {
				t.Errorf("%q does not name %s", err, tc.path)
			}
		})
	}
	if ents, _ := os.ReadDir(local); len(ents) != 1 {
		t.Errorf("local folder holds %d entries, want only f", len(ents))
	}
	if ents, _ := os.ReadDir(remote); len(ents) != 0 {
		t.Errorf("remote folder holds %d entries, want none", len(ents))
	}
}
