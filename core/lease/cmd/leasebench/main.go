// Command leasebench measures subnet lease acquisition under contention:
// LAGO_BENCH_LEASE_PROCS processes (default 32) start together and each
// leases LAGO_BENCH_LEASE_N subnets (default 1) from one fresh store. It
// prints "name: value unit" lines: the wall time from the start signal until
// every process holds its lease, and the worst and median single waits.
//
// The baseline, measured in the same run with the same processes, is the
// floor of any lease store that serializes writers on one lock: each
// process takes one blocking flock, writes and fsyncs one small file and
// releases the lock. lease_wall_vs_floor is lago's wall time over it.
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
	"syscall"
	"time"

	"github.com/lago-go/lago/core/lease"
)

func main() {
	if len(os.Args) == 5 && os.Args[1] == "child" {
		os.Exit(child(os.Args[2], os.Args[3], os.Args[4]))
	}
	if len(os.Args) == 5 && os.Args[1] == "floor" {
		os.Exit(floorChild(os.Args[2], os.Args[3], os.Args[4]))
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

// floorChild is the baseline's process: it waits for the start file, then
// takes one exclusive flock on the store's lock file, writes and fsyncs a
// file of its own, and unlocks, printing its wait like child.
func floorChild(store, uuidPath, start string) int {
	if err := os.MkdirAll(store, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for {
		if _, err := os.Stat(start); err == nil {
			break
		}
		time.Sleep(200 * time.Microsecond)
	}
	t0 := time.Now()
	if err := floorLease(store, filepath.Base(filepath.Dir(uuidPath))); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(time.Since(t0).Nanoseconds())
	return 0
}

func floorLease(store, name string) error {
	lock, err := os.OpenFile(filepath.Join(store, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing releases it too
	f, err := os.OpenFile(filepath.Join(store, name+".json"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(`{"uuid":"` + name + `"}`); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func run() error {
	procs := envInt("LAGO_BENCH_LEASE_PROCS", 32)
	tmp, err := os.MkdirTemp("", "leasebench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	wall, waits, err := round(filepath.Join(tmp, "lago"), "child", procs)
	if err != nil {
		return err
	}
	entries, err := (&lease.Store{Dir: filepath.Join(tmp, "lago", "subnets")}).List(context.Background())
	if err != nil {
		return err
	}
	want := procs * envInt("LAGO_BENCH_LEASE_N", 1)
	if len(entries) != want {
		return fmt.Errorf("store holds %d leases, want %d", len(entries), want)
	}
	floorWall, floorWaits, err := round(filepath.Join(tmp, "floor"), "floor", procs)
	if err != nil {
		return err
	}
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }
	fmt.Printf("lease_processes: %d count\n", procs)
	fmt.Printf("lease_subnets_per_process: %d count\n", envInt("LAGO_BENCH_LEASE_N", 1))
	fmt.Printf("lease_wall: %s ms\n", ms(wall))
	fmt.Printf("lease_wait_worst: %s ms\n", ms(waits[len(waits)-1]))
	fmt.Printf("lease_wait_median: %s ms\n", ms(waits[len(waits)/2]))
	fmt.Printf("lease_wait_best: %s ms\n", ms(waits[0]))
	fmt.Printf("floor_flock_write_fsync_wall: %s ms\n", ms(floorWall))
	fmt.Printf("floor_flock_write_fsync_wait_worst: %s ms\n", ms(floorWaits[len(floorWaits)-1]))
	fmt.Printf("lease_wall_vs_floor: %.2f ratio\n", float64(wall)/float64(floorWall))
	return nil
}

// round starts procs processes of mode (child or floor) under dir, lets them
// go at once, and returns the wall time until the last one held its lease
// and every process's own wait, sorted.
func round(dir, mode string, procs int) (time.Duration, []time.Duration, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, nil, err
	}
	tmp := dir
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
			return 0, nil, err
		}
		cmd := exec.Command(self, mode, store, filepath.Join(pdir, "uuid"), start)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return 0, nil, err
		}
		if err := cmd.Start(); err != nil {
			return 0, nil, err
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
		return 0, nil, err
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return 0, nil, fmt.Errorf("%s process %d: %w", mode, i, err)
		}
	}
	slices.Sort(waits)
	return last.Sub(t0), waits, nil
}
