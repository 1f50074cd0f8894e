package template

import (
	"context"
	"encoding/json"
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

const childEnv = "LAGO_TEMPLATE_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		if u := os.Getenv("LAGO_TPL_UMASK"); u != "" {
			n, _ := strconv.ParseUint(u, 8, 32)
			syscall.Umask(int(n))
		}
		os.Exit(child())
	}
	os.Exit(m.Run())
}

// child fetches one template into a store, after waiting for the start file,
// and prints the Image as JSON.
func child() int {
	repoURL, store, start := os.Getenv("LAGO_TPL_REPO"), os.Getenv("LAGO_TPL_STORE"), os.Getenv("LAGO_TPL_START")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(start); err == nil {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "start file never appeared")
			return 3
		}
	}
	ctx := context.Background()
	repo, err := LoadRepo(ctx, repoURL, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s := &Store{Dir: store, LockTimeout: time.Minute}
	img, err := s.Get(ctx, repo, "el7", "", nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(img)
	return 0
}

// Two processes asking for the same template at once download it once: the
// second waits on the template's lock and then finds it in the store.
func TestConcurrentProcessesDownloadOnce(t *testing.T) {
	img := makeImage(1<<20, true, 7)
	srv := newServer(t)
	srv.put("/r/el7.qcow2.xz", xzBytes(t, img))
	srv.put("/r/el7.qcow2.hash", []byte(sha1hex(img)))
	srv.put("/r/el7.qcow2.metadata", []byte(`{"distro": "el7"}`))
	srv.put("/r/repo.metadata", repoJSON(t, "shared", Source{Type: "http", Args: map[string]string{"baseurl": "./"}},
		map[string]map[string]ver{"el7": {"v3": {"el7.qcow2", 3}}}))
	// Hold the body back so the second process surely arrives mid-download.
	srv.set(func(s *server) { s.delay["/r/el7.qcow2.xz"] = 500 * time.Millisecond })

	store := filepath.Join(t.TempDir(), "store")
	start := filepath.Join(t.TempDir(), "start")
	const procs = 2
	outs := make([][]byte, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for i := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=1", "LAGO_TPL_REPO="+srv.URL+"/r/repo.metadata",
			"LAGO_TPL_STORE="+store, "LAGO_TPL_START="+start)
		var stderr []byte
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = cmd.Output()
			if ee, ok := errs[i].(*exec.ExitError); ok {
				stderr = ee.Stderr
				errs[i] = fmt.Errorf("%w: %s", errs[i], stderr)
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	os.WriteFile(start, nil, 0o644)
	wg.Wait()
	for i := range procs {
		if errs[i] != nil {
			t.Fatalf("process %d: %v", i, errs[i])
		}
		var got Image
		if err := json.Unmarshal(outs[i], &got); err != nil {
			t.Fatalf("process %d output %q: %v", i, outs[i], err)
		}
		if got.Key != "shared:el7:v3" || got.Hash != sha1hex(img) || got.Format != FormatQcow2 {
			t.Fatalf("process %d got %+v", i, got)
		}
	}
	if n := srv.count("/r/el7.qcow2.xz"); n != 1 {
		t.Fatalf("image downloaded %d times by %d processes, want once", n, procs)
	}
	if n := srv.count("/r/el7.qcow2.hash"); n != 1 {
		t.Fatalf("hash fetched %d times, want once", n)
	}
}
