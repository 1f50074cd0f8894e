package pluginhost

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lago-go/lago/core/pluginhost/discovery"
	commandv1 "github.com/lago-go/lago/proto/lago/command/v1"
	hostv1 "github.com/lago-go/lago/proto/lago/host/v1"
	"github.com/lago-go/lago/sdk"
)

// testPluginBin is the testdata/testplugin binary built once by TestMain.
var testPluginBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pluginhost-test")
	if err != nil {
		panic(err)
	}
	testPluginBin = filepath.Join(dir, "testplugin")
	cmd := exec.Command("go", "build", "-o", testPluginBin, "./testdata/testplugin")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		panic("build test plugin: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// install copies the test plugin to dir/lago-plugin-name with mode.
func install(t *testing.T, dir, name string, mode os.FileMode) string {
	t.Helper()
	b, err := os.ReadFile(testPluginBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, discovery.Prefix+name)
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // not subject to umask
		t.Fatal(err)
	}
	return p
}

// counter points LAGO_TEST_COUNT_FILE at a fresh file and returns a func
// counting the recorded invocations of the given mode.
func counter(t *testing.T) func(mode string) int {
	f := filepath.Join(t.TempDir(), "count")
	t.Setenv("LAGO_TEST_COUNT_FILE", f)
	return func(mode string) int {
		b, _ := os.ReadFile(f)
		n := 0
		for _, l := range strings.Split(string(b), "\n") {
			if l == mode {
				n++
			}
		}
		return n
	}
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func newHost(t *testing.T, opts Options) (*Host, *logBuf) {
	t.Helper()
	logs := &logBuf{}
	if opts.Logger == nil {
		opts.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug})
	}
	if opts.CacheFile == "" {
		opts.CacheFile = filepath.Join(t.TempDir(), "plugins.json")
	}
	m := New(opts)
	t.Cleanup(m.Close)
	return m, logs
}

func TestDiscoveryOrderShadowingAndFilters(t *testing.T) {
	counter(t)
	root := t.TempDir()
	d1, d2, d3 := filepath.Join(root, "d1"), filepath.Join(root, "d2"), filepath.Join(root, "missing")
	first := install(t, d1, "good", 0o755)
	second := install(t, d2, "good", 0o755)
	other := install(t, d2, "other", 0o755)
	install(t, d2, "noexec", 0o644)
	if err := os.Mkdir(filepath.Join(d2, discovery.Prefix+"dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d2, "not-a-plugin"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	m, logs := newHost(t, Options{SearchPath: []string{d3, d1, d2}})
	infos, err := m.Discover()
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		name, path string
		usable     bool
		shadowedBy string
	}
	want := []row{{"good", first, true, ""}, {"good", second, false, first}, {"other", other, true, ""}}
	if len(infos) != len(want) {
		t.Fatalf("got %d infos: %+v", len(infos), infos)
	}
	for i, w := range want {
		got := row{infos[i].Name, infos[i].Path, infos[i].Usable(), infos[i].ShadowedBy}
		if got != w {
			t.Errorf("info %d = %+v, want %+v", i, got, w)
		}
	}
	if !strings.Contains(logs.String(), "plugin shadowed") {
		t.Errorf("shadowing not logged: %s", logs.String())
	}
	comps, err := m.Components(sdk.KindOutput)
	if err != nil || len(comps) != 2 || comps[0].Name != "upper" {
		t.Fatalf("Components = %+v, %v", comps, err)
	}
}

func TestDefaultSearchPath(t *testing.T) {
	t.Setenv("LAGO_PLUGIN_PATH", "/a:/b")
	t.Setenv("XDG_DATA_HOME", "/data")
	dir := t.TempDir()
	exe := filepath.Join(dir, "bin", "lago")
	if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "lago-link")
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(exe, nil, 0o755)
	got := DefaultSearchPath(link)
	real, _ := filepath.EvalSymlinks(exe)
	want := []string{"/a", "/b", filepath.Join(filepath.Dir(real), "..", "libexec", "lago", "plugins"), "/data/lago/plugins", "/usr/local/libexec/lago/plugins", "/usr/libexec/lago/plugins"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("DefaultSearchPath = %q, want %q", got, want)
	}
}

