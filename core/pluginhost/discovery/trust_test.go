package discovery

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTrust: a binary that someone other than root and the user running
// lago could rewrite or swap is refused, with the reason and a fix.
func TestTrust(t *testing.T) {
	tests := []struct {
		name string
		// setup prepares root/a/b/lago-plugin-x (made 0755 in 0755 folders)
		// and returns the search folder.
		setup      func(t *testing.T, root, bin string) string
		wantRefuse string // "" for usable; ROOT stands for root
	}{
		{"0755 binary in 0755 folders", func(t *testing.T, root, bin string) string { return filepath.Dir(bin) }, ""},
		{"group-writable binary", func(t *testing.T, root, bin string) string {
			chmod(t, bin, 0o775)
			return filepath.Dir(bin)
		}, "binary is group-writable; fix with chmod g-w ROOT/a/b/" + Prefix + "x"},
		{"world-writable binary", func(t *testing.T, root, bin string) string {
			chmod(t, bin, 0o757)
			return filepath.Dir(bin)
		}, "binary is world-writable; fix with chmod o-w"},
		{"binary of another user", func(t *testing.T, root, bin string) string {
			chown(t, bin, 4242)
			return filepath.Dir(bin)
		}, "binary is owned by uid 4242, neither root nor the user running lago"},
		{"folder writable by others", func(t *testing.T, root, bin string) string {
			chmod(t, filepath.Dir(bin), 0o777)
			return filepath.Dir(bin)
		}, "folder ROOT/a/b is writable by others without the sticky bit; fix with chmod o-w ROOT/a/b"},
		{"parent folder writable by others", func(t *testing.T, root, bin string) string {
			chmod(t, filepath.Join(root, "a"), 0o777)
			return filepath.Dir(bin)
		}, "folder ROOT/a is writable by others without the sticky bit"},
		{"sticky folder writable by others", func(t *testing.T, root, bin string) string {
			chmod(t, filepath.Join(root, "a"), 0o777|os.ModeSticky)
			chmod(t, filepath.Dir(bin), 0o777|os.ModeSticky)
			return filepath.Dir(bin)
		}, ""},
		{"group-writable folder", func(t *testing.T, root, bin string) string {
			chmod(t, filepath.Dir(bin), 0o775)
			return filepath.Dir(bin)
		}, "folder ROOT/a/b is writable by its group without the sticky bit; fix with chmod g-w ROOT/a/b"},
		{"group-writable sticky folder", func(t *testing.T, root, bin string) string {
			chmod(t, filepath.Dir(bin), 0o775|os.ModeSticky)
			return filepath.Dir(bin)
		}, ""},
		{"folder of another user", func(t *testing.T, root, bin string) string {
			chown(t, filepath.Join(root, "a"), 4242)
			return filepath.Dir(bin)
		}, "folder ROOT/a is owned by uid 4242, neither root nor the user running lago"},
		{"link to a binary below a folder writable by others", func(t *testing.T, root, bin string) string {
			chmod(t, filepath.Join(root, "a"), 0o777)
			links := filepath.Join(root, "links")
			mkdir(t, links)
			if err := os.Symlink(bin, filepath.Join(links, Prefix+"x")); err != nil {
				t.Fatal(err)
			}
			return links
		}, "folder ROOT/a is writable by others without the sticky bit"},
		{"binary in a folder reached through a link in a folder writable by others", func(t *testing.T, root, bin string) string {
			open := filepath.Join(root, "open")
			mkdir(t, open)
			chmod(t, open, 0o777)
			link := filepath.Join(open, "plugins")
			if err := os.Symlink(filepath.Dir(bin), link); err != nil {
				t.Fatal(err)
			}
			return link
		}, "folder ROOT/open is writable by others without the sticky bit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "a", "b")
			mkdir(t, dir)
			chmod(t, filepath.Join(root, "a"), 0o755)
			bin := script(t, dir, "x", goodDesc, 0)
			search := tt.setup(t, root, bin)
			want := strings.ReplaceAll(tt.wantRefuse, "ROOT", root)
			infos, err := Discover(Options{SearchPath: []string{search}, CacheFile: filepath.Join(t.TempDir(), "cache.json")})
			if err != nil || len(infos) != 1 {
				t.Fatalf("Discover = %+v, %v", infos, err)
			}
			in := infos[0]
			if tt.wantRefuse == "" {
				if !in.Usable() || len(in.Components) != 1 {
					t.Fatalf("info = %+v, want usable", in)
				}
				if err := CheckTrust(in.Path); err != nil {
					t.Fatalf("CheckTrust: %v", err)
				}
				return
			}
			if !in.Refused || !strings.Contains(in.Reason, want) {
				t.Fatalf("info = %+v, want refused with %q", in, want)
			}
			if n := runs(t, dir); n != 0 {
				t.Fatalf("an untrusted binary ran %d times", n)
			}
			// The checks at start refuse it the same way.
			var ue *UntrustedError
			if _, err := OpenBinary(in.Path, ""); !errors.As(err, &ue) || !strings.Contains(err.Error(), want) {
				t.Fatalf("OpenBinary err = %v, want %q", err, want)
			}
			if err := CheckTrust(in.Path); !errors.As(err, &ue) {
				t.Fatalf("CheckTrust err = %v", err)
			}
		})
	}
}

