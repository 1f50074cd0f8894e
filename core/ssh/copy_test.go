package ssh

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"github.com/lago-go/lago/core/ssh/sshtest"
	"os"
	"path/filepath"
	"testing"
)

// The test server runs commands on this host, so "remote" paths are local
// temp folders here.

func TestCopyFile(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
	c := dialT(t, Target{Addr: srv.Addr(), Password: "pw"})
	ctx := context.Background()
	local := t.TempDir()
	remote := t.TempDir()

	src := filepath.Join(local, "it's a file")
	if err := os.WriteFile(src, []byte("payload\n"), 0o750); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, to, want string
	}{
		{"to a file path", filepath.Join(remote, "dst $x"), filepath.Join(remote, "dst $x")},
		{"into an existing folder", remote, filepath.Join(remote, "it's a file")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.CopyTo(ctx, src, tc.to); err != nil {
				t.Fatalf("CopyTo: %v", err)
			}
			got, err := os.ReadFile(tc.want)
			if err != nil || string(got) != "payload\n" {
				t.Fatalf("remote file = %q, %v", got, err)
			}
			if st, _ := os.Stat(tc.want); st.Mode().Perm() != 0o750 {
				t.Errorf("mode %o, want 750", st.Mode().Perm())
			}
		})
	}

	back := filepath.Join(local, "back")
	if err := c.CopyFrom(ctx, filepath.Join(remote, "dst $x"), back); err != nil {
		t.Fatalf("CopyFrom: %v", err)
	}
	if got, _ := os.ReadFile(back); string(got) != "payload\n" {
		t.Fatalf("copied back %q", got)
	}
	err := c.CopyFrom(ctx, filepath.Join(remote, "missing"), filepath.Join(local, "x"))
	if !errors.Is(err, ErrRemoteNotFound) {
		t.Fatalf("CopyFrom of a missing path = %v, want ErrRemoteNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(local, "x")); !os.IsNotExist(err) {
		t.Errorf("a failed copy left %s behind", filepath.Join(local, "x"))
	}
}

func TestCopyFolder(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
	c := dialT(t, Target{Addr: srv.Addr(), Password: "pw"})
	ctx := context.Background()
	src := t.TempDir()
	files := map[string]string{"a.txt": "A", "sub/b.txt": "B", "sub/deeper/c": "C"}
	for name, body := range files {
		p := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	remote := filepath.Join(t.TempDir(), "new dir")
	if err := c.CopyTo(ctx, src, remote); err != nil {
		t.Fatalf("CopyTo folder: %v", err)
	}
	back := filepath.Join(t.TempDir(), "back")
	if err := c.CopyFrom(ctx, remote, back); err != nil {
		t.Fatalf("CopyFrom folder: %v", err)
	}
	for _, root := range []string{remote, back} {
		for name, body := range files {
			got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
			if err != nil || string(got) != body {
				t.Errorf("%s/%s = %q, %v; want %q", root, name, got, err, body)
			}
		}
	}
}

func TestReadTarStaysInside(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entries := []struct {
		name, link string
		typ        byte
	}{
		{"../escape", "", tar.TypeReg},
		{"/abs", "", tar.TypeReg},
		{"ok/file", "", tar.TypeReg},
		{"ok/link-out", "../../etc/passwd", tar.TypeSymlink},
		{"ok/link-abs", "/etc/passwd", tar.TypeSymlink},
		{"ok/link-in", "file", tar.TypeSymlink},
	}
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Linkname: e.link}
		if e.typ == tar.TypeReg {
			hdr.Size = 1
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
		}
	}
	tw.Close()
	parent := t.TempDir()
	dir := filepath.Join(parent, "into")
	if err := readTar(&buf, dir); err != nil {
		t.Fatalf("readTar: %v", err)
	}
	wantExist := []string{"escape", "abs", "ok/file", "ok/link-in"}
	for _, p := range wantExist {
		if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s missing: %v", p, err)
		}
	}
	for _, p := range []string{"ok/link-out", "ok/link-abs"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			t.Errorf("%s: a link leaving the tree was created", p)
		}
	}
	if _, err := os.Stat(filepath.Join(parent, "escape")); err == nil {
		t.Error("../escape was written outside the target folder")
	}
}
