package discovery

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// installDir is a fresh user plugin folder (not yet created) below a
// trusted temporary folder.
func installDir(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "data", "lago", "plugins")
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// leftovers lists what Install or Remove left in dir besides the lock.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Name() != installLock {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestInstall: a plugin is copied 0755 into a folder created 0755 and
// pinned; a file that is no plugin is refused and leaves nothing behind.
func TestInstall(t *testing.T) {
	tests := []struct {
		name string
		// src makes the file to install in srcDir.
		src       func(t *testing.T, srcDir string) string
		wantErr   string
		notPlugin bool
	}{
		{"plugin", func(t *testing.T, d string) string { return script(t, d, "x", goodDesc, 0) }, "", false},
		{"describe prints no JSON", func(t *testing.T, d string) string { return script(t, d, "x", "hello", 0) },
			"is not a lago plugin: its describe failed: parse describe output", true},
		{"describe prints nothing (like true)", func(t *testing.T, d string) string {
			return writeScript(t, d, Prefix+"x", "exit 0")
		}, "is not a lago plugin: its describe failed: parse describe output", true},
		{"describe fails", func(t *testing.T, d string) string { return script(t, d, "x", "boom", 1) },
			"is not a lago plugin: its describe failed: run", true},
		{"another API version", func(t *testing.T, d string) string {
			return script(t, d, "x", `{"name":"x","api_versions":[2],"components":[{"name":"c","kind":"output"}]}`, 0)
		}, "it speaks plugin API versions [2], this lago speaks 1", true},
		{"no component", func(t *testing.T, d string) string {
			return script(t, d, "x", `{"name":"x","api_versions":[1],"components":[]}`, 0)
		}, "it describes no component", true},
		{"not executable", func(t *testing.T, d string) string {
			p := script(t, d, "x", goodDesc, 0)
			chmod(t, p, 0o644)
			return p
		}, "is not a lago plugin: not executable (chmod +x", true},
		{"a folder", func(t *testing.T, d string) string {
			p := filepath.Join(d, Prefix+"x")
			mkdir(t, p)
			return p
		}, "is not a lago plugin: not a regular file", true},
		{"missing", func(t *testing.T, d string) string { return filepath.Join(d, Prefix+"x") }, "no such file", false},
		{"name without the prefix", func(t *testing.T, d string) string {
			return writeScript(t, d, "markdown", "exit 0")
		}, `file name must be lago-plugin-NAME`, false},
		{"hidden name", func(t *testing.T, d string) string {
			return writeScript(t, d, Prefix+".x", "exit 0")
		}, `file name must be lago-plugin-NAME`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := installDir(t)
			src := tt.src(t, t.TempDir())
			got, err := Install(src, dir, InstallOptions{})
			if tt.wantErr != "" {
				var npe *NotPluginError
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || errors.As(err, &npe) != tt.notPlugin {
					t.Fatalf("Install = %+v, %v; want an error with %q (NotPluginError: %v)", got, err, tt.wantErr, tt.notPlugin)
				}
				if left := leftovers(t, dir); len(left) != 0 {
					t.Fatalf("a refused install left %v in %s", left, dir)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sum, _ := FileSHA256(src)
			dst := filepath.Join(dir, Prefix+"x")
			if got.Name != "x" || got.Path != dst || got.SHA256 != sum || got.Version != "1.2" || len(got.Components) != 1 || got.Unchanged || got.Replaced != "" {
				t.Fatalf("Install = %+v", got)
			}
			if readFile(t, dst) != readFile(t, src) {
				t.Fatal("installed binary differs from its source")
			}
			for _, p := range []string{dst, dir, filepath.Dir(dir)} {
				st, _ := os.Stat(p)
				if st.Mode().Perm() != 0o755 {
					t.Fatalf("%s has mode %v, want 0755", p, st.Mode().Perm())
				}
			}
			if pins := readFile(t, filepath.Join(dir, PinsFile)); pins != sum+"  "+Prefix+"x\n" {
				t.Fatalf("pins file = %q", pins)
			}
			if left := leftovers(t, dir); len(left) != 2 {
				t.Fatalf("%s holds %v, want the binary and the pins file", dir, left)
			}
			infos, err := Discover(Options{SearchPath: []string{dir}})
			if err != nil || len(infos) != 1 || !infos[0].Usable() || infos[0].Pin != sum || infos[0].SHA256 != sum {
				t.Fatalf("Discover = %+v, %v; want x usable and pinned", infos, err)
			}
		})
	}
}

// TestInstallUmask: the folders and the binary are 0755 whatever the
// umask; a group-writable folder would get the plugin refused.
func TestInstallUmask(t *testing.T) {
	dir := installDir(t)
	src := script(t, t.TempDir(), "x", goodDesc, 0)
	old := syscall.Umask(0o002)
	defer syscall.Umask(old)
	if _, err := Install(src, dir, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	infos, err := Discover(Options{SearchPath: []string{dir}})
	if err != nil || len(infos) != 1 || !infos[0].Usable() {
		t.Fatalf("Discover = %+v, %v", infos, err)
	}
}

// TestInstallIntoUntrustedFolder: installing below a folder others may
// write is refused up front, since the plugin would be refused anyway.
func TestInstallIntoUntrustedFolder(t *testing.T) {
	root := t.TempDir()
	open := filepath.Join(root, "open")
	mkdir(t, open)
	chmod(t, open, 0o777)
	_, err := Install(script(t, t.TempDir(), "x", goodDesc, 0), filepath.Join(open, "plugins"), InstallOptions{})
	var ue *UntrustedError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "writable by others") {
		t.Fatalf("Install = %v, want an UntrustedError", err)
	}
}

// TestInstallOver: the same binary again is a no-op, a different one of
// the same name is refused unless forced, and the pin follows the binary.
func TestInstallOver(t *testing.T) {
	dir := installDir(t)
	src1 := script(t, t.TempDir(), "x", goodDesc, 0)
	src2 := script(t, t.TempDir(), "x", strings.Replace(goodDesc, "1.2", "1.3", 1), 0)
	sum1, _ := FileSHA256(src1)
	sum2, _ := FileSHA256(src2)
	steps := []struct {
		name      string
		src       string
		force     bool
		wantErr   bool
		unchanged bool
		replaced  string
		wantSum   string // installed binary and pin after the step
		wantVer   string
	}{
		{"first", src1, false, false, false, "", sum1, "1.2"},
		{"same again", src1, false, false, true, "", sum1, "1.2"},
		{"other refused", src2, false, true, false, "", sum1, "1.2"},
		{"other forced", src2, true, false, false, sum1, sum2, "1.3"},
		{"same forced", src2, true, false, true, "", sum2, "1.3"},
	}
	for _, s := range steps {
		got, err := Install(s.src, dir, InstallOptions{Force: s.force})
		var ee *ExistsError
		if s.wantErr {
			if !errors.As(err, &ee) || ee.SHA256 != sum1 || ee.New != sum2 || !strings.Contains(err.Error(), "already installed") {
				t.Fatalf("%s: Install = %v, want an ExistsError", s.name, err)
			}
		} else if err != nil || got.Unchanged != s.unchanged || got.Replaced != s.replaced {
			t.Fatalf("%s: Install = %+v, %v", s.name, got, err)
		}
		if sum, _ := FileSHA256(filepath.Join(dir, Prefix+"x")); sum != s.wantSum {
			t.Fatalf("%s: installed binary hashes to %s, want %s", s.name, sum, s.wantSum)
		}
		infos, err := Discover(Options{SearchPath: []string{dir}, CacheFile: filepath.Join(dir, "..", "cache.json")})
		if err != nil || len(infos) != 1 || !infos[0].Usable() || infos[0].Pin != s.wantSum || infos[0].Version != s.wantVer {
			t.Fatalf("%s: Discover = %+v, %v", s.name, infos, err)
		}
		if left := leftovers(t, dir); len(left) != 2 {
			t.Fatalf("%s: %s holds %v", s.name, dir, left)
		}
	}
}

// TestInstalledTampered: once installed, a binary whose content changes is
// refused by discovery and, should the describe cache still vouch for it
// (same size and mtime), by the open that starts it.
func TestInstalledTampered(t *testing.T) {
	tests := []struct {
		name string
		// tamper rewrites the installed binary.
		tamper func(t *testing.T, bin string)
		// wantDiscoverRefuse: discovery itself sees it; otherwise only
		// OpenBinary does (the cache entry matches size and mtime).
		wantDiscoverRefuse bool
	}{
		{"appended to", func(t *testing.T, bin string) {
			f, err := os.OpenFile(bin, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(f, "# evil")
			f.Close()
		}, true},
		{"same size and mtime", func(t *testing.T, bin string) {
			st, _ := os.Stat(bin)
			b := []byte(readFile(t, bin))
			b[len(b)-2] = 'X' // "exit 0\n" -> "exit X\n"
			if err := os.WriteFile(bin, b, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(bin, st.ModTime(), st.ModTime()); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := installDir(t)
			got, err := Install(script(t, t.TempDir(), "x", goodDesc, 0), dir, InstallOptions{})
			if err != nil {
				t.Fatal(err)
			}
			opts := Options{SearchPath: []string{dir}, CacheFile: filepath.Join(dir, "..", "cache.json")}
			if infos, err := Discover(opts); err != nil || len(infos) != 1 || !infos[0].Usable() {
				t.Fatalf("Discover before = %+v, %v", infos, err)
			}
			tt.tamper(t, got.Path)
			infos, err := Discover(opts)
			if err != nil || len(infos) != 1 {
				t.Fatalf("Discover = %+v, %v", infos, err)
			}
			if refused := infos[0].Refused && strings.Contains(infos[0].Reason, "does not match the pinned "+got.SHA256); refused != tt.wantDiscoverRefuse {
				t.Fatalf("Discover after tampering = %+v; want refused: %v", infos[0], tt.wantDiscoverRefuse)
			}
			var pm *PinMismatchError
			if b, err := OpenBinary(got.Path, ""); !errors.As(err, &pm) || pm.Pinned != got.SHA256 {
				if b != nil {
					b.Close()
				}
				t.Fatalf("OpenBinary of the tampered binary = %v, want a PinMismatchError", err)
			}
			if _, err := Describe(got.Path); !errors.As(err, &pm) {
				t.Fatalf("Describe of the tampered binary = %v, want a PinMismatchError", err)
			}
		})
	}
}

// TestConfigPinWins: a pin given in Options (lago.conf's [plugins]) is the
// one checked, not the folder's.
func TestConfigPinWins(t *testing.T) {
	dir := installDir(t)
	got, err := Install(script(t, t.TempDir(), "x", goodDesc, 0), dir, InstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Replace the binary by hand, then pin its new hash in the config.
	script(t, dir, "x", strings.Replace(goodDesc, "1.2", "1.3", 1), 0)
	sum, _ := FileSHA256(got.Path)
	tests := []struct {
		name       string
		pins       map[string]string
		wantUsable bool
	}{
		{"folder pin only", nil, false},
		{"config pin of the new binary", map[string]string{"x": sum}, true},
		{"config pin of another name", map[string]string{"y": sum}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			infos, err := Discover(Options{SearchPath: []string{dir}, Pins: tt.pins})
			if err != nil || len(infos) != 1 || infos[0].Usable() != tt.wantUsable {
				t.Fatalf("Discover = %+v, %v; want usable %v", infos, err, tt.wantUsable)
			}
			b, err := OpenBinary(got.Path, tt.pins["x"])
			if (err == nil) != tt.wantUsable {
				t.Fatalf("OpenBinary = %v; want usable %v", err, tt.wantUsable)
			}
			if b != nil {
				b.Close()
			}
		})
	}
}

// TestRemove: the binary and its pin go; an unknown name is an error
// listing the installed ones.
func TestRemove(t *testing.T) {
	dir := installDir(t)
	src := t.TempDir()
	for _, n := range []string{"a", "b"} {
		if _, err := Install(script(t, src, n, goodDesc, 0), dir, InstallOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	sumB, _ := FileSHA256(filepath.Join(dir, Prefix+"b"))
	steps := []struct {
		name     string
		remove   string
		wantErr  string
		wantLeft []string
	}{
		{"unknown", "zz", "plugin zz is not installed in " + dir + "; installed there: a, b", []string{Prefix + "a", Prefix + "b", PinsFile}},
		{"path", "../a", `invalid plugin name "../a"`, []string{Prefix + "a", Prefix + "b", PinsFile}},
		{"by name", "a", "", []string{Prefix + "b", PinsFile}},
		{"again", "a", "plugin a is not installed in " + dir + "; installed there: b", []string{Prefix + "b", PinsFile}},
		{"by file name, the last", Prefix + "b", "", nil},
		{"none left", "b", "(no plugin is)", nil},
	}
	for _, s := range steps {
		got, err := Remove(s.remove, dir)
		if s.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), s.wantErr) {
				t.Fatalf("%s: Remove = %+v, %v; want %q", s.name, got, err, s.wantErr)
			}
		} else if err != nil || got.Path == "" || got.Pin == "" {
			t.Fatalf("%s: Remove = %+v, %v", s.name, got, err)
		}
		if left := leftovers(t, dir); strings.Join(left, " ") != strings.Join(s.wantLeft, " ") {
			t.Fatalf("%s: %s holds %v, want %v", s.name, dir, left, s.wantLeft)
		}
		if s.name == "by name" {
			if pins := readFile(t, filepath.Join(dir, PinsFile)); pins != sumB+"  "+Prefix+"b\n" {
				t.Fatalf("pins file after removing a = %q", pins)
			}
		}
	}
	var nie *NotInstalledError
	if _, err := Remove("x", filepath.Join(dir, "missing")); !errors.As(err, &nie) {
		t.Fatalf("Remove from a missing folder = %v, want a NotInstalledError", err)
	}
}

// TestRemoveStalePin: a pin whose binary is gone (a crash mid-install, or
// a binary removed by hand) can be removed.
func TestRemoveStalePin(t *testing.T) {
	dir := installDir(t)
	got, err := Install(script(t, t.TempDir(), "x", goodDesc, 0), dir, InstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(got.Path)
	if r, err := Remove("x", dir); err != nil || r.Path != "" || r.Pin != got.SHA256 {
		t.Fatalf("Remove = %+v, %v", r, err)
	}
	if left := leftovers(t, dir); len(left) != 0 {
		t.Fatalf("left %v", left)
	}
}

// TestPinsFileProblems: a pins file that cannot be trusted or parsed gets
// every plugin of its folder refused, with the file and line; Install and
// Remove refuse to rewrite it.
func TestPinsFileProblems(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	tests := []struct {
		name    string
		write   func(t *testing.T, path string)
		wantErr string // FILE stands for the pins file
	}{
		{"short hash", func(t *testing.T, p string) {
			os.WriteFile(p, []byte("# mine\n\nabc  "+Prefix+"x\n"), 0o644)
		}, `FILE:3: want "<sha256 in hex>  lago-plugin-<name>", got "abc  lago-plugin-x"`},
		{"one space", func(t *testing.T, p string) {
			os.WriteFile(p, []byte(sum+" "+Prefix+"x\n"), 0o644)
		}, "FILE:1: want two spaces"},
		{"a path", func(t *testing.T, p string) {
			os.WriteFile(p, []byte(sum+"  ../"+Prefix+"x\n"), 0o644)
		}, `FILE:1: want a file name lago-plugin-<name> of this folder, got "../lago-plugin-x"`},
		{"twice", func(t *testing.T, p string) {
			os.WriteFile(p, []byte(sum+"  "+Prefix+"x\n"+sum+" *"+Prefix+"x\n"), 0o644)
		}, "FILE:2: second pin of x (first on line 1)"},
		{"group-writable", func(t *testing.T, p string) {
			os.WriteFile(p, []byte(sum+"  "+Prefix+"x\n"), 0o644)
			chmod(t, p, 0o664)
		}, "FILE: writable by others than its owner; fix with chmod go-w FILE"},
		{"a link", func(t *testing.T, p string) {
			other := filepath.Join(t.TempDir(), "pins")
			os.WriteFile(other, []byte(sum+"  "+Prefix+"x\n"), 0o644)
			os.Symlink(other, p)
		}, "FILE: not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			bin := script(t, dir, "x", goodDesc, 0)
			pins := filepath.Join(dir, PinsFile)
			tt.write(t, pins)
			want := strings.ReplaceAll(tt.wantErr, "FILE", pins)
			infos, err := Discover(Options{SearchPath: []string{dir}})
			if err != nil || len(infos) != 1 || !infos[0].Refused || !strings.HasPrefix(infos[0].Reason, want) {
				t.Fatalf("Discover = %+v, %v; want refused with %q", infos, err, want)
			}
			var pfe *PinsFileError
			if _, err := OpenBinary(bin, ""); !errors.As(err, &pfe) || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("OpenBinary = %v, want %q", err, want)
			}
			// A config pin does not need the folder's.
			sum, _ := FileSHA256(bin)
			if infos, _ := Discover(Options{SearchPath: []string{dir}, Pins: map[string]string{"x": sum}}); len(infos) != 1 || !infos[0].Usable() {
				t.Fatalf("Discover with a config pin = %+v", infos)
			}
			if _, err := Install(script(t, t.TempDir(), "y", goodDesc, 0), dir, InstallOptions{}); !errors.As(err, &pfe) {
				t.Fatalf("Install = %v, want a PinsFileError", err)
			}
			if _, err := Remove("x", dir); !errors.As(err, &pfe) {
				t.Fatalf("Remove = %v, want a PinsFileError", err)
			}
			if _, err := os.Stat(bin); err != nil {
				t.Fatalf("Remove removed the binary despite the broken pins file: %v", err)
			}
		})
	}
}

// TestInstallConcurrent: installs into one folder at once each keep their
// pin (the pins file is rewritten under the folder's lock).
func TestInstallConcurrent(t *testing.T) {
	dir := installDir(t)
	src := t.TempDir()
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		p := script(t, src, fmt.Sprintf("p%d", i), goodDesc, 0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := Install(p, dir, InstallOptions{})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	pins, err := readPins(dir)
	if err != nil || len(pins) != n {
		t.Fatalf("pins = %v, %v; want %d", pins, err, n)
	}
	infos, err := Discover(Options{SearchPath: []string{dir}})
	if err != nil || len(infos) != n {
		t.Fatalf("Discover = %+v, %v", infos, err)
	}
	for _, in := range infos {
		if !in.Usable() || in.Pin == "" {
			t.Fatalf("%+v not usable and pinned", in)
		}
	}
}

// TestUserDir: $XDG_DATA_HOME/lago/plugins, else ~/.local/share, and the
// third folder of the search path.
func TestUserDir(t *testing.T) {
	tests := []struct {
		name, xdg, home, want, wantErr string
	}{
		{"xdg", "/x/data", "/home/u", "/x/data/lago/plugins", ""},
		{"home", "", "/home/u", "/home/u/.local/share/lago/plugins", ""},
		{"neither", "", "", "", "neither $XDG_DATA_HOME nor $HOME is set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"XDG_DATA_HOME": tt.xdg, "HOME": tt.home}
			got, err := UserDirFrom(func(k string) string { return env[k] })
			if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("UserDirFrom = %q, %v; want %q, %q", got, err, tt.want, tt.wantErr)
			}
			if tt.want == "" {
				return
			}
			t.Setenv("XDG_DATA_HOME", tt.xdg)
			t.Setenv("HOME", tt.home)
			t.Setenv("LAGO_PLUGIN_PATH", "")
			if got, err := UserDir(); err != nil || got != tt.want {
				t.Fatalf("UserDir = %q, %v; want %q", got, err, tt.want)
			}
			if sp := DefaultSearchPath(""); len(sp) < 1 || sp[0] != tt.want {
				t.Fatalf("DefaultSearchPath = %v, want %s first without an exe", sp, tt.want)
			}
		})
	}
}
