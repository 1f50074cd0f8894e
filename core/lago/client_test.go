package lago

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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
	c.eopts.Logger.Info("hello from the test")
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

// TestEngineLogFansOut: the terminal's logger gets only what its level
// lets through; the log file also keeps the info lines.
func TestEngineLogFansOut(t *testing.T) {
	cfg, err := config.Load(config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "run.log")
	var term bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&term, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := New(Options{Config: cfg, LogFile: path, Logger: logger, PluginCacheFile: "-", PluginSearchPath: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	c.eopts.Logger.With("vm", "vm0").Info("vm type ready")
	c.eopts.Logger.Warn("something odd")
	c.Close()
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), "vm type ready") || !strings.Contains(string(b), "vm=vm0") || !strings.Contains(string(b), "something odd") {
		t.Fatalf("log file:\n%s", b)
	}
	if strings.Contains(term.String(), "vm type ready") || !strings.Contains(term.String(), "something odd") {
		t.Fatalf("terminal:\n%s", term.String())
	}
}