func TestWorldWritableRefused(t *testing.T) {
	counter(t)
	dir := t.TempDir()
	install(t, dir, "good", 0o777)
	m, logs := newHost(t, Options{SearchPath: []string{dir}})
	infos, _ := m.Discover()
	if len(infos) != 1 || !infos[0].Refused || !strings.Contains(infos[0].Reason, "world-writable") {
		t.Fatalf("infos = %+v", infos)
	}
	if !strings.Contains(logs.String(), "refusing untrusted plugin") {
		t.Errorf("no warning logged: %s", logs.String())
	}
	_, err := m.Output(context.Background(), "upper")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "world-writable") {
		t.Fatalf("Output err = %v", err)
	}
}

func TestPins(t *testing.T) {
	counter(t)
	dir := t.TempDir()
	path := install(t, dir, "good", 0o755)
	sum, err := discovery.FileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		pin     string
		wantErr bool
	}{
		{"match", sum, false},
		{"mismatch", strings.Repeat("0", 64), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newHost(t, Options{SearchPath: []string{dir}, Pins: map[string]string{"good": tt.pin}})
			o, err := m.Output(context.Background(), "upper")
			if tt.wantErr {
				if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "does not match the pinned") {
					t.Fatalf("err = %v, want pin mismatch", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, err := o.Format(context.Background(), []byte("abc")); err != nil || string(got) != "ABC" {
				t.Fatalf("Format = %q, %v", got, err)
			}
		})
	}
}

func TestPinCheckedAgainAtStart(t *testing.T) {
	count := counter(t)
	dir := t.TempDir()
	path := install(t, dir, "good", 0o755)
	sum, _ := discovery.FileSHA256(path)
	m, _ := newHost(t, Options{SearchPath: []string{dir}, Pins: map[string]string{"good": sum}})
	if _, err := m.Discover(); err != nil {
		t.Fatal(err)
	}
	// Swap the binary after discovery: the start hashes the file it runs
	// and refuses it.
	b, _ := os.ReadFile(path)
	b = append(b, 0)
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := m.Output(context.Background(), "upper")
	var pm *discovery.PinMismatchError
	if !errors.As(err, &pm) || pm.Pinned != sum || !strings.Contains(err.Error(), "plugin good: sha256") {
		t.Fatalf("err = %v, want a pin mismatch", err)
	}
	if n := count("serve"); n != 0 {
		t.Fatalf("the swapped binary started %d times", n)
	}
}

func TestDescribeCache(t *testing.T) {
	count := counter(t)
	dir := t.TempDir()
	path := install(t, dir, "good", 0o755)
	cache := filepath.Join(t.TempDir(), "sub", "plugins.json")
	discover := func() []Info {
		t.Helper()
		m, _ := newHost(t, Options{SearchPath: []string{dir}, CacheFile: cache})
		infos, err := m.Discover()
		if err != nil || len(infos) != 1 || !infos[0].Usable() || len(infos[0].Components) != 3 {
			t.Fatalf("Discover = %+v, %v", infos, err)
		}
		return infos
	}
	steps := []struct {
		name   string
		before func()
		want   int // describe runs so far
	}{
		{"cold", func() {}, 1},
		{"warm: no process", func() {}, 1},
		{"mtime changed", func() {
			later := time.Now().Add(time.Hour)
			os.Chtimes(path, later, later)
		}, 2},
		{"warm again", func() {}, 2},
		{"corrupt cache ignored", func() { os.WriteFile(cache, []byte("{not json"), 0o644) }, 3},
		{"rewritten", func() {}, 3},
	}
	for _, s := range steps {
		s.before()
		discover()
		if got := count("describe"); got != s.want {
			t.Fatalf("%s: %d describe runs, want %d", s.name, got, s.want)
		}
		if got := count("serve"); got != 0 {
			t.Fatalf("%s: %d plugin processes started by discovery", s.name, got)
		}
	}
}

