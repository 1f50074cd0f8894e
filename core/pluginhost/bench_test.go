package pluginhost

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

var (
	benchOnce sync.Once
	benchDir  string
	benchErr  error
)

// outputJSONPlugin builds plugins/output-json once into a temp folder and
// returns the folder.
func outputJSONPlugin(b *testing.B) string {
	benchOnce.Do(func() {
		benchDir, benchErr = os.MkdirTemp("", "pluginhost-bench")
		if benchErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(benchDir, "lago-plugin-output-json"), ".")
		cmd.Dir = filepath.Join("..", "..", "plugins", "output-json")
		cmd.Stderr = os.Stderr
		benchErr = cmd.Run()
	})
	if benchErr != nil {
		b.Fatalf("build output-json: %v", benchErr)
	}
	return benchDir
}

var benchDoc = []byte(`{"Prefix": {"Base directory": "/home/u/.lago/default", "UUID": "fe689d3c39d011e5b22b54ee755a00ca", "VMs": {"vm0": {"distro": "cirros", "status": "down"}}}}`)

func reportMedian(b *testing.B, d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	if len(d) > 0 {
		b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "ms-median")
	}
}

// BenchmarkFirstCall measures what a `lago -f json status` pays for the
// plugin: discovery from a warm cache, spawn, go-plugin handshake,
// Configure and one Format. Close (reaping) is not timed.
func BenchmarkFirstCall(b *testing.B) {
	dir := outputJSONPlugin(b)
	cache := filepath.Join(b.TempDir(), "plugins.json")
	warm := New(Options{SearchPath: []string{dir}, CacheFile: cache})
	if _, err := warm.Discover(); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var times []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		m := New(Options{SearchPath: []string{dir}, CacheFile: cache, Logger: hclog.NewNullLogger()})
		o, err := m.Output(ctx, "json")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := o.Format(ctx, benchDoc); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
		b.StopTimer()
		m.Close()
		b.StartTimer()
	}
	b.StopTimer()
	reportMedian(b, times)
}

// BenchmarkSpawnTrueBaseline is the floor for BenchmarkFirstCall on this
// machine: fork+exec+wait of /bin/true.
func BenchmarkSpawnTrueBaseline(b *testing.B) {
	var times []time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
	}
	reportMedian(b, times)
}

// BenchmarkDescribeCold is one `lago-plugin-output-json describe` run, the
// cost of a describe-cache miss.
func BenchmarkDescribeCold(b *testing.B) {
	dir := outputJSONPlugin(b)
	for i := 0; i < b.N; i++ {
		m := New(Options{SearchPath: []string{dir}, CacheFile: "-"})
		if _, err := m.Discover(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiscoverWarm is discovery from a warm cache (what `lago --help`
// pays): no process is started.
func BenchmarkDiscoverWarm(b *testing.B) {
	dir := outputJSONPlugin(b)
	cache := filepath.Join(b.TempDir(), "plugins.json")
	if _, err := New(Options{SearchPath: []string{dir}, CacheFile: cache}).Discover(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := New(Options{SearchPath: []string{dir}, CacheFile: cache}).Discover(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWarmFormat is one Format round trip to a running plugin.
func BenchmarkWarmFormat(b *testing.B) {
	dir := outputJSONPlugin(b)
	m := New(Options{SearchPath: []string{dir}, CacheFile: filepath.Join(b.TempDir(), "plugins.json"), Logger: hclog.NewNullLogger()})
	defer m.Close()
	ctx := context.Background()
	o, err := m.Output(ctx, "json")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := o.Format(ctx, benchDoc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClose is the reaping a command pays at its end: go-plugin's
// graceful shutdown of one running plugin and the wait for its exit.
func BenchmarkClose(b *testing.B) {
	dir := outputJSONPlugin(b)
	cache := filepath.Join(b.TempDir(), "plugins.json")
	ctx := context.Background()
	var times []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		m := New(Options{SearchPath: []string{dir}, CacheFile: cache, Logger: hclog.NewNullLogger()})
		if _, err := m.Output(ctx, "json"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		m.Close()
		times = append(times, time.Since(start))
	}
	reportMedian(b, times)
}
