package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The concurrency tests re-execute the test binary as separate processes,
// because flock only excludes across open files, and real users run separate
// lago processes.
const childEnv = "LAGO_LEASE_TEST_CHILD"

type childResult struct {
	UUIDPath string `json:"uuid_path"`
	Octets   []int  `json:"octets"`
	Err      string `json:"err,omitempty"`
	Full     bool   `json:"full,omitempty"`
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		if u := os.Getenv("LAGO_LEASE_UMASK"); u != "" {
			n, _ := strconv.ParseUint(u, 8, 32)
			syscall.Umask(int(n))
		}
		os.Exit(child())
	}
	os.Exit(m.Run())
}

// child leases LAGO_LEASE_N subnets in one AcquireN, after waiting for the
// parent's start file so that all children contend at once, and prints the
// outcome as JSON.
func child() int {
	dir, uuidPath, start := os.Getenv("LAGO_LEASE_DIR"), os.Getenv("LAGO_LEASE_UUID_PATH"), os.Getenv("LAGO_LEASE_START")
	n, _ := strconv.Atoi(os.Getenv("LAGO_LEASE_N"))
	uuid := filepath.Base(filepath.Dir(uuidPath))
	if err := os.WriteFile(uuidPath, []byte(uuid), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(start); err == nil {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "start file never appeared")
			return 3
		}
	}
	s := &Store{Dir: dir, LockTimeout: 60 * time.Second}
	ls, err := s.AcquireN(context.Background(), uuidPath, uuid, make([]Request, n))
	res := childResult{UUIDPath: uuidPath, Octets: octets(ls)}
	if err != nil {
		res.Err, res.Full = err.Error(), errors.Is(err, ErrFull)
	}
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

// runChildren starts procs processes that each lease n subnets from one store
// and returns their results.
func runChildren(t *testing.T, store string, procs, n int) []childResult {
	t.Helper()
	start := filepath.Join(t.TempDir(), "start")
	cmds := make([]*exec.Cmd, procs)
	outs := make([][]byte, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for i := range cmds {
		pdir := filepath.Join(t.TempDir(), fmt.Sprintf("prefix%02d", i))
		if err := os.MkdirAll(pdir, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=1",
			"LAGO_LEASE_DIR="+store,
			"LAGO_LEASE_UUID_PATH="+filepath.Join(pdir, "uuid"),
			"LAGO_LEASE_START="+start,
			"LAGO_LEASE_N="+strconv.Itoa(n))
		cmds[i] = cmd
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = cmd.Output()
		}()
	}
	time.Sleep(200 * time.Millisecond) // let the processes reach the barrier
	if err := os.WriteFile(start, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	res := make([]childResult, procs)
	for i := range res {
		if errs[i] != nil {
			t.Fatalf("child %d: %v", i, errs[i])
		}
		if err := json.Unmarshal(outs[i], &res[i]); err != nil {
			t.Fatalf("child %d output %q: %v", i, outs[i], err)
		}
	}
	return res
}

// checkStore asserts that the store holds exactly the leases the children
// reported, each once, and that every one is live.
func checkStore(t *testing.T, store string, res []childResult) {
	t.Helper()
	owner := map[int]string{}
	for _, r := range res {
		for _, o := range r.Octets {
			if prev, dup := owner[o]; dup {
				t.Fatalf("subnet %d handed to both %s and %s", o, prev, r.UUIDPath)
			}
			owner[o] = r.UUIDPath
		}
	}
	entries, err := (&Store{Dir: store}).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(owner) {
		t.Fatalf("store holds %d leases, children reported %d", len(entries), len(owner))
	}
	for _, e := range entries {
		o := int(e.Subnet.Addr().As4()[2])
		if !e.Live || e.UUIDPath != owner[o] {
			t.Fatalf("lease %s: holder %s live=%v, reported to %s", e.File, e.UUIDPath, e.Live, owner[o])
		}
	}
	matches, _ := filepath.Glob(filepath.Join(store, ".*tmp*"))
	if len(matches) != 0 {
		t.Fatalf("temporary files left in the store: %v", matches)
	}
}

func TestConcurrentProcessesOneSubnetEach(t *testing.T) {
	store := filepath.Join(t.TempDir(), "subnets")
	res := runChildren(t, store, 32, 1)
	for _, r := range res {
		if r.Err != "" || len(r.Octets) != 1 {
			t.Fatalf("child %s: octets %v err %s", r.UUIDPath, r.Octets, r.Err)
		}
	}
	checkStore(t, store, res)
}

// 32 processes asking for 2 subnets each need 64 of the 56: exactly 28 must
// succeed and 4 fail cleanly as full, leaving no partial lease behind.
func TestConcurrentProcessesOverfillStore(t *testing.T) {
	store := filepath.Join(t.TempDir(), "subnets")
	res := runChildren(t, store, 32, 2)
	ok, full := 0, 0
	for _, r := range res {
		switch {
		case r.Err == "" && len(r.Octets) == 2:
			ok++
		case r.Full:
			full++
		default:
			t.Fatalf("child %s: octets %v err %s", r.UUIDPath, r.Octets, r.Err)
		}
	}
	if total := LastOctet - FirstOctet + 1; ok != total/2 || full != 32-total/2 {
		t.Fatalf("%d succeeded and %d found the store full, want %d and %d", ok, full, total/2, 32-total/2)
	}
	checkStore(t, store, res)
}
