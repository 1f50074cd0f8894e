//go:build e2e

package e2e_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCopyAndCollect: copy-to-vm, copy-from-vm and collect against the
// tiny busybox guest (busybox tar, dropbear), on one VM booted once:
// folder trees both ways with modes and times, a 64 MiB file both ways
// with its sha256, missing paths on either side named with the VM, a
// failed or killed copy from the VM leaving nothing under its final name,
// and collect of two artifacts and a missing one (skipped, then an error
// with --no-skip), the first output folder renamed with a timestamp.
func TestCopyAndCollect(t *testing.T) {
	h := newHarness(t)
	vm := strings.Replace(vmBlock("vm0", "net: lago"), "    vcpu: 1\n",
		"    vcpu: 1\n    artifacts:\n      - /root/art/a.log\n      - /root/art/dir\n      - /root/art/missing\n", 1)
	h.initEnv(h.writeInitFile("domains:\n" + vm + oneNet))
	h.must("start")

	t.Run("folder tree", func(t *testing.T) {
		h := h.sub(t)
		src := filepath.Join(h.dir, "tree")
		want := makeE2ETree(t, src)
		h.must("copy-to-vm", "vm0", src, "/root/tree")
		// The guest's view: mode and time of every entry, links' targets.
		got := h.shell("vm0", `cd /root/tree && find . ! -type l | sort | while read -r f; do stat -c '%a %Y %n' "$f"; done; `+
			`find . -type l | sort | while read -r f; do echo "$f -> $(readlink "$f")"; done`)
		if wantGuest := guestView(t, src); got != wantGuest {
			t.Errorf("in the guest:\n%s\nwant:\n%s", got, wantGuest)
		}
		back := filepath.Join(h.dir, "tree-back")
		h.must("copy-from-vm", "vm0", "/root/tree", back)
		if got := describeTree(t, back); got != want {
			t.Errorf("copied back:\n%s\nwant:\n%s", got, want)
		}
	})

	big := filepath.Join(h.dir, "big")
	sum := writeRandom(t, big, 64<<20)
	t.Run("64 MiB round trip", func(t *testing.T) {
		h := h.sub(t)
		start := time.Now()
		h.must("copy-to-vm", "vm0", big, "/root/big")
		t.Logf("64 MiB to the guest in %s", time.Since(start).Round(time.Millisecond))
		if got := strings.Fields(h.shell("vm0", "sha256sum /root/big")); len(got) == 0 || got[0] != sum {
			t.Fatalf("sha256 in the guest %v, want %s", got, sum)
		}
		back := filepath.Join(h.dir, "big-back")
		start = time.Now()
		h.must("copy-from-vm", "vm0", "/root/big", back)
		t.Logf("64 MiB from the guest in %s", time.Since(start).Round(time.Millisecond))
		if got := sha256File(t, back); got != sum {
			t.Errorf("sha256 of the copy %s, want %s", got, sum)
		}
	})

	t.Run("missing paths", func(t *testing.T) {
		h := h.sub(t)
		nope := filepath.Join(h.dir, "nope")
		tests := []struct {
			name string
			args []string
			path string
		}{
			{"local source", []string{"copy-to-vm", "vm0", nope, "/root"}, nope},
			{"remote folder", []string{"copy-to-vm", "vm0", big, "/no/such/dir/big"}, "/no/such/dir"},
			{"remote source", []string{"copy-from-vm", "vm0", "/no/such", h.dir}, "/no/such"},
			{"local folder", []string{"copy-from-vm", "vm0", "/root/big", filepath.Join(nope, "x")}, nope},
		}
		for _, tc := range tests {
			r := h.lago(tc.args...)
			if r.code != 2 || !strings.Contains(r.stderr, "vm0") || !strings.Contains(r.stderr, tc.path) || !strings.Contains(r.stderr, "no such file or folder") {
				t.Errorf("%s: want exit 2 naming vm0 and %s:\n%s", tc.name, tc.path, r)
			}
		}
		if _, err := os.Stat(nope); !os.IsNotExist(err) {
			t.Errorf("a failed copy created %s", nope)
		}
	})

	t.Run("failed copy leaves no file", func(t *testing.T) {
		h := h.sub(t)
		dest := filepath.Join(h.dir, "failed")
		if err := os.Mkdir(dest, 0o755); err != nil {
			t.Fatal(err)
		}
		// A write-only sysfs file: it exists, and reading it fails even
		// for root.
		if r := h.lago("shell", "vm0", "test -e /sys/bus/pci/rescan"); r.code == 0 {
			if r := h.lago("copy-from-vm", "vm0", "/sys/bus/pci/rescan", filepath.Join(dest, "rescan")); r.code == 0 {
				t.Errorf("copy of an unreadable file succeeded:\n%s", r)
			}
			if ents, _ := os.ReadDir(dest); len(ents) != 0 {
				t.Errorf("an unreadable file's copy left %s", ents[0].Name())
			}
		} else {
			t.Log("no /sys/bus/pci/rescan in the guest: unreadable file case not run")
		}

		// Killed while the 64 MiB file streams: the final name never
		// appears (only a hidden temporary file may stay).
		ctx, cancel := context.WithTimeout(context.Background(), lagoTimeout)
		defer cancel()
		cmd := h.command(ctx, "", "copy-from-vm", "vm0", "/root/big", filepath.Join(dest, "big"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killed := false
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if temps, _ := filepath.Glob(filepath.Join(dest, ".big.lago-*")); len(temps) > 0 {
				if st, err := os.Stat(temps[0]); err == nil && st.Size() > 0 {
					_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					killed = true
					break
				}
			}
			if cmd.ProcessState != nil {
				break
			}
		}
		_ = cmd.Wait()
		if !killed {
			t.Log("the copy ended before it could be killed part way")
		} else if _, err := os.Stat(filepath.Join(dest, "big")); !os.IsNotExist(err) {
			t.Errorf("a killed copy left its final name: %v", err)
		}
	})

	t.Run("collect", func(t *testing.T) {
		h := h.sub(t)
		h.shell("vm0", "mkdir -p /root/art/dir/sub && echo A > /root/art/a.log && echo B > /root/art/dir/sub/b && chmod 640 /root/art/a.log")
		out := filepath.Join(h.dir, "collected")
		start := time.Now()
		r := h.lago("collect", "--output", out)
		t.Logf("collect in %s", time.Since(start).Round(time.Millisecond))
		if r.code != 0 || !strings.Contains(r.stderr, "/root/art/missing") {
			t.Fatalf("collect: want exit 0 and the skipped path named:\n%s", r)
		}
		checks := map[string]string{"vm0/_root_art_a.log": "A\n", "vm0/_root_art_dir/sub/b": "B\n"}
		for p, body := range checks {
			if got, err := os.ReadFile(filepath.Join(out, p)); err != nil || string(got) != body {
				t.Errorf("%s = %q, %v; want %q", p, got, err, body)
			}
		}
		if st, err := os.Stat(filepath.Join(out, "vm0", "_root_art_a.log")); err == nil && st.Mode().Perm() != 0o640 {
			t.Errorf("a.log: mode %o, want 640", st.Mode().Perm())
		}
		if _, err := os.Lstat(filepath.Join(out, "vm0", "_root_art_missing")); !os.IsNotExist(err) {
			t.Errorf("the missing artifact left %v", err)
		}

		r = h.lago("collect", "--output", out, "--no-skip")
		if r.code == 0 || !strings.Contains(r.stderr, "vm0") || !strings.Contains(r.stderr, "/root/art/missing") {
			t.Errorf("collect --no-skip: want a failure naming vm0 and the missing path:\n%s", r)
		}
		old, _ := filepath.Glob(out + ".*")
		if len(old) != 1 || strings.Contains(filepath.Base(old[0]), ":") {
			t.Fatalf("renamed output folders %q, want one without ':'", old)
		}
		if got, _ := os.ReadFile(filepath.Join(old[0], "vm0", "_root_art_a.log")); string(got) != "A\n" {
			t.Errorf("the first collect's files are not in %s", old[0])
		}
		if got, _ := os.ReadFile(filepath.Join(out, "vm0", "_root_art_a.log")); string(got) != "A\n" {
			t.Errorf("the second collect did not collect a.log")
		}
	})

	h.must("destroy", "--yes")
	h.assertNothingLeft()
}

// makeE2ETree writes a small tree with distinct modes and whole-second
// times and returns describeTree of it.
func makeE2ETree(t *testing.T, dir string) string {
	t.Helper()
	files := []struct {
		name string
		mode fs.FileMode
		body string
		link string
	}{
		{"a.txt", 0o640, "A", ""},
		{"it's $x", 0o600, "odd name", ""},
		{"sub/", 0o750, "", ""},
		{"sub/b.sh", 0o755, "#!/bin/sh\n", ""},
		{"sub/deeper/", 0o700, "", ""},
		{"sub/deeper/c", 0o604, "C", ""},
		{"sub/link", 0, "", "b.sh"},
		{"empty/", 0o755, "", ""},
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		p := filepath.Join(dir, strings.TrimSuffix(f.name, "/"))
		var err error
		switch {
		case f.link != "":
			err = os.Symlink(f.link, p)
		case strings.HasSuffix(f.name, "/"):
			if err = os.Mkdir(p, 0o755); err == nil {
				err = os.Chmod(p, f.mode)
			}
		default:
			if err = os.WriteFile(p, []byte(f.body), 0o600); err == nil {
				err = os.Chmod(p, f.mode)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := len(files) - 1; i >= 0; i-- {
		if files[i].link != "" {
			continue
		}
		mt := time.Unix(1600000000+int64(i)*3600, 0)
		if err := os.Chtimes(filepath.Join(dir, strings.TrimSuffix(files[i].name, "/")), mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	mt := time.Unix(1650000000, 0)
	if err := os.Chtimes(dir, mt, mt); err != nil {
		t.Fatal(err)
	}
	return describeTree(t, dir)
}

// describeTree lists dir and everything in it: mode, time, and contents or
// link target, one entry per line.
func describeTree(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v", rel, st.Mode())
		switch {
		case st.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			line += " -> " + l
		case st.IsDir():
			line += " " + strconv.FormatInt(st.ModTime().Unix(), 10)
		default:
			b, _ := os.ReadFile(p)
			line += fmt.Sprintf(" %d %q", st.ModTime().Unix(), b)
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// guestView is what the guest prints for the copy of the local tree dir:
// `stat -c '%a %Y %n'` of each entry but links, then each link's target,
// sorted by name as `find | sort` does.
func guestView(t *testing.T, dir string) string {
	t.Helper()
	var entries, links []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		name := "./" + filepath.ToSlash(rel)
		if rel == "." {
			name = "."
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			links = append(links, name+" -> "+l)
			return nil
		}
		entries = append(entries, fmt.Sprintf("%o %d %s", st.Mode().Perm(), st.ModTime().Unix(), name))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	byName := func(l []string, key func(string) string) {
		sort.Slice(l, func(i, j int) bool { return key(l[i]) < key(l[j]) })
	}
	byName(entries, func(s string) string { return strings.SplitN(s, " ", 3)[2] })
	sort.Strings(links)
	return strings.Join(append(entries, links...), "\n") + "\n"
}

func writeRandom(t *testing.T, p string, size int64) string {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
