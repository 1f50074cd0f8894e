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

// buildLago builds the real binary once per test run, with a version set
// the way the Makefile sets it.
func buildLago(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "bin", "lago")
	cmd := exec.Command("go", "build", "-o", bin,
		"-ldflags", "-X github.com/lago-go/lago/core/version.Version=9.8.7-test", ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestBinary(t *testing.T) {
	bin := buildLago(t)
	home := t.TempDir()
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "LAGO_PLUGIN_PATH=" + t.TempDir(),
		"XDG_CONFIG_DIRS=" + filepath.Join(home, "xdg"), "XDG_DATA_HOME=" + filepath.Join(home, "data")}
	tests := []struct {
		name      string
		args      []string
		code      int
		stdoutHas string
		stderrHas string
	}{
		{"version", []string{"--version"}, 0, "lago 9.8.7-test\n", ""},
		{"help", []string{"--help"}, 0, "generate-config", ""},
		{"no verb", nil, 1, "Usage:", ""},
		{"unknown verb", []string{"frobnicate"}, 2, "", `lago: error: unknown command "frobnicate"`},
		{"generate-config", []string{"--ssh-tr", "7", "generate-config"}, 0, "ssh_tries = 7\n", ""},
		{"not implemented verb", []string{"status"}, 2, "", "lago: error: lago status: not implemented yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
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
		})
	}
}