// TestTrustAtStartUsesTheOpenFile: the file checks at start are made on
// the opened file, so a binary made group-writable after discovery (a
// warm cache: discovery ran nothing) is refused when it would start.
func TestTrustAtStartUsesTheOpenFile(t *testing.T) {
	dir := t.TempDir()
	bin := script(t, dir, "x", goodDesc, 0)
	opts := Options{SearchPath: []string{dir}, CacheFile: filepath.Join(dir, "cache.json")}
	if infos, err := Discover(opts); err != nil || !infos[0].Usable() {
		t.Fatalf("Discover = %+v, %v", infos, err)
	}
	chmod(t, bin, 0o775)
	var ue *UntrustedError
	if _, err := OpenBinary(bin, ""); !errors.As(err, &ue) || ue.Path != bin {
		t.Fatalf("OpenBinary err = %v, want group-writable refused", err)
	}
}

// TestCommandRunsTheCheckedFile: the binary replaced after OpenBinary
// checked and hashed it is not what runs: the opened file is.
func TestCommandRunsTheCheckedFile(t *testing.T) {
	dir := t.TempDir()
	checked := writeScript(t, dir, Prefix+"x", "echo checked")
	sum, err := FileSHA256(checked)
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenBinary(checked, sum)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.SHA256 != sum {
		t.Fatalf("SHA256 = %q, want %q", b.SHA256, sum)
	}
	// Swap another file into the binary's place, as an attacker with
	// write access to the folder would (rename is atomic).
	swap := writeScript(t, dir, "swap", "echo swapped")
	if err := os.Rename(swap, checked); err != nil {
		t.Fatal(err)
	}
	out, err := b.Command().Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "checked" {
		t.Fatalf("ran %q, want the checked binary", got)
	}
	// Opening the path again hashes the new file: the pin refuses it.
	var pm *PinMismatchError
	if _, err := OpenBinary(checked, sum); !errors.As(err, &pm) || pm.Pinned != sum {
		t.Fatalf("OpenBinary of the swapped binary: %v, want a pin mismatch", err)
	}
}

// TestDiscoverDescribesTheHashedFile: with a pin, discovery hashes and
// describes one open file.
func TestDiscoverDescribesTheHashedFile(t *testing.T) {
	dir := t.TempDir()
	bin := script(t, dir, "x", goodDesc, 0)
	sum, err := FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		pin       string
		wantUsed  bool
		wantRuns  int
		wantInErr string
	}{
		{"pin matches", sum, true, 1, ""},
		{"pin mismatch: describe not run", strings.Repeat("0", 64), false, 0, "does not match the pinned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(filepath.Join(dir, "runs"))
			infos, err := Discover(Options{SearchPath: []string{dir}, Pins: map[string]string{"x": tt.pin}})
			if err != nil || len(infos) != 1 {
				t.Fatalf("Discover = %+v, %v", infos, err)
			}
			if in := infos[0]; in.Usable() != tt.wantUsed || in.SHA256 != sum || !strings.Contains(in.Reason, tt.wantInErr) {
				t.Fatalf("info = %+v", in)
			}
			if n := runs(t, dir); n != tt.wantRuns {
				t.Fatalf("%d describe runs, want %d", n, tt.wantRuns)
			}
		})
	}
}

func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	chmod(t, p, 0o755)
	return p
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	chmod(t, dir, 0o755) // not subject to umask
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// chown gives path to uid; only root may, so other users skip.
func chown(t *testing.T, path string, uid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root")
	}
	if err := os.Chown(path, uid, -1); err != nil {
		t.Fatal(err)
	}
}
