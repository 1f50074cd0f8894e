package discovery

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// script writes an executable shell script plugin that prints out on
// `describe` (and logs each run to dir/runs).
func script(t *testing.T, dir, name, out string, exit int) string {
	t.Helper()
	p := filepath.Join(dir, Prefix+name)
	body := "#!/bin/sh\necho run >> \"" + filepath.Join(dir, "runs") + "\"\ncat <<'EOF'\n" + out + "\nEOF\nexit " + string(rune('0'+exit)) + "\n"
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func runs(t *testing.T, dir string) int {
	b, _ := os.ReadFile(filepath.Join(dir, "runs"))
	return strings.Count(string(b), "run")
}

const goodDesc = `{"name":"x","version":"1.2","api_versions":[1],"components":[{"name":"c","kind":"output"}]}`

func TestDescribeOutcomes(t *testing.T) {
	tests := []struct {
		name       string
		out        string
		exit       int
		wantRefuse string
	}{
		{"valid", goodDesc, 0, ""},
		{"not json", "hello", 0, "parse describe output"},
		{"fails", "boom", 1, "exit status 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			script(t, dir, "x", tt.out, tt.exit)
			infos, err := Discover(Options{SearchPath: []string{dir}, CacheFile: filepath.Join(dir, "cache.json")})
			if err != nil || len(infos) != 1 {
				t.Fatalf("Discover = %+v, %v", infos, err)
			}
			in := infos[0]
			if tt.wantRefuse == "" {
				if !in.Usable() || in.Version != "1.2" || len(in.Components) != 1 || in.Components[0].Kind != "output" {
					t.Fatalf("info = %+v", in)
				}
				return
			}
			if !in.Refused || !strings.Contains(in.Reason, tt.wantRefuse) {
				t.Fatalf("info = %+v, want refused with %q", in, tt.wantRefuse)
			}
		})
	}
}

func TestCacheFile(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "c", "plugins.json")
	p := script(t, dir, "x", goodDesc, 0)
	opts := Options{SearchPath: []string{dir}, CacheFile: cache}
	steps := []struct {
		name     string
		before   func()
		wantRuns int
	}{
		{"cold", func() {}, 1},
		{"warm", func() {}, 1},
		{"other cache version ignored", func() {
			os.WriteFile(cache, []byte(`{"version": 99, "entries": {}}`), 0o644)
		}, 2},
		{"truncated cache ignored", func() {
			b, _ := os.ReadFile(cache)
			os.WriteFile(cache, b[:len(b)/2], 0o644)
		}, 3},
		{"size change", func() {
			script(t, dir, "x", goodDesc+" ", 0)
		}, 4},
		{"warm again", func() {}, 4},
	}
	for _, s := range steps {
		s.before()
		if _, err := Discover(opts); err != nil {
			t.Fatal(err)
		}
		if got := runs(t, dir); got != s.wantRuns {
			t.Fatalf("%s: %d describe runs, want %d", s.name, got, s.wantRuns)
		}
	}
	// A removed binary is dropped from the cache on the next write.
	os.Remove(p)
	script(t, dir, "y", goodDesc, 0)
	if _, err := Discover(opts); err != nil {
		t.Fatal(err)
	}
	var c cacheFile
	b, _ := os.ReadFile(cache)
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Entries[p]; ok || len(c.Entries) != 1 {
		t.Fatalf("cache entries = %v, want only lago-plugin-y", c.Entries)
	}
	// No temporary file is left behind.
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(cache), ".plugins-*"))
	if len(left) != 0 {
		t.Fatalf("temporary cache files left: %v", left)
	}
}

func TestNoCache(t *testing.T) {
	dir := t.TempDir()
	script(t, dir, "x", goodDesc, 0)
	for i := 1; i <= 2; i++ {
		if _, err := Discover(Options{SearchPath: []string{dir}}); err != nil {
			t.Fatal(err)
		}
		if got := runs(t, dir); got != i {
			t.Fatalf("run %d: %d describe runs", i, got)
		}
	}
}

// TestStaysLight keeps RPC packages (costly package init) out of
// discovery, which `lago --help` uses.
func TestStaysLight(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, heavy := range []string{"google.golang.org/grpc", "google.golang.org/protobuf", "github.com/hashicorp/go-plugin", "github.com/lago-go/lago/proto"} {
			if strings.HasPrefix(pkg, heavy) {
				t.Errorf("discovery depends on %s", pkg)
			}
		}
	}
}

// TestFolderNamedTwice: a folder in the search path twice (LAGO_PLUGIN_PATH
// set to the folder beside lago) is scanned once; its plugins do not shadow
// themselves.
func TestFolderNamedTwice(t *testing.T) {
	dir := t.TempDir()
	script(t, dir, "x", goodDesc, 0)
	infos, err := Discover(Options{SearchPath: []string{dir, filepath.Join(dir, "sub", ".."), dir + "/"}, CacheFile: filepath.Join(dir, "cache.json")})
	if err != nil || len(infos) != 1 || !infos[0].Usable() {
		t.Fatalf("Discover = %+v, %v; want the plugin once, usable", infos, err)
	}
}
