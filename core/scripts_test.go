package core_test

import (
	"fmt"
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

// TestE2EJudgeFailsSkips checks how test/e2e/run.sh judges a suite: under
// the runner every prerequisite is provided, so a skipped test or a run
// without any test is a failure, never a pass.
func TestE2EJudgeFailsSkips(t *testing.T) {
	lib, err := filepath.Abs(filepath.Join("..", "test", "e2e", "judge.sh"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		rc     int
		log    string
		pass   bool
		prefix string
	}{
		{"all passed", 0, "--- PASS: TestA (1.00s)\n    --- PASS: TestA/sub (0.5s)\n", true, "PASS (2 passed, 0 skipped)"},
		{"one skipped", 0, "--- PASS: TestA (1.00s)\n--- SKIP: TestB (0.00s)\n", false, "FAIL (1 skipped, 1 passed"},
		{"nested skip", 0, "--- PASS: TestA (1.00s)\n    --- SKIP: TestA/remote (0.00s)\n", false, "FAIL (1 skipped"},
		{"no test ran", 0, "testing: warning: no tests to run\nPASS\n", false, "FAIL (no test ran)"},
		{"failed", 1, "--- FAIL: TestA (1.00s)\n--- PASS: TestB (1.00s)\n", false, "FAIL (1 failed, 1 passed, 0 skipped)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "suite.log")
			if err := os.WriteFile(log, []byte(tt.log), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("bash", "-c", `. "$1"; e2e_judge "$2" "$3"`, "judge", lib, fmt.Sprint(tt.rc), log).CombinedOutput()
			if (err == nil) != tt.pass {
				t.Fatalf("judged pass=%v (err %v), want %v; output %q", err == nil, err, tt.pass, out)
			}
			if got := strings.TrimSpace(string(out)); !strings.HasPrefix(got, tt.prefix) {
				t.Fatalf("verdict %q, want prefix %q", got, tt.prefix)
			}
		})
	}
}
