//go:build e2e

package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// hostUser is one of the unprivileged users run.sh creates (LAGO_E2E_USERS),
// members of the libvirt socket's group, with a home under /home.
type hostUser struct {
	name     string
	uid, gid int
	home     string
	// dir is this run's folder in the home ($HOME/<basename of the
	// scratch folder>: the sweep of run.sh covers it); the init file,
	// lago.conf and the .lago workdir live here.
	dir  string
	conf string
}

// sharedStores are one lease store and one template store for every user
// of the test, set up as docs/SHARED-HOST.md says: root-owned, group
// libvirt, 2775.
type sharedStores struct {
	leases, store, repos string
}

func lookupHostUsers(t *testing.T, e harnessEnv) []*hostUser {
	t.Helper()
	if os.Getuid() != 0 {
		t.Fatal("the e2e suite runs as root (test/e2e/run.sh)")
	}
	names := strings.Fields(os.Getenv("LAGO_E2E_USERS"))
	if len(names) < 2 {
		t.Fatalf("LAGO_E2E_USERS = %q: run.sh creates two test users (e2e_make_users in test/e2e/lib.sh)", os.Getenv("LAGO_E2E_USERS"))
	}
	var out []*hostUser
	for _, n := range names[:2] {
		u, err := user.Lookup(n)
		if err != nil {
			t.Fatalf("test user %s: %v (run.sh creates it)", n, err)
		}
		hu := &hostUser{name: n, home: u.HomeDir}
		hu.uid, _ = strconv.Atoi(u.Uid)
		hu.gid, _ = strconv.Atoi(u.Gid)
		hu.dir = filepath.Join(u.HomeDir, filepath.Base(e.Root))
		if err := os.MkdirAll(hu.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(hu.dir, hu.uid, hu.gid); err != nil {
			t.Fatal(err)
		}
		out = append(out, hu)
	}
	return out
}

func makeSharedStores(t *testing.T, e harnessEnv, group string) sharedStores {
	t.Helper()
	g, err := user.LookupGroup(group)
	if err != nil {
		t.Fatalf("socket group %s: %v", group, err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	base := filepath.Join(e.Root, "shared")
	s := sharedStores{leases: filepath.Join(base, "subnets"), store: filepath.Join(base, "store"), repos: filepath.Join(base, "repos")}
	for _, d := range []string{base, s.leases, s.store, s.repos} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if d == base {
			continue
		}
		if err := os.Chown(d, 0, gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, fs.ModeSetgid|0o775); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// writeUserConfig writes the user's lago.conf (the shared stores) and
// init file into its folder.
func (u *hostUser) writeFiles(t *testing.T, s sharedStores, initFile string) {
	t.Helper()
	u.conf = filepath.Join(u.dir, "lago.conf")
	conf := fmt.Sprintf("[lago]\nlease_dir = %s\n\n[init]\ntemplate_store = %s\ntemplate_repos = %s\n\n%s", s.leases, s.store, s.repos, localProvider)
	for p, data := range map[string]string{u.conf: conf, filepath.Join(u.dir, "LagoInitFile"): initFile} {
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, u.uid, u.gid); err != nil {
			t.Fatal(err)
		}
	}
}

// asUser runs argv as u through setpriv (its own uid, gid and groups, no
// capabilities; clearGroups drops the supplementary groups, as for a user
// not in the libvirt group) in dir, with HOME set and only the variables
// lago needs. The test runs inside the harness's network namespace, and
// so does the child.
func asUser(t *testing.T, u *hostUser, dir string, clearGroups bool, argv ...string) result {
	t.Helper()
	groups := "--init-groups"
	if clearGroups {
		groups = "--clear-groups"
	}
	args := append([]string{"--reuid=" + strconv.Itoa(u.uid), "--regid=" + strconv.Itoa(u.gid), groups, "--"}, argv...)
	ctx, cancel := context.WithTimeout(context.Background(), lagoTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "setpriv", args...)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + u.home,
		"USER=" + u.name,
		"LOGNAME=" + u.name,
		"LAGO_CONFIG=" + u.conf,
		"LAGO_PLUGIN_PATH=" + os.Getenv("LAGO_PLUGIN_PATH"),
	}
	for _, k := range []string{"LIBGUESTFS_BACKEND", "LIBGUESTFS_BACKEND_SETTINGS"} {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{args: append([]string{"(as " + u.name + ")"}, argv...), stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s as %s: %v", strings.Join(argv, " "), u.name, err)
		}
		r.code = ee.ExitCode()
	}
	t.Logf("%s as %s: exit %d in %s", strings.Join(argv, " "), u.name, r.code, time.Since(start).Round(time.Millisecond))
	return r
}

// lago runs bin/lago as u in its folder.
func (u *hostUser) lago(t *testing.T, h *harness, args ...string) result {
	t.Helper()
	return asUser(t, u, u.dir, false, append([]string{h.env.Bin}, args...)...)
}

func (u *hostUser) must(t *testing.T, h *harness, args ...string) string {
	t.Helper()
	r := u.lago(t, h, args...)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	return r.stdout
}

// cleanupUser destroys what a failed test left in u's folder (as root,
// which may act on anyone's environment) and removes the folder.
func (u *hostUser) cleanup(h *harness) {
	if _, err := os.Stat(filepath.Join(u.dir, ".lago")); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		cmd := exec.CommandContext(ctx, h.env.Bin, "destroy", "--yes")
		cmd.Dir = u.dir
		cmd.Env = append(os.Environ(), "LAGO_CONFIG="+u.conf, "LAGO_PLUGIN_PATH="+h.env.PluginPath)
		_ = cmd.Run()
		cancel()
	}
	for _, o := range libvirtObjectsQuiet(h.env.URI, u.dir) {
		h.t.Logf("cleanup: removing leftover %s %s of %s", o.Kind, o.Name, u.name)
		if o.Kind == "domain" {
			_ = exec.Command("virsh", "-q", "-c", h.env.URI, "destroy", o.Name).Run()
			_ = exec.Command("virsh", "-q", "-c", h.env.URI, "undefine", o.Name, "--snapshots-metadata").Run()
		} else {
			_ = exec.Command("virsh", "-q", "-c", h.env.URI, "net-destroy", o.Name).Run()
			_ = exec.Command("virsh", "-q", "-c", h.env.URI, "net-undefine", o.Name).Run()
		}
	}
	_ = os.RemoveAll(u.dir)
}

// leaseFiles lists the lease files in dir with their content.
func leaseFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".lease") {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			out[e.Name()] = string(b)
		}
	}
	return out
}

