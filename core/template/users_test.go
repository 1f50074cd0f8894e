package template

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestTwoUsersShareOneStore runs downloads as two different users with a
// umask of 077, both in the group that owns the store (root-owned, that
// group, 2775, as docs/SHARED-HOST.md sets it up): they download the
// template once, and both can use it; then one user's download killed
// half way leaves a temporary file that the other user's download
// removes before it downloads again. Needs root, to switch users.
func TestTwoUsersShareOneStore(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run downloads as two users")
	}
	const group = 4444
	users := []uint32{4242, 4343}
	img := makeImage(1<<20, true, 9)
	srv := newServer(t)
	srv.put("/r/el7.qcow2.xz", xzBytes(t, img))
	srv.put("/r/el7.qcow2.hash", []byte(sha1hex(img)))
	srv.put("/r/el7.qcow2.metadata", []byte(`{"distro": "el7"}`))
	srv.put("/r/repo.metadata", repoJSON(t, "shared", Source{Type: "http", Args: map[string]string{"baseurl": "./"}},
		map[string]map[string]ver{"el7": {"v3": {"el7.qcow2", 3}}}))
	srv.set(func(s *server) { s.delay["/r/el7.qcow2.xz"] = 500 * time.Millisecond })

	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(base, "template.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(base, "store")
	if err := os.Mkdir(store, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(store, 0, group); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(store, fs.ModeSetgid|0o775); err != nil {
		t.Fatal(err)
	}
	start := filepath.Join(base, "start")
	command := func(uid uint32) *exec.Cmd {
		cmd := exec.Command(bin, "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=1", "LAGO_TPL_UMASK=077", "LAGO_TPL_REPO="+srv.URL+"/r/repo.metadata",
			"LAGO_TPL_STORE="+store, "LAGO_TPL_START="+start)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{group}}}
		return cmd
	}
	get := func(uid uint32) Image {
		t.Helper()
		out, err := command(uid).Output()
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("download as uid %d: %v: %s", uid, err, ee.Stderr)
		}
		var img Image
		if err := json.Unmarshal(out, &img); err != nil {
			t.Fatalf("download as uid %d: %q: %v", uid, out, err)
		}
		return img
	}

	// Both at once: one download, both get the image.
	if err := os.WriteFile(start, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	got := make([]Image, len(users))
	for i, uid := range users {
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = get(uid) }()
	}
	wg.Wait()
	for i, g := range got {
		if g.Key != "shared:el7:v3" || g.Hash != sha1hex(img) {
			t.Fatalf("uid %d got %+v", users[i], g)
		}
	}
	if n := srv.count("/r/el7.qcow2.xz"); n != 1 {
		t.Fatalf("image downloaded %d times by two users, want once", n)
	}
	ents, _ := os.ReadDir(store)
	for _, e := range ents {
		info, _ := e.Info()
		want := fs.FileMode(ImageMode)
		if strings.HasSuffix(e.Name(), ".lock") {
			want = LockMode
		}
		if gid := info.Sys().(*syscall.Stat_t).Gid; gid != group || info.Mode().Perm() != want {
			t.Errorf("%s: mode %v gid %d, want %v and the store's group %d", e.Name(), info.Mode().Perm(), gid, want, group)
		}
	}

	// The first user's download is killed half way; the second's then
	// removes what it left and downloads again.
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".lock") {
			os.Remove(filepath.Join(store, e.Name()))
		}
	}
	srv.set(func(s *server) {
		delete(s.delay, "/r/el7.qcow2.xz")
		s.stallAfter["/r/el7.qcow2.xz"] = 4096
	})
	killed := command(users[0])
	if err := killed.Start(); err != nil {
		t.Fatal(err)
	}
	eventuallyTemp := time.Now().Add(20 * time.Second)
	for {
		if m, _ := filepath.Glob(filepath.Join(store, tempPrefix+"*")); len(m) > 0 {
			break
		}
		if time.Now().After(eventuallyTemp) {
			killed.Process.Kill()
			t.Fatal("the first download never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	killed.Process.Kill()
	killed.Wait()
	srv.mu.Lock()
	delete(srv.stallAfter, "/r/el7.qcow2.xz")
	srv.mu.Unlock()
	if g := get(users[1]); g.Hash != sha1hex(img) {
		t.Fatalf("download after a killed one: %+v", g)
	}
	if m, _ := filepath.Glob(filepath.Join(store, tempPrefix+"*")); len(m) > 0 {
		t.Errorf("the killed download's file is left: %v", m)
	}
}
