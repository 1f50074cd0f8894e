package core_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildDepsNamesMissingPackages runs scripts/builddeps.sh (the first
// step of `make build`) where pkg-config finds no libvirt: a fresh machine
// without the build dependencies gets one line naming the Debian package
// and `make deps`, not pages of cgo errors.
func TestBuildDepsNamesMissingPackages(t *testing.T) {
	if _, err := exec.LookPath("pkg-config"); err != nil {
		t.Fatalf("pkg-config is a build dependency (make deps): %v", err)
	}
	script, err := filepath.Abs(filepath.Join("..", "scripts", "builddeps.sh"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     []string
		wantErr bool
		want    []string
	}{
		{name: "everything present", env: nil},
		{
			name:    "no libvirt headers",
			env:     []string{"PKG_CONFIG_LIBDIR=" + t.TempDir(), "PKG_CONFIG_PATH="},
			wantErr: true,
			want:    []string{"libvirt-dev", "make deps"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("bash", script)
			cmd.Env = append(os.Environ(), tt.env...)
			out, err := cmd.CombinedOutput()
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v; output:\n%s", err, tt.wantErr, out)
			}
			text := strings.TrimSpace(string(out))
			if !tt.wantErr {
				if text != "" {
					t.Fatalf("unexpected output: %q", text)
				}
				return
			}
			if n := strings.Count(text, "\n") + 1; n != 1 {
				t.Fatalf("want one line, got %d:\n%s", n, text)
			}
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("output %q does not name %q", text, w)
				}
			}
		})
	}
}