// TestSharedHostTwoUsers runs lago as two normal users of the libvirt
// group at the same time, each with a workdir in its home, against one
// lease store and one template store (issue 13): first the preflight
// refusals of a host that is not set up (each naming its fix once, with
// nothing created), then the whole lifecycle of both at once, then that
// neither can act on or read the secrets of the other's environment, and
// that nothing is left behind. It also measures start-to-ssh of one VM as
// a normal user and as root.
func TestSharedHostTwoUsers(t *testing.T) {
	h := newHarness(t)
	users := lookupHostUsers(t, h.env)
	a, b := users[0], users[1]
	group := os.Getenv("LAGO_E2E_SOCK_GROUP")
	if group == "" {
		t.Fatal("LAGO_E2E_SOCK_GROUP unset: run through test/e2e/run.sh")
	}
	stores := makeSharedStores(t, h.env, group)
	initFile := "domains:\n" + vmBlock("vm0", "net: lago") + oneNet
	for _, u := range users {
		u.writeFiles(t, stores, initFile)
		t.Cleanup(func() { u.cleanup(h) })
	}
	initArgs := []string{"init", "--template-repo-path", h.env.TemplateRepo, "--skip-bootstrap", "LagoInitFile"}
	qemuUser := "libvirt-qemu"
	if _, err := user.Lookup(qemuUser); err != nil {
		qemuUser = "qemu"
	}
	nothingCreated := func(t *testing.T, u *hostUser) {
		t.Helper()
		if _, err := os.Stat(filepath.Join(u.dir, ".lago")); !os.IsNotExist(err) {
			t.Errorf("a refused init left %s/.lago: %v", u.dir, err)
		}
		if l := leaseFiles(t, stores.leases); len(l) > 0 {
			t.Errorf("a refused init left leases: %v", l)
		}
		if left := libvirtObjects(t, h.env.URI, u.dir); len(left) > 0 {
			t.Errorf("a refused init left %v", left)
		}
	}

	// A home qemu cannot enter: init refuses before it creates anything
	// and names the folder with both fixes, once.
	t.Run("preflight: home not traversable by qemu", func(t *testing.T) {
		if err := os.Chmod(a.home, 0o700); err != nil {
			t.Fatal(err)
		}
		_ = exec.Command("setfacl", "-b", a.home).Run()
		r := a.lago(t, h, initArgs...)
		t.Logf("init with a 0700 home:\n%s", r.stderr)
		if r.code != 2 {
			t.Fatalf("init with a 0700 home: want exit 2\n%s", r)
		}
		for _, want := range []string{"may not enter " + a.home + " ", "chmod o+x " + a.home, "setfacl -m u:" + qemuUser + ":x " + a.home} {
			if strings.Count(r.stderr, want) != 1 {
				t.Errorf("init's error should say %q once:\n%s", want, r.stderr)
			}
		}
		nothingCreated(t, a)
	})

	// Homes as the guide sets them up: A keeps 0700 and lets qemu's user
	// alone through with an ACL, B makes its home o+x.
	if out, err := exec.Command("setfacl", "-m", "u:"+qemuUser+":x", a.home).CombinedOutput(); err != nil {
		t.Fatalf("setfacl on %s: %v\n%s", a.home, err, out)
	}
	if err := os.Chmod(b.home, 0o711); err != nil {
		t.Fatal(err)
	}

	// A user outside the socket's group: the socket refuses it, and the
	// shared lease store is not writable either; both are said, once each.
	t.Run("preflight: not in the libvirt group", func(t *testing.T) {
		r := asUser(t, a, a.dir, true, append([]string{h.env.Bin}, initArgs...)...)
		t.Logf("init outside group %s:\n%s", group, r.stderr)
		if r.code != 2 {
			t.Fatalf("init outside group %s: want exit 2\n%s", group, r)
		}
		// setpriv --clear-groups is a user the group database lists
		// in the group, whose login predates it.
		for _, want := range []string{"permission denied on ", a.name + " is in group " + group + ", but this login session is not", "may not write " + stores.leases} {
			if strings.Count(r.stderr, want) != 1 {
				t.Errorf("init's error should say %q once:\n%s", want, r.stderr)
			}
		}
		nothingCreated(t, a)
		d := asUser(t, a, a.dir, true, h.env.Bin, "doctor")
		if d.code != 2 || !strings.Contains(d.stdout, "FAIL libvirt socket: permission denied") {
			t.Errorf("doctor outside the group:\n%s", d)
		}
	})

	t.Run("doctor passes for both", func(t *testing.T) {
		for _, u := range users {
			r := u.lago(t, h, "doctor")
			if r.code != 0 || strings.Contains(r.stdout, "FAIL") || !strings.Contains(r.stdout, "OK   libvirt socket") ||
				!strings.Contains(r.stdout, "OK   lease store shared") {
				t.Errorf("doctor as %s:\n%s", u.name, r)
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	// A home closed to qemu after init: qemu itself refuses the disk at
	// start, and lago adds which folder stops it and the fix; destroy
	// then removes everything.
	t.Run("home closed after init", func(t *testing.T) {
		b.must(t, h, initArgs...)
		if err := os.Chmod(b.home, 0o700); err != nil {
			t.Fatal(err)
		}
		r := b.lago(t, h, "start")
		if err := os.Chmod(b.home, 0o711); err != nil {
			t.Fatal(err)
		}
		t.Logf("start with a closed home:\n%s", r.stderr)
		if r.code == 0 || !strings.Contains(r.stderr, "may not enter "+b.home+" ") || !strings.Contains(r.stderr, "chmod o+x "+b.home) {
			t.Errorf("start with a home closed to qemu: want a failure naming %s and the fix\n%s", b.home, r)
		}
		b.must(t, h, "destroy", "--yes")
		if left := libvirtObjects(t, h.env.URI, b.dir); len(left) > 0 {
			t.Errorf("left of %s: %v", b.name, left)
		}
		if l := leaseFiles(t, stores.leases); len(l) > 0 {
			t.Errorf("leases left: %v", l)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	// Both users at once: init, start, status, shell, snapshot, revert.
	type lifecycle struct {
		start time.Duration
		ip    string
	}
	got := make([]lifecycle, len(users))
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run("up as "+u.name, func(t *testing.T) {
				u.must(t, h, initArgs...)
				t0 := time.Now()
				u.must(t, h, "start")
				got[i].start = time.Since(t0)
				out := u.must(t, h, "--out-format", "json", "status")
				var doc map[string]any
				if err := json.Unmarshal([]byte(out), &doc); err != nil {
					t.Fatalf("status json as %s: %v\n%s", u.name, err, out)
				}
				st := statusDoc{t: t, raw: doc, text: out}
				if st.vmStatus("vm0") != "running" || st.netStatus("lago") != "up" {
					t.Errorf("status as %s after start:\n%s", u.name, out)
				}
				got[i].ip = st.vmIP("vm0", "lago")
				if out := strings.TrimSpace(u.must(t, h, "shell", "vm0", "hostname", "-f")); out != "vm0.lago.local" {
					t.Errorf("shell as %s: %q", u.name, out)
				}
				u.must(t, h, "shell", "vm0", "echo before > /root/before && sync")
				u.must(t, h, "snapshot", "s1")
				u.must(t, h, "shell", "vm0", "echo after > /root/after && sync")
				u.must(t, h, "revert", "s1")
				if r := u.lago(t, h, "shell", "vm0", "test -e /root/before && test ! -e /root/after"); r.code != 0 {
					t.Errorf("after revert as %s the guest is not as at the snapshot:\n%s", u.name, r)
				}
			})
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("start to ssh of one VM, both users at once: %s %s, %s %s", a.name, got[0].start.Round(time.Millisecond), b.name, got[1].start.Round(time.Millisecond))
	if prefix24(got[0].ip) == prefix24(got[1].ip) {
		t.Errorf("both users' VMs are on one subnet: %s and %s", got[0].ip, got[1].ip)
	}

	// One store, one download, usable by both; two different subnets.
	t.Run("shared stores", func(t *testing.T) {
		leases := leaseFiles(t, stores.leases)
		if len(leases) != 2 {
			t.Fatalf("leases: %v, want one per user", leases)
		}
		holders := map[string]bool{}
		for _, c := range leases {
			for _, u := range users {
				if strings.Contains(c, u.dir) {
					holders[u.name] = true
				}
			}
		}
		if len(holders) != 2 {
			t.Errorf("the two leases are not one per user: %v", leases)
		}
		ents, err := os.ReadDir(stores.store)
		if err != nil {
			t.Fatal(err)
		}
		var images []string
		for _, e := range ents {
			info, _ := e.Info()
			sys := info.Sys().(*syscall.Stat_t)
			t.Logf("store: %s %v uid %d gid %d", e.Name(), info.Mode(), sys.Uid, sys.Gid)
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("store holds a temporary file %s", e.Name())
			}
			if !strings.Contains(e.Name(), ".") {
				// While VMs run, libvirt's dynamic_ownership has
				// chowned the backing image to qemu's user; see
				// the check after destroy.
				images = append(images, e.Name())
				continue
			}
			g, _ := user.LookupGroup(group)
			if strconv.Itoa(int(sys.Gid)) != g.Gid {
				t.Errorf("store file %s has gid %d, not the store's group %s", e.Name(), sys.Gid, group)
			}
			if strings.HasSuffix(e.Name(), ".lock") && info.Mode().Perm() != 0o664 {
				t.Errorf("lock %s mode %v, want 0664", e.Name(), info.Mode().Perm())
			}
		}
		if len(images) != 1 {
			t.Errorf("store images: %v, want the one template downloaded once", images)
		}
	})

	// Neither user can act on, or read the secrets of, the other's. B's
	// home is o+x, so A reaches B's workdir: only lago's owner check and
	// the key's mode stand in the way. A's home lets only qemu's user
	// through, so B does not even reach A's files.
	t.Run("isolation", func(t *testing.T) {
		for _, pair := range [][2]*hostUser{{a, b}, {b, a}} {
			attacker, victim := pair[0], pair[1]
			key := filepath.Join(victim.dir, ".lago", "current", "id_rsa")
			if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 || int(st.Sys().(*syscall.Stat_t).Uid) != victim.uid {
				t.Fatalf("%s: %v %v, want mode 0600 owned by %s", key, st, err, victim.name)
			}
			if r := asUser(t, attacker, attacker.dir, false, "cat", key); r.code == 0 || !strings.Contains(r.stderr, "Permission denied") {
				t.Errorf("%s read %s's private key:\n%s", attacker.name, victim.name, r)
			}
			for _, verb := range [][]string{{"destroy", "--yes"}, {"stop"}, {"cleanup"}, {"shell", "vm0", "true"}, {"revert", "s1"}} {
				r := asUser(t, attacker, victim.dir, false, append([]string{h.env.Bin}, verb...)...)
				if r.code == 0 {
					t.Errorf("%s's lago %s on %s's workdir succeeded:\n%s", attacker.name, verb[0], victim.name, r)
				}
				if attacker == a && (!strings.Contains(r.stderr, "belongs to another user") || !strings.Contains(r.stderr, "user "+victim.name)) {
					t.Errorf("%s's lago %s on %s's workdir: want the owner refusal\n%s", attacker.name, verb[0], victim.name, r)
				}
			}
			if _, err := os.Stat(filepath.Join(victim.dir, ".lago", "current", "uuid")); err != nil {
				t.Errorf("%s's prefix after %s's attempts: %v", victim.name, attacker.name, err)
			}
			// cleanup --orphans keeps the other's objects (and its own: alive).
			if r := attacker.lago(t, h, "cleanup", "--orphans"); r.code != 0 {
				t.Errorf("cleanup --orphans as %s:\n%s", attacker.name, r)
			}
			for _, u := range users {
				if st := domState(t, h, u); st != "running" {
					t.Errorf("after %s's attempts %s's vm0 is %q, want running", attacker.name, u.name, st)
				}
			}
			if l := leaseFiles(t, stores.leases); len(l) != 2 {
				t.Errorf("leases after %s's attempts: %v", attacker.name, l)
			}
		}
	})

	// Both at once again: stop, destroy.
	for _, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run("down as "+u.name, func(t *testing.T) {
				u.must(t, h, "stop")
				u.must(t, h, "destroy", "--yes")
			})
		}()
	}
	wg.Wait()
	for _, u := range users {
		if _, err := os.Stat(filepath.Join(u.dir, ".lago")); !os.IsNotExist(err) {
			t.Errorf("destroy as %s left the workdir: %v", u.name, err)
		}
		if left := libvirtObjects(t, h.env.URI, u.dir); len(left) > 0 {
			t.Errorf("left of %s: %v", u.name, left)
		}
	}
	if l := leaseFiles(t, stores.leases); len(l) > 0 {
		t.Errorf("leases left: %v", l)
	}
	// libvirt never gives a backing image back (it restores the labels
	// of read-only disks on no domain's stop, as other domains may use
	// them): the shared image stays chowned to qemu's user. It must stay
	// readable by every user of the store.
	imgs, _ := filepath.Glob(filepath.Join(stores.store, "*:*:*"))
	for _, p := range imgs {
		if strings.Contains(filepath.Base(p), ".") {
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		t.Logf("shared image %s after both destroys: uid %d gid %d mode %v", p, sys.Uid, sys.Gid, st.Mode().Perm())
		for _, u := range users {
			if r := asUser(t, u, u.dir, false, "head", "-c", "4", p); r.code != 0 {
				t.Errorf("%s cannot read the shared image after the destroys:\n%s", u.name, r)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Start to ssh of the same VM alone, as root and as a user, twice in
	// turn (the host's load drifts; alternating shares it).
	t.Run("start to ssh: user vs root", func(t *testing.T) {
		root := h.sub(t)
		root.writeConfig("")
		var rootTimes, userTimes []time.Duration
		for round := 0; round < 2; round++ {
			root.initEnv(root.writeInitFile(initFile))
			t0 := time.Now()
			root.must("start")
			rootTimes = append(rootTimes, time.Since(t0))
			root.must("destroy", "--yes")

			a.must(t, h, initArgs...)
			t0 = time.Now()
			a.must(t, h, "start")
			userTimes = append(userTimes, time.Since(t0))
			a.must(t, h, "destroy", "--yes")
		}
		t.Logf("start to ssh of one VM alone: root %v, %s %v", rootTimes, a.name, userTimes)
		if left := libvirtObjects(t, h.env.URI, a.dir); len(left) > 0 {
			t.Errorf("left of %s: %v", a.name, left)
		}
		h.assertNothingLeft()
	})
}

// TestSharedHostUserBootstrap: bootstrap (libguestfs, run by lago as the
// user, with the host's kernel for its appliance) needs nothing of root:
// a normal user's init injects the prefix key and the VM takes it.
func TestSharedHostUserBootstrap(t *testing.T) {
	h := newHarness(t)
	users := lookupHostUsers(t, h.env)
	a := users[0]
	stores := makeSharedStores(t, h.env, os.Getenv("LAGO_E2E_SOCK_GROUP"))
	a.writeFiles(t, stores, "domains:\n"+vmBlock("vm0", "net: lago")+oneNet)
	t.Cleanup(func() { a.cleanup(h) })
	if err := os.Chmod(a.home, 0o711); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	a.must(t, h, "init", "--template-repo-path", h.env.TemplateRepo, "LagoInitFile")
	t.Logf("init with bootstrap as %s: %s", a.name, time.Since(t0).Round(time.Millisecond))
	a.must(t, h, "start")
	key, err := os.ReadFile(filepath.Join(a.dir, ".lago", "current", "id_rsa.pub"))
	if err != nil {
		t.Fatal(err)
	}
	auth := a.must(t, h, "shell", "vm0", "cat", "/root/.ssh/authorized_keys")
	if !strings.Contains(auth, strings.TrimSpace(string(key))) {
		t.Errorf("the guest's authorized_keys lacks the prefix key:\n%s", auth)
	}
	a.must(t, h, "destroy", "--yes")
	if left := libvirtObjects(t, h.env.URI, a.dir); len(left) > 0 {
		t.Errorf("left of %s: %v", a.name, left)
	}
	if l := leaseFiles(t, stores.leases); len(l) > 0 {
		t.Errorf("leases left: %v", l)
	}
}

// domState is virsh domstate of u's vm0, "" when it has none.
func domState(t *testing.T, h *harness, u *hostUser) string {
	t.Helper()
	for _, o := range libvirtObjects(t, h.env.URI, u.dir) {
		if o.Kind == "domain" && strings.HasSuffix(o.Name, "-vm0") {
			st, err := virsh(t, h.env.URI, "domstate", o.Name)
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(st)
		}
	}
	return ""
}
