package core_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const repoModule = "github.com/lago-go/lago/"

// TestPluginsImportOnlySDKAndProto keeps the plugin boundary honest: a
// plugin may import this repository's sdk and proto modules and its own
// packages, never core (a third party could not, so first-party plugins
// must not either). It asks `go list -deps` from the workspace, tests
// included.
func TestPluginsImportOnlySDKAndProto(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go tool not found: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := filepath.Glob(filepath.Join(root, "plugins", "*", "go.mod"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no plugin modules under %s/plugins: %v", root, err)
	}
	for _, gomod := range dirs {
		dir := filepath.Dir(gomod)
		own := repoModule + "plugins/" + filepath.Base(dir)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			cmd := exec.Command(goBin, "list", "-deps", "-test", "-f", "{{.ImportPath}}", "./...")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GOWORK="+filepath.Join(root, "go.work"), "GOFLAGS=")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("go list in %s: %v\n%s", dir, err, out)
			}
			for _, pkg := range strings.Fields(string(out)) {
				pkg = strings.TrimSuffix(strings.SplitN(pkg, " ", 2)[0], ".test")
				if !strings.HasPrefix(pkg, repoModule) {
					continue
				}
				if allowed(pkg, own) {
					continue
				}
				t.Errorf("%s imports %s: plugins may import only %ssdk and %sproto", own, pkg, repoModule, repoModule)
			}
		})
	}
}

func allowed(pkg, own string) bool {
	for _, prefix := range []string{repoModule + "sdk", repoModule + "proto", own} {
		if pkg == prefix || strings.HasPrefix(pkg, prefix+"/") {
			return true
		}
	}
	return false
}

func TestAllowed(t *testing.T) {
	own := repoModule + "plugins/x"
	tests := []struct {
		pkg  string
		want bool
	}{
		{repoModule + "sdk", true},
		{repoModule + "sdk/plugintest", true},
		{repoModule + "proto/lago/provider/v1", true},
		{own + "/internal/y", true},
		{repoModule + "core/pluginhost", false},
		{repoModule + "sdkextra", false},
		{repoModule + "plugins/xy", false},
		{repoModule + "plugins/other", false},
	}
	for _, tt := range tests {
		if got := allowed(tt.pkg, own); got != tt.want {
			t.Errorf("allowed(%q) = %v, want %v", tt.pkg, got, tt.want)
		}
	}
}

// TestEnvOnlyOrchestrates: core/env orders and rolls back the verbs'
// steps; the wiring of the real pieces (plugin host, configuration,
// template store) is core/lago's, behind its constructor. env knows them
// only through its small interfaces, so its tests run on fakes.
func TestEnvOnlyOrchestrates(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go tool not found: %v", err)
	}
	cmd := exec.Command(goBin, "list", "-f", `{{join .Imports "\n"}}`, "./env")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{repoModule + "core/pluginhost", repoModule + "core/config", repoModule + "core/template", repoModule + "core/lago"}
	for _, pkg := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if pkg == f || strings.HasPrefix(pkg, f+"/") {
				t.Errorf("core/env imports %s: wire it in core/lago instead", pkg)
			}
		}
	}
}
