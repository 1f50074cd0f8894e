// Command leasebench measures subnet lease acquisition under contention:
// LAGO_BENCH_LEASE_PROCS processes (default 32) start together and each
// leases LAGO_BENCH_LEASE_N subnets (default 1) from one fresh store. It
// prints "name: value unit" lines: the wall time from the start signal until
// every process holds its lease, and the worst and median single waits.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/lago-go/lago/core/lease"
)

func main() {
	if len(os.Args) == 5 && os.Args[1] == "child" {
		os.Exit(child(os.Args[2], os.Args[3], os.Args[4]))
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "leasebench:", err)
		os.Exit(1)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// child waits for the start file, leases, and prints its wait in
// nanoseconds: from seeing the start file to holding the lease.
func child(store, uuidPath, start string) int {
	uuid := filepath.Base(filepath.Dir(uuidPath))
	if err := os.WriteFile(uuidPath, []byte(uuid), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for {
		if _, err := os.Stat(start); err == nil {
			break
		}
		time.Sleep(200 * time.Microsecond)
	}
	n := envInt("LAGO_BENCH_LEASE_N", 1)
	t0 := time.Now()
	s := &lease.Store{Dir: store, LockTimeout: time.Minute}
	if _, err := s.AcquireN(context.Background(), uuidPath, uuid, make([]lease.Request, n)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(time.Since(t0).Nanoseconds())
	return 0
}

func run() error {
	procs := envInt("LAGO_BENCH_LEASE_PROCS", 32)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "leasebench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	store := filepath.Join(tmp, "subnets")
	start := filepath.Join(tmp, "start")

	waits := make([]time.Duration, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var last time.Time
	for i := range procs {
		pdir := filepath.Join(tmp, fmt.Sprintf("prefix%03d", i))
		if err := os.Mkdir(pdir, 0o755); err != nil {
			return err
		}
		cmd := exec.Command(self, "child", store, filepath.Join(pdir, "uuid"), start)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ns int64
			_, serr := fmt.Fscan(out, &ns)
			done := time.Now()
			if werr := cmd.Wait(); werr != nil {
				errs[i] = werr
				return
			}
			if serr != nil {
				errs[i] = serr
				return
			}
			waits[i] = time.Duration(ns)
			mu.Lock()
			if done.After(last) {
				last = done
			}
			mu.Unlock()
		}()
	}
	time.Sleep(time.Duration(procs) * 20 * time.Millisecond) // let every child reach the start line
	t0 := time.Now()
	if err := os.WriteFile(start, nil, 0o644); err != nil {
		return err
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("process %d: %w", i, err)
		}
	}
	entries, err := (&lease.Store{Dir: store}).List(context.Background())
	if err != nil {
		return err
	}
	want := procs * envInt("LAGO_BENCH_LEASE_N", 1)
	if len(entries) != want {
		return fmt.Errorf("store holds %d leases, want %d", len(entries), want)
	}
	slices.Sort(waits)
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }
	fmt.Printf("lease_processes: %d count\n", procs)
	fmt.Printf("lease_subnets_per_process: %d count\n", envInt("LAGO_BENCH_LEASE_N", 1))
	fmt.Printf("lease_wall: %s ms\n", ms(last.Sub(t0)))
	fmt.Printf("lease_wait_worst: %s ms\n", ms(waits[len(waits)-1]))
	fmt.Printf("lease_wait_median: %s ms\n", ms(waits[len(waits)/2]))
	fmt.Printf("lease_wait_best: %s ms\n", ms(waits[0]))
	return nil
}
