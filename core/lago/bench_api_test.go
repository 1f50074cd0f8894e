//go:build lagobench

// BenchmarkLoadRunTrue is run by test/bench/vms.sh (make bench) in the
// folder of a running environment, next to `lago shell vm0 true`.

package lago_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/lago-go/lago/core/lago"
	lagossh "github.com/lago-go/lago/core/ssh"
)

// BenchmarkLoadRunTrue is what a Go test does per command: Load the
// environment of the current folder and run `true` on vm0. It reports the
// per-call median (median-ms), the figure compared with the CLI's.
func BenchmarkLoadRunTrue(b *testing.B) {
	ctx := context.Background()
	var took []time.Duration
	for b.Loop() {
		t0 := time.Now()
		env, err := lago.Load(ctx, "")
		if err != nil {
			b.Fatal(err)
		}
		vm, err := env.VM("vm0")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := vm.Output(ctx, "true"); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(t0))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(took[0].Microseconds())/1000, "first-or-min-ms")
}

// BenchmarkSessionFloor is the floor of BenchmarkLoadRunTrue: `true` run
// on one ssh connection kept by the benchmark itself, with no lago code
// between (what any client pays for a session with a TCG guest).
func BenchmarkSessionFloor(b *testing.B) {
	ctx := context.Background()
	env, err := lago.Load(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	vm, err := env.VM("vm0")
	if err != nil {
		b.Fatal(err)
	}
	cl, err := lagossh.Dial(ctx, lagossh.Target{
		Addr: vm.Address, User: vm.SSHUser, Password: vm.RootPassword,
		KeyPath: filepath.Join(env.Path(), "id_rsa"), KnownHostsPath: filepath.Join(env.Path(), "known_hosts"),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	var took []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if code, err := cl.Run(ctx, []string{"true"}, nil, nil, nil); err != nil || code != 0 {
			b.Fatalf("true: %d %v", code, err)
		}
		took = append(took, time.Since(t0))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "median-ms")
}
