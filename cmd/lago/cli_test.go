package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lago-go/lago/cmd/lago/internal/cli"
)

// buildInstall builds the front-end into prefix/bin/lago and the engine
// into prefix/libexec/lago/lago-engine, the installed layout, with a
// version set the way the Makefile sets it.
func buildInstall(t *testing.T) (prefix string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	prefix = t.TempDir()
	ldflags := "-X github.com/lago-go/lago/core/version.Version=9.8.7-test"
	for _, b := range []struct{ out, pkg, cgo string }{
		// The front-end is built static: no dynamic loader at start-up.
		{filepath.Join(prefix, "bin", "lago"), ".", "CGO_ENABLED=0"},
		{filepath.Join(prefix, "libexec", "lago", cli.EngineName), "./engine", "CGO_ENABLED=1"},
	} {
		cmd := exec.Command("go", "build", "-ldflags", ldflags, "-o", b.out, b.pkg)
		cmd.Env = append(os.Environ(), b.cgo)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.out, err, out)
		}
	}
	return prefix
}

// TestFrontEndLinksNoRPC: bin/lago (this package, with the shared
// internal/cli) links none of the packages whose initialisation makes the
// engine slow to start; the engine, listed the same way, does, so the
// check would see them.
func TestFrontEndLinksNoRPC(t *testing.T) {
	heavy := []string{"google.golang.org/grpc", "github.com/hashicorp/go-plugin", "google.golang.org/protobuf", "libvirt.org/", "golang.org/x/crypto/ssh"}
	for _, tc := range []struct {
		pkg   string
		links bool
	}{
		{".", false},
		{"./internal/cli", false},
		{"./engine", true},
	} {
		out, err := exec.Command("go", "list", "-deps", tc.pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", tc.pkg, err, out)
		}
		for _, h := range heavy[:3] {
			if got := strings.Contains(string(out), h); got != tc.links {
				t.Errorf("%s links %s: %v, want %v", tc.pkg, h, got, tc.links)
			}
		}
		if !tc.links {
			for _, h := range heavy[3:] {
				if strings.Contains(string(out), h) {
					t.Errorf("%s links %s", tc.pkg, h)
				}
			}
		}
	}
}

func TestBinaries(t *testing.T) {
	prefix := buildInstall(t)
	front := filepath.Join(prefix, "bin", "lago")
	engine := filepath.Join(prefix, "libexec", "lago", cli.EngineName)
	home := t.TempDir()
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "LAGO_PLUGIN_PATH=" + t.TempDir(),
		"XDG_CONFIG_DIRS=" + filepath.Join(home, "xdg"), "XDG_DATA_HOME=" + filepath.Join(home, "data")}
	type tc struct {
		name      string
		args      []string
		code      int
		stdoutHas string
		stderrHas string
	}
	tests := []tc{
		{"version", []string{"--version"}, 0, "lago 9.8.7-test\n", ""},
		{"help", []string{"--help"}, 0, "generate-config", ""},
		{"no verb", nil, 1, "Usage:", ""},
		{"unknown verb", []string{"frobnicate"}, 2, "", `lago: error: unknown command "frobnicate"`},
		{"generate-config", []string{"--ssh-tr", "7", "generate-config"}, 0, "ssh_tries = 7\n", ""},
		{"verb without a prefix", []string{"export"}, 2, "", "no lago prefix found in "},
	}
	run := func(t *testing.T, bin string, tt tc) {
		cmd := exec.Command(bin, tt.args...)
		cmd.Env = env
		cmd.Dir = home
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tt.code {
			t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out.String(), errb.String())
		}
		if !strings.Contains(out.String(), tt.stdoutHas) {
			t.Errorf("stdout %q lacks %q", out.String(), tt.stdoutHas)
		}
		if !strings.Contains(errb.String(), tt.stderrHas) {
			t.Errorf("stderr %q lacks %q", errb.String(), tt.stderrHas)
		}
	}
	for _, bin := range []string{front, engine} {
		for _, tt := range tests {
			t.Run(filepath.Base(bin)+"/"+tt.name, func(t *testing.T) { run(t, bin, tt) })
		}
	}
	// Without the engine, the front-end still serves help but says what is
	// missing for a verb it would forward: proof that it forwards.
	if err := os.Remove(engine); err != nil {
		t.Fatal(err)
	}
	run(t, front, tc{"help without engine", []string{"--help"}, 0, "Verbs:", ""})
	run(t, front, tc{"forward without engine", []string{"status"}, 2, "", "lago engine missing"})
}
