package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lago-go/lago/cmd/lago/internal/cli"
	"github.com/lago-go/lago/core/config"
	"github.com/lago-go/lago/core/pluginhost/discovery"
	"github.com/lago-go/lago/core/prefix"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestPluginWarningOnceInLagoStyle: a plugin that logs a warning and
// returns it (the libvirt provider's domain_type auto on a host without
// KVM) shows it to the user once, as "lago: warning: ...", even when a
// second call and a second process of the plugin return it again; its
// raw hclog lines land in the prefix log only.
func TestPluginWarningOnceInLagoStyle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the test plugin")
	}
	plugins := t.TempDir()
	bin := filepath.Join(plugins, discovery.Prefix+"good")
	build := exec.Command("go", "build", "-o", bin, "github.com/lago-go/lago/core/pluginhost/testdata/testplugin")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the test plugin: %v\n%s", err, out)
	}
	pfx := t.TempDir()
	if err := os.WriteFile(filepath.Join(pfx, prefix.InitializedFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// A prefix has its logs folder from the start (prefix.Create).
	if err := os.Mkdir(filepath.Join(pfx, prefix.LogsDir), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.Options{Environ: []string{"LAGO_PREFIX_PATH=" + pfx}})
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuf{}
	h := newPluginHost(cli.HostOptions{SearchPath: []string{plugins}, CacheFile: filepath.Join(t.TempDir(), "cache.json"),
		LogLevel: "info", Stderr: stderr, Config: cfg}, nil)
	m := h.(clientHost).c.Plugins()
	ctx := context.Background()
	for _, settings := range []map[string]string{{"name": "warn"}, {"name": "warn"}, {"name": "warn", "other": "instance"}} {
		p, err := m.Provider(ctx, "echo", settings)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.VMState(ctx, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	h.Close()
	want := "lago: warning: domain_type auto: using qemu (TCG emulation, slow) instead of kvm: no kvm here\n"
	if got := stderr.String(); got != want {
		t.Fatalf("stderr:\n%s\nwant exactly:\n%s", got, want)
	}
	logFile := filepath.Join(pfx, prefix.LogsDir, prefix.LogFile)
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "[WARN]  lago-plugin-good: domain_type auto: using qemu"); n != 3 {
		t.Fatalf("%d raw plugin warnings in %s, want one per call:\n%s", n, logFile, b)
	}
	if st, err := os.Stat(logFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("prefix log mode: %v, %v; want 0600", st.Mode(), err)
	}
}