func TestLazyStartOncePerBinary(t *testing.T) {
	count := counter(t)
	dir := t.TempDir()
	install(t, dir, "good", 0o755)
	m, _ := newHost(t, Options{SearchPath: []string{dir}, Host: fakeHost{}})
	if n := count("serve"); n != 0 {
		t.Fatalf("%d processes before first use", n)
	}
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		o, err := m.Output(ctx, "upper")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := o.Format(ctx, []byte("x")); err != nil || string(got) != "X" {
			t.Fatalf("Format = %q, %v", got, err)
		}
	}
	c, err := m.Command(ctx, "greet")
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code, err := c.Execute(ctx, &commandv1.ExecuteRequest{Verb: "greet", Args: []string{"you"}}, &out, &errb)
	if err != nil || code != 4 || out.String() != "hello you from /prefix" || errb.String() != "to stderr" {
		t.Fatalf("Execute = %d, %v, %q, %q", code, err, out.String(), errb.String())
	}
	if n := count("serve"); n != 1 {
		t.Fatalf("%d plugin processes, want 1 per binary", n)
	}
	if _, err := m.Command(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown verb err = %v", err)
	}
}

// TestInstancesKeepTheirSettings: two named instances of one provider
// component with different settings (local and remote libvirt) must not
// share one configuration; equal settings share a process.
func TestInstancesKeepTheirSettings(t *testing.T) {
	count := counter(t)
	dir := t.TempDir()
	install(t, dir, "good", 0o755)
	m, _ := newHost(t, Options{SearchPath: []string{dir}})
	ctx := context.Background()
	state := func(name string) string {
		t.Helper()
		p, err := m.Provider(ctx, "echo", map[string]string{"name": name})
		if err != nil {
			t.Fatal(err)
		}
		s, err := p.VMState(ctx, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := state("local"), state("remote")
	if a != "local" || b != "remote" || state("local") != "local" {
		t.Fatalf("instances answered %q and %q", a, b)
	}
	if n := count("serve"); n != 2 {
		t.Fatalf("%d plugin processes for 2 instances, want 2", n)
	}
}

func pidOf(t *testing.T, m *Host, name string) int {
	t.Helper()
	m.mu.Lock()
	p := m.procs[name]
	m.mu.Unlock()
	if p == nil || p.plugin == nil {
		t.Fatalf("plugin %s not running", name)
	}
	pid, err := strconv.Atoi(p.plugin.ID())
	if err != nil {
		t.Fatalf("plugin %s: id %q: %v", name, p.plugin.ID(), err)
	}
	return pid
}

func TestCrashMidCall(t *testing.T) {
	counter(t)
	dir := t.TempDir()
	install(t, dir, "good", 0o755)
	tests := []struct {
		name     string
		doc      string
		kill     bool
		wantTail string
	}{
		{name: "panic in a goroutine", doc: "crash", wantTail: "panic: dying now: disk on fire"},
		{name: "exit 3", doc: "exit"},
		{name: "sigkill", doc: "sleep", kill: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newHost(t, Options{SearchPath: []string{dir}})
			o, err := m.Output(context.Background(), "upper")
			if err != nil {
				t.Fatal(err)
			}
			if tt.kill {
				pid := pidOf(t, m, "good")
				go func() {
					time.Sleep(100 * time.Millisecond)
					syscall.Kill(pid, syscall.SIGKILL)
				}()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err = o.Format(ctx, []byte(tt.doc))
			var pe *PluginError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v (%T), want *PluginError", err, err)
			}
			if ctx.Err() != nil {
				t.Fatal("call hung until the test timeout")
			}
			if pe.Plugin != "good" || !pe.Exited || !strings.Contains(err.Error(), "plugin good") {
				t.Fatalf("err = %v", err)
			}
			if tt.wantTail != "" && !strings.Contains(err.Error(), tt.wantTail) {
				t.Fatalf("err lacks the stderr tail %q: %v", tt.wantTail, err)
			}
			// The next call fails the same way instead of hanging.
			if _, err := o.Format(ctx, []byte("x")); !errors.As(err, &pe) {
				t.Fatalf("call after crash: %v", err)
			}
		})
	}
}

func TestStartFailureNamesPlugin(t *testing.T) {
	count := counter(t)
	t.Setenv("LAGO_TEST_FAIL_SERVE", "1")
	dir := t.TempDir()
	install(t, dir, "good", 0o755)
	m, _ := newHost(t, Options{SearchPath: []string{dir}})
	_, err := m.Output(context.Background(), "upper")
	var pe *PluginError
	if !errors.As(err, &pe) || pe.Plugin != "good" || !strings.Contains(err.Error(), "cannot read /etc/testplugin.conf") {
		t.Fatalf("err = %v, want a start failure naming the plugin with its stderr", err)
	}
	// The failure is remembered: no second process is spawned.
	if _, err2 := m.Output(context.Background(), "upper"); err2 == nil {
		t.Fatal("second Output succeeded")
	}
	if n := count("serve"); n != 1 {
		t.Fatalf("%d start attempts, want 1", n)
	}
}

func TestCloseReaps(t *testing.T) {
	counter(t)
	dir := t.TempDir()
	install(t, dir, "good", 0o755)
	m, _ := newHost(t, Options{SearchPath: []string{dir}})
	o, err := m.Output(context.Background(), "upper")
	if err != nil {
		t.Fatal(err)
	}
	pid := pidOf(t, m, "good")
	// A call in flight when Close runs must end, not hang.
	done := make(chan error, 1)
	go func() { _, err := o.Format(context.Background(), []byte("sleep")); done <- err }()
	time.Sleep(100 * time.Millisecond)
	m.Close()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("plugin pid %d still exists after Close (kill 0: %v)", pid, err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("in-flight call succeeded after Close")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight call hung after Close")
	}
	m.Close() // twice is fine
	if _, err := m.Output(context.Background(), "upper"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Output after Close err = %v", err)
	}
}

func TestCloseWhenDone(t *testing.T) {
	counter(t)
	dir := t.TempDir()
	install(t, dir, "good", 0o755)
	m, logs := newHost(t, Options{SearchPath: []string{dir}})
	ctx, cancel := context.WithCancel(context.Background())
	stop := m.CloseWhenDone(ctx)
	defer stop()
	o, err := m.Output(context.Background(), "upper")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Format(context.Background(), []byte("log me")); err != nil {
		t.Fatal(err)
	}
	pid := pidOf(t, m, "good")
	// A call that ignores ctx (context.Background) is still ended by the
	// Manager closing when ctx is cancelled, like a Ctrl-C.
	done := make(chan error, 1)
	go func() { _, err := o.Format(context.Background(), []byte("sleep")); done <- err }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("call not ended by cancelling the Host's context")
	}
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("plugin %d survived the cancellation: %v", pid, err)
	}
	// The plugin's own log line reached the Host's logger under its name.
	if l := logs.String(); !strings.Contains(l, "formatting") || !strings.Contains(l, "lago-plugin-good") {
		t.Fatalf("plugin log line missing from the host log:\n%s", l)
	}
}

