// Package lagotest gives a Go test a lago environment in one call:
//
//	func TestCluster(t *testing.T) {
//		env := lagotest.Up(t, lagotest.Options{InitFile: "testdata/LagoInitFile"})
//		vm, err := env.VM("vm0")
//		...
//	}
//
// Up initializes the environment in a scratch workdir, starts it, and
// registers a t.Cleanup that, when the test failed, first collects every
// VM's artifacts (into $LAGO_TEST_ARTIFACTS/<test> or
// lago-artifacts/<test>) and then destroys the environment, so nothing
// outlives the test. LAGO_TEST_KEEP=1 keeps a failed test's environment
// for a look (lago status in the printed workdir; lago destroy there).
package lagotest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/lago-go/lago/core/lago"
)

// TB is the part of testing.TB that Up uses.
type TB interface {
	Helper()
	Name() string
	Failed() bool
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	Context() context.Context
}

// Options say what environment a test gets.
type Options struct {
	// InitFile is the init file (relative to the test's package folder);
	// InitFileData, when set, is its content.
	InitFile     string
	InitFileData []byte
	// Init holds further init options (template repository, skip
	// bootstrap, ...); its InitFile, InitFileData and Workdir are
	// ignored.
	Init lago.InitOptions
	// Start holds the start options; NoStart leaves the VMs off.
	Start   lago.StartOptions
	NoStart bool
	// Client is the lago Client to use; nil means lago.Default() (one
	// per test binary, shared by every test).
	Client *lago.Client
	// Timeout bounds init and start together (default 20 minutes).
	Timeout time.Duration
	// ArtifactsDir is where a failed test's artifacts go (default
	// $LAGO_TEST_ARTIFACTS, else ./lago-artifacts), in a folder named
	// after the test.
	ArtifactsDir string
}

// Up initializes and starts an environment for t and returns it; any
// failure ends the test (after removing what was made). The environment
// is destroyed when the test ends.
func Up(t TB, o Options) *lago.Env {
	t.Helper()
	c := o.Client
	if c == nil {
		var err error
		if c, err = lago.Default(); err != nil {
			t.Fatalf("lagotest: %v", err)
		}
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 20 * time.Minute
	}
	dir, err := scratch(t.Name())
	if err != nil {
		t.Fatalf("lagotest: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	io := o.Init
	io.InitFile, io.InitFileData = o.InitFile, o.InitFileData
	if io.InitFile != "" {
		if io.InitFile, err = filepath.Abs(io.InitFile); err != nil {
			t.Fatalf("lagotest: %v", err)
		}
	}
	io.Workdir = filepath.Join(dir, ".lago")
	start := time.Now()
	env, err := c.Init(ctx, io)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("lagotest: init: %v", err)
	}
	t.Cleanup(func() { down(t, env, dir, o.ArtifactsDir) })
	if !o.NoStart {
		if err := env.Start(ctx, o.Start); err != nil {
			t.Fatalf("lagotest: start: %v", err)
		}
	}
	t.Logf("lagotest: environment %s up in %s", env.Path(), time.Since(start).Round(time.Millisecond))
	return env
}

// down collects a failed test's artifacts, then destroys the environment
// (unless LAGO_TEST_KEEP=1) and its scratch folder.
func down(t TB, env *lago.Env, dir, artifacts string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if t.Failed() {
		out := artifactsDir(artifacts, t.Name())
		if _, err := env.Collect(ctx, out, lago.CollectOptions{}); err != nil {
			t.Logf("lagotest: collect artifacts into %s: %v", out, err)
		} else {
			t.Logf("lagotest: artifacts of the failed test in %s", out)
		}
		if os.Getenv("LAGO_TEST_KEEP") == "1" {
			t.Logf("lagotest: LAGO_TEST_KEEP=1: environment kept in %s (lago destroy --yes there removes it)", dir)
			return
		}
	}
	if err := env.Destroy(ctx); err != nil {
		t.Logf("lagotest: destroy %s: %v (lago destroy --yes in %s removes what is left)", env.Path(), err, dir)
		return
	}
	os.RemoveAll(dir)
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// scratch makes the test's workdir parent: under $LAGO_TEST_WORKDIR or
// the temporary folder, traversable by qemu (which runs as its own user
// and must reach the disks).
func scratch(test string) (string, error) {
	base := os.Getenv("LAGO_TEST_WORKDIR")
	if base == "" {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, "lagotest-"+unsafeName.ReplaceAllString(test, "_")+"-")
	if err != nil {
		return "", fmt.Errorf("scratch folder: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("scratch folder: %w", err)
	}
	return dir, nil
}

func artifactsDir(base, test string) string {
	if base == "" {
		base = os.Getenv("LAGO_TEST_ARTIFACTS")
	}
	if base == "" {
		base = "lago-artifacts"
	}
	return filepath.Join(base, unsafeName.ReplaceAllString(test, "_"))
}
