package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLenient: a Go program reads the CLI's files without knowing the
// CLI's verb sections, but a bad value of a key it knows is still an
// error naming file and line, and [lago] keys are still checked.
func TestLenient(t *testing.T) {
	tests := []struct {
		name, ini string
		lenient   bool
		wantErr   string
	}{
		{"verb section refused by default", "[destroy]\nyes = True\n", false, "unknown section [destroy]"},
		{"verb section skipped", "[destroy]\nyes = True\n", true, ""},
		{"unknown init key skipped", "[init]\nsome_flag = 1\n", true, ""},
		{"unknown init key refused by default", "[init]\nsome_flag = 1\n", false, `unknown key "some_flag"`},
		{"lago keys still checked", "[lago]\nno_such = 1\n", true, `lago.conf:2: unknown key "no_such"`},
		{"known values still checked", "[lago]\nssh_tries = soon\n", true, "lago.conf:2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "lago.conf")
			if err := os.WriteFile(path, []byte(tt.ini), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := Load(Options{Files: []string{path}, Lenient: tt.lenient})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if c == nil {
					t.Fatal("nil config")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