func TestCancelledCall(t *testing.T) {
	counter(t)
	dir := t.TempDir()
	install(t, dir, "good", 0o755)
	m, _ := newHost(t, Options{SearchPath: []string{dir}})
	o, err := m.Output(context.Background(), "upper")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := o.Format(ctx, []byte("sleep")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if got, err := o.Format(context.Background(), []byte("y")); err != nil || string(got) != "Y" {
		t.Fatalf("plugin unusable after a cancelled call: %q, %v", got, err)
	}
}

func TestReattach(t *testing.T) {
	counter(t)
	cmd := exec.Command(testPluginBin)
	cmd.Env = append(os.Environ(), sdk.DebugEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(ReattachEnv, `{"byhand": `+line+`}`)
	m, _ := newHost(t, Options{SearchPath: []string{}})
	o, err := m.Output(context.Background(), "upper")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := o.Format(context.Background(), []byte("r")); err != nil || string(got) != "R" {
		t.Fatalf("Format = %q, %v", got, err)
	}
	m.Close()
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("Close killed the plugin started by hand: %v", err)
	}
}

type fakeHost struct{}

func (fakeHost) Exec(context.Context, string, []string, []byte, io.Writer, io.Writer) (int, error) {
	return 0, sdk.ErrNotImplemented
}
func (fakeHost) CopyTo(context.Context, string, string, string) error   { return sdk.ErrNotImplemented }
func (fakeHost) CopyFrom(context.Context, string, string, string) error { return sdk.ErrNotImplemented }
func (fakeHost) Environment(context.Context) (*hostv1.GetEnvironmentResponse, error) {
	return &hostv1.GetEnvironmentResponse{PrefixPath: "/prefix"}, nil
}
func (fakeHost) Progress(context.Context, string, float64) error { return nil }
func (fakeHost) Log(context.Context, string, string) error       { return nil }
