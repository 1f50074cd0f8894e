package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lago-go/lago/core/pluginhost/discovery"
)

// discoveringHost is a fakeHost whose Discover really scans folders, so
// that what `plugins install` put in place is what `plugins` lists.
type discoveringHost struct {
	fakeHost
	search []string
}

func (d *discoveringHost) Discover() ([]discovery.Info, error) {
	return discovery.Discover(discovery.Options{SearchPath: d.search})
}

// writePlugin writes an executable script that answers describe like a
// plugin of one output component, version version.
func writePlugin(t *testing.T, dir, name, version string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, discovery.Prefix+name)
	desc := `{"name":"` + name + `","version":"` + version + `","api_versions":[1],"components":[{"name":"md","kind":"output"}]}`
	if err := os.WriteFile(p, []byte("#!/bin/sh\ncat <<'EOF'\n"+desc+"\nEOF\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPluginsInstallRemove runs install, list and remove as a user would,
// each step against the folder the previous ones left.
func TestPluginsInstallRemove(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	dir := filepath.Join(data, "lago", "plugins")
	installed := filepath.Join(dir, discovery.Prefix+"x")
	v1 := writePlugin(t, filepath.Join(root, "v1"), "x", "1.0")
	v2 := writePlugin(t, filepath.Join(root, "v2"), "x", "2.0")
	sum1, _ := discovery.FileSHA256(v1)
	sum2, _ := discovery.FileSHA256(v2)
	notPlugin := filepath.Join(root, "np", discovery.Prefix+"np")
	os.MkdirAll(filepath.Dir(notPlugin), 0o755)
	os.WriteFile(notPlugin, []byte("#!/bin/sh\necho hello\n"), 0o755)
	// An earlier folder with its own x shadows the installed one.
	early := filepath.Join(root, "early")
	host := &discoveringHost{search: []string{dir}}
	env := []string{"XDG_DATA_HOME=" + data}

	steps := []struct {
		name       string
		before     func()
		args       []string
		code       int
		stdoutHas  []string
		stderrHas  string
		wantBinary string // sha256 of the installed binary, "" for none
	}{
		{"install", nil, []string{"plugins", "install", v1}, 0,
			[]string{"installed plugin x 1.0 (output md) as " + installed + ", sha256 " + sum1[:12]}, "", sum1},
		{"list shows folder and pin", nil, []string{"plugins"}, 0,
			[]string{"PIN", "x       1.0      md         output  ok      " + sum1[:12] + "  " + installed}, "", sum1},
		{"list document has the whole pin", nil, []string{"-f", "yaml", "plugins"}, 0,
			[]string{"pin: " + sum1, "sha256: " + sum1}, "", sum1},
		{"same again", nil, []string{"plugins", "install", v1}, 0,
			[]string{"plugin x 1.0 (output md) is already installed as " + installed}, "", sum1},
		{"other needs --force", nil, []string{"plugins", "install", v2}, 2,
			nil, "lago plugins install: plugin x is already installed as " + installed + ", another binary (sha256 " + sum1[:12] + ", the new one is " + sum2[:12] + "); add --force to replace it", sum1},
		{"forced", nil, []string{"plugins", "install", "--force", v2}, 0,
			[]string{"replaced plugin x (sha256 " + sum1[:12] + ") by x 2.0 (output md) as " + installed + ", sha256 " + sum2[:12]}, "", sum2},
		{"not a plugin", nil, []string{"plugins", "install", notPlugin}, 2,
			nil, "is not a lago plugin: its describe failed: parse describe output", sum2},
		{"no file", nil, []string{"plugins", "install"}, 2, nil, "accepts 1 arg(s), received 0", sum2},
		{"shadowed is a warning", func() {
			writePlugin(t, early, "x", "0.1")
			host.search = []string{early, dir}
		}, []string{"plugins", "install", v2}, 0,
			[]string{"already installed"}, "lago: warning: plugin x is shadowed by " + filepath.Join(early, discovery.Prefix+"x"), sum2},
		{"unknown subverb", nil, []string{"plugins", "bogus"}, 2, nil, `unknown command "bogus" for "lago plugins"`, sum2},
		{"remove", nil, []string{"plugins", "remove", "x"}, 0, []string{"removed plugin x (" + installed + ")"}, "", ""},
		{"remove again", nil, []string{"plugins", "remove", "x"}, 2,
			nil, "lago plugins remove: plugin x is not installed in " + dir + " (no plugin is)", ""},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		r := runBackend(t, Backend{NewHost: func(HostOptions) PluginHost { return host }}, env, s.args...)
		if r.code != s.code || !strings.Contains(r.stderr, s.stderrHas) {
			t.Fatalf("%s: lago %s: code %d, stderr %q; want code %d, stderr with %q", s.name, strings.Join(s.args, " "), r.code, r.stderr, s.code, s.stderrHas)
		}
		for _, want := range s.stdoutHas {
			if !strings.Contains(r.stdout, want) {
				t.Fatalf("%s: stdout lacks %q:\n%s", s.name, want, r.stdout)
			}
		}
		sum, _ := discovery.FileSHA256(installed)
		if sum != s.wantBinary {
			t.Fatalf("%s: installed binary hashes to %q, want %q", s.name, sum, s.wantBinary)
		}
	}
}

// TestPluginsInstallHelp: both verbs are listed under plugins and explain
// themselves.
func TestPluginsInstallHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"plugins", "--help"}, []string{"install", "Copy a plugin binary into the user plugin folder and pin it", "remove", "lago plugins install FILE"}},
		{[]string{"plugins", "install", "--help"}, []string{"lago plugins install FILE", "--force", "pins.sha256", "$XDG_DATA_HOME/lago/plugins"}},
		{[]string{"plugins", "remove", "--help"}, []string{"lago plugins remove NAME", "its pin"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runCLI(t, newFakeHost(), nil, nil, tt.args...)
			if r.code != 0 {
				t.Fatalf("code %d: %s", r.code, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("help lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
}
