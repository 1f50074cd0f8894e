package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildInstall builds the light front-end into prefix/bin/lago and the full
// engine into prefix/libexec/lago/lago-engine, the installed layout, with a
// version set the way the Makefile sets it.
func buildInstall(t *testing.T) (prefix string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	prefix = t.TempDir()
	ldflags := "-X github.com/lago-go/lago/core/version.Version=9.8.7-test"
	for _, b := range []struct{ out, tags, cgo string }{
		// The front-end is built static: no dynamic loader at start-up.
		{filepath.Join(prefix, "bin", "lago"), "lagolight", "CGO_ENABLED=0"},
		{filepath.Join(prefix, "libexec", "lago", engineName), "", "CGO_ENABLED=1"},
	} {
		cmd := exec.Command("go", "build", "-tags", b.tags, "-ldflags", ldflags, "-o", b.out, ".")
		cmd.Env = append(os.Environ(), b.cgo)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.out, err, out)
		}
	}
	return prefix
}

func TestLightBuildLinksNoRPC(t *testing.T) {
	out, err := exec.Command("go", "list", "-tags", "lagolight", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, heavy := range []string{"google.golang.org/grpc", "github.com/hashicorp/go-plugin", "google.golang.org/protobuf", "libvirt.org/", "golang.org/x/crypto/ssh"} {
		if strings.Contains(string(out), heavy) {
			t.Errorf("the light front-end links %s", heavy)
		}
	}
}

func TestBinaries(t *testing.T) {
	prefix := buildInstall(t)
	front := filepath.Join(prefix, "bin", "lago")
	engine := filepath.Join(prefix, "libexec", "lago", engineName)
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
		{"not implemented verb", []string{"export"}, 2, "", "lago: error: lago export: not implemented yet"},
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
