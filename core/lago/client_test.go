package lago

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lago-go/lago/core/config"
	"github.com/lago-go/lago/core/errs"
)

// TestLogFile: Options.LogFile is opened 0600 (plugins may log connection
// details) and takes the engine's log; a file that cannot be opened is the
// user's error, before anything starts.
func TestLogFile(t *testing.T) {
	cfg, err := config.Load(config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "run.log")
	c, err := New(Options{Config: cfg, LogFile: path, PluginCacheFile: "-", PluginSearchPath: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	c.opts.Logger.Info("hello from the test")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("log file: %v %v, want mode 0600", st, err)
	}
	if b, _ := os.ReadFile(path); len(b) == 0 {
		t.Fatal("the engine's log did not reach LogFile")
	}
	_, err = New(Options{Config: cfg, LogFile: filepath.Join(t.TempDir(), "no", "such", "dir", "x.log")})
	if err == nil || !errs.IsUser(err) {
		t.Fatalf("unopenable log file: %v, want a user error", err)
	}
}
