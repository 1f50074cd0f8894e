package lease

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

// TestTwoUsersShareOneStore runs lease holders as two different users
// with a umask of 077, both in one group that owns the store (set up as
// docs/SHARED-HOST.md says: root-owned, that group, 2775): they never get
// the same subnet, everything they leave keeps the store's group and
// mode 0664, and one user takes over the lease of the other's deleted
// prefix. It needs root, to switch users.
func TestTwoUsersShareOneStore(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run lease holders as two users")
	}
	const group = 4444
	users := []int{4242, 4343}
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The test binary's own folder is root's alone: the users run a copy.
	bin := filepath.Join(base, "lease.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(base, "subnets")
	if err := os.Mkdir(store, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(store, 0, group); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(store, fs.ModeSetgid|0o775); err != nil {
		t.Fatal(err)
	}
	prefixDir := func(uid int, name string) string {
		d := filepath.Join(base, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, uid, uid); err != nil {
			t.Fatal(err)
		}
		return d
	}
	run := func(uid int, pdir string, n int) childResult {
		start := filepath.Join(base, "start")
		_ = os.WriteFile(start, nil, 0o644)
		cmd := exec.Command(bin, "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=1", "LAGO_LEASE_UMASK=077",
			"LAGO_LEASE_DIR="+store,
			"LAGO_LEASE_UUID_PATH="+filepath.Join(pdir, "uuid"),
			"LAGO_LEASE_START="+start,
			"LAGO_LEASE_N="+strconv.Itoa(n))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{group}}}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("holder as uid %d: %v %s", uid, err, out)
		}
		var r childResult
		if err := json.Unmarshal(out, &r); err != nil || r.Err != "" {
			t.Fatalf("holder as uid %d: %s %v", uid, out, err)
		}
		return r
	}
	// Both users at once.
	res := make([]childResult, len(users))
	dirs := make([]string, len(users))
	var wg sync.WaitGroup
	for i, uid := range users {
		dirs[i] = prefixDir(uid, fmt.Sprintf("prefix-%d", uid))
		wg.Add(1)
		go func() { defer wg.Done(); res[i] = run(uid, dirs[i], 3) }()
	}
	wg.Wait()
	checkStore(t, store, res)
	ents, err := os.ReadDir(store)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		info, _ := e.Info()
		gid := info.Sys().(*syscall.Stat_t).Gid
		if gid != group || info.Mode().Perm() != 0o664 {
			t.Errorf("%s: mode %v gid %d, want 0664 and the store's group %d", e.Name(), info.Mode().Perm(), gid, group)
		}
	}
	// The first user's prefix is deleted by hand: the other user takes
	// over its subnets, replacing lease files the first user made.
	if err := os.RemoveAll(dirs[0]); err != nil {
		t.Fatal(err)
	}
	again := run(users[1], prefixDir(users[1], "prefix-again"), 3)
	if fmt.Sprint(again.Octets) != fmt.Sprint(res[0].Octets) {
		t.Errorf("uid %d got %v, want the subnets %v of uid %d's deleted prefix", users[1], again.Octets, res[0].Octets, users[0])
	}
}
