//go:build e2e

package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestOrphanCleanupKeepsWhatItCannotCheck runs `lago cleanup --orphans`
// against real libvirt objects: those of a running environment whose
// prefix the cleaning user cannot read (it runs as nobody, the prefix is
// root's below a 0700 folder), objects tagged with another host, with
// another uid, or with a prefix the user may not read, are all kept and
// listed with a hint; only the objects whose owner is conclusively gone
// (and an old-style tag below the user's own folder) are removed.
func TestOrphanCleanupKeepsWhatItCannotCheck(t *testing.T) {
	h := newHarness(t)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	nb := lookupNobody(t)

	h.initEnv(h.writeInitFile("domains:\n" + vmBlock("vm0", "net: lago") + oneNet))
	h.must("start", "--no-wait")
	workdir := filepath.Join(h.dir, ".lago")
	envObjects := libvirtObjects(t, h.env.URI, workdir)
	if len(envObjects) < 2 {
		t.Fatalf("the environment has %v in libvirt, want its domain and network", envObjects)
	}

	// Objects tagged the way the provider tags them, for owners a single
	// environment cannot give. locked is root's and 0700: nobody reading
	// the uuid below it gets EACCES.
	locked := filepath.Join(h.dir, "locked")
	lockedPrefix := filepath.Join(locked, ".lago", "default")
	if err := os.MkdirAll(lockedPrefix, 0o755); err != nil {
		t.Fatal(err)
	}
	unreadableUUID := randomHex(t, 16)
	if err := os.WriteFile(filepath.Join(lockedPrefix, "uuid"), []byte(unreadableUUID), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(locked, 0o700); err != nil {
		t.Fatal(err)
	}
	run := randomHex(t, 4)
	tagged := map[string]ownerTagAttrs{
		// nobody's own environment, whose prefix nobody cannot read.
		"unreadable": {prefix: lockedPrefix, uuid: unreadableUUID, host: host, uid: strconv.Itoa(nb.uid)},
		// An environment of another machine on a shared libvirtd.
		"elsewhere": {prefix: filepath.Join(h.dir, "nowhere", ".lago", "default"), uuid: randomHex(t, 16), host: "elsewhere.invalid", uid: "0"},
		// root's, and its prefix is gone: an orphan for root only.
		"gone": {prefix: filepath.Join(h.dir, "gone", ".lago", "default"), uuid: randomHex(t, 16), host: host, uid: "0"},
		// An old-style tag (no host or uid) of a prefix below root's
		// folder h.dir: trusted as root's, an orphan for root only.
		"legacy": {prefix: filepath.Join(h.dir, "legacy", ".lago", "default"), uuid: randomHex(t, 16)},
	}
	nets := map[string]string{} // key -> libvirt name
	for key, tag := range tagged {
		name := fmt.Sprintf("lagoe2e-%s-%s", run, key)
		defineTaggedNetwork(t, h.env.URI, name, tag)
		nets[key] = name
	}
	t.Cleanup(func() {
		for _, name := range nets {
			_ = exec.Command("virsh", "-q", "-c", h.env.URI, "net-undefine", name).Run()
		}
	})

	// nobody cannot read the environment's prefix, and cannot check any
	// tag here: it keeps everything and says why.
	if err := os.Chmod(workdir, 0o700); err != nil {
		t.Fatal(err)
	}
	r := h.lagoAsNobody(nb, "cleanup", "--orphans")
	if err := os.Chmod(workdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if r.code != 0 {
		t.Fatalf("cleanup --orphans as nobody: %s", r)
	}
	if strings.Contains(r.stdout, "removing orphan") {
		t.Errorf("nobody removed objects it cannot check:\n%s", r.stdout)
	}
	for _, o := range envObjects {
		wantLine(t, r.stdout, "keeping "+o.Kind+" "+o.Name+" ", "uid 0")
	}
	wantLine(t, r.stdout, "keeping network "+nets["unreadable"]+" ", "cannot check its owner prefix", "permission denied")
	wantLine(t, r.stdout, "keeping network "+nets["elsewhere"]+" ", "host elsewhere.invalid")
	wantLine(t, r.stdout, "keeping network "+nets["gone"]+" ", "uid 0")
	wantLine(t, r.stdout, "keeping network "+nets["legacy"]+" ", "older lago")
	for _, o := range envObjects {
		if !libvirtHas(t, h.env.URI, o) {
			t.Errorf("%s %s of the running environment is gone", o.Kind, o.Name)
		}
	}
	for key, name := range nets {
		if !libvirtHas(t, h.env.URI, libvirtObject{"network", name}) {
			t.Errorf("network %s (%s) was removed by nobody", name, key)
		}
	}
	if st := h.domainState(h.env.URI, "vm0"); st != "running" {
		t.Errorf("vm0 is %q after nobody's cleanup, want running", st)
	}

	// root sees its environment alive (not listed) and reads the locked
	// prefix (alive, not listed); it removes what is surely gone and keeps
	// the other host's object.
	out := h.must("cleanup", "--orphans")
	for _, o := range envObjects {
		if strings.Contains(out, " "+o.Name+" ") {
			t.Errorf("root's cleanup lists the live environment's %s %s:\n%s", o.Kind, o.Name, out)
		}
	}
	if strings.Contains(out, nets["unreadable"]) {
		t.Errorf("root's cleanup lists the object of a prefix it can read and that is alive:\n%s", out)
	}
	wantLine(t, out, "keeping network "+nets["elsewhere"]+" ", "host elsewhere.invalid", "run lago cleanup --orphans there")
	wantLine(t, out, "removing orphan network "+nets["gone"]+" ")
	wantLine(t, out, "removing orphan network "+nets["legacy"]+" ")
	want := map[string]bool{"unreadable": true, "elsewhere": true, "gone": false, "legacy": false}
	for key, keep := range want {
		if has := libvirtHas(t, h.env.URI, libvirtObject{"network", nets[key]}); has != keep {
			t.Errorf("network %s (%s) exists: %v, want %v", nets[key], key, has, keep)
		}
	}
	for _, o := range envObjects {
		if !libvirtHas(t, h.env.URI, o) {
			t.Errorf("%s %s of the running environment is gone after root's cleanup", o.Kind, o.Name)
		}
	}

	h.must("destroy", "--yes")
	for _, key := range []string{"unreadable", "elsewhere"} {
		if _, err := virsh(t, h.env.URI, "net-undefine", nets[key]); err != nil {
			t.Error(err)
		}
	}
	h.assertNothingLeft()
}

// ownerTagAttrs are the attributes of a provider owner tag.
type ownerTagAttrs struct{ prefix, uuid, host, uid string }

// defineTaggedNetwork defines (does not start) an isolated network whose
// metadata carries the owner tag lago's libvirt provider writes.
func defineTaggedNetwork(t *testing.T, uri, name string, o ownerTagAttrs) {
	t.Helper()
	attrs := fmt.Sprintf(`prefix=%q uuid=%q name="n0"`, o.prefix, o.uuid)
	if o.host != "" {
		attrs += fmt.Sprintf(` host=%q`, o.host)
	}
	if o.uid != "" {
		attrs += fmt.Sprintf(` uid=%q`, o.uid)
	}
	x := fmt.Sprintf(`<network><name>%s</name><metadata><lago:owner xmlns:lago="https://lago-go.dev/xmlns/owner/1" %s/></metadata></network>`, name, attrs)
	f := filepath.Join(t.TempDir(), name+".xml")
	if err := os.WriteFile(f, []byte(x), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := virsh(t, uri, "net-define", f); err != nil {
		t.Fatal(err)
	}
}

func libvirtHas(t *testing.T, uri string, o libvirtObject) bool {
	t.Helper()
	args := []string{"dominfo", o.Name}
	if o.Kind == "network" {
		args = []string{"net-info", o.Name}
	}
	_, err := virsh(t, uri, args...)
	return err == nil
}

// wantLine fails unless out has a line starting with prefix that holds
// every one of parts.
func wantLine(t *testing.T, out, prefix string, parts ...string) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		for _, p := range parts {
			if !strings.Contains(l, p) {
				t.Errorf("line %q lacks %q", l, p)
			}
		}
		return
	}
	t.Errorf("no line starting with %q in:\n%s", prefix, out)
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// nobodyUser is the unprivileged user lago runs as, with a home of its
// own (0700) holding its configuration and the socket it reaches libvirt
// through.
type nobodyUser struct {
	uid, gid int
	home     string
}

func lookupNobody(t *testing.T) nobodyUser {
	t.Helper()
	if os.Getuid() != 0 {
		t.Fatal("the e2e suite runs as root (test/e2e/run.sh)")
	}
	nb := nobodyUser{uid: 65534, gid: 65534}
	if u, err := user.Lookup("nobody"); err == nil {
		nb.uid, _ = strconv.Atoi(u.Uid)
		nb.gid, _ = strconv.Atoi(u.Gid)
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("setpriv (util-linux) is needed to run lago as nobody: %v", err)
	}
	home, err := os.MkdirTemp(filepath.Join(loadEnv(t).Root, "work"), "nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	if err := os.Chown(home, nb.uid, nb.gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	nb.home = home
	return nb
}

// lagoAsNobody runs bin/lago as nobody (no groups, no capabilities) in its
// home. The harness's libvirtd lets only root connect, so nobody reaches
// it through a socket the test forwards to libvirtd's: libvirt then sees
// the test, but lago runs as nobody and reads the filesystem as nobody,
// which is what orphan cleanup's decisions depend on (as for a client of a
// shared remote libvirtd).
func (h *harness) lagoAsNobody(nb nobodyUser, args ...string) result {
	h.t.Helper()
	sock := filepath.Join(nb.home, "libvirt-sock")
	stop := forwardLibvirt(h.t, h.env.URI, sock, nb)
	defer stop()
	conf := filepath.Join(nb.home, "lago.conf")
	u := url.URL{Scheme: "qemu+unix", Path: "/system", RawQuery: "socket=" + sock}
	c := fmt.Sprintf("[lago]\nlease_dir = %s\n\n[provider local-libvirt]\nplugin = libvirt\ndomain_type = qemu\nlibvirt_url = %s\n",
		filepath.Join(nb.home, "leases"), u.String())
	if err := os.WriteFile(conf, []byte(c), 0o644); err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), lagoTimeout)
	defer cancel()
	argv := append([]string{fmt.Sprintf("--reuid=%d", nb.uid), fmt.Sprintf("--regid=%d", nb.gid), "--clear-groups", "--", h.env.Bin}, args...)
	cmd := exec.CommandContext(ctx, "setpriv", argv...)
	cmd.Dir = nb.home
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + nb.home,
		"LAGO_CONFIG=" + conf,
		"LAGO_PLUGIN_PATH=" + h.env.PluginPath,
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{args: append([]string{"(as nobody)"}, args...), stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			h.t.Fatalf("lago %s as nobody: %v", strings.Join(args, " "), err)
		}
		r.code = ee.ExitCode()
	}
	h.t.Logf("lago %s as nobody: exit %d in %s\n%s%s", strings.Join(args, " "), r.code, time.Since(start).Round(time.Millisecond), r.stdout, r.stderr)
	return r
}

// forwardLibvirt listens on sock (for nb only) and copies every connection
// to and from the socket of the libvirtd at uri, until stop is called.
func forwardLibvirt(t *testing.T, uri, sock string, nb nobodyUser) (stop func()) {
	t.Helper()
	target := libvirtSocket(t, uri)
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(sock, nb.uid, nb.gid); err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("unix", target)
			if err != nil {
				t.Logf("forward to %s: %v", target, err)
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, d)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(d, c); d.(*net.UnixConn).CloseWrite() }()
			go func() { defer wg.Done(); _, _ = io.Copy(c, d); c.(*net.UnixConn).CloseWrite() }()
		}
	}()
	return func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}

// libvirtSocket is the unix socket of the libvirtd at uri (qemu:///system
// or a qemu+unix URI naming its socket).
func libvirtSocket(t *testing.T, uri string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	if s := u.Query().Get("socket"); s != "" {
		return s
	}
	if u.Host == "" && u.Path == "/system" {
		for _, s := range []string{"/run/libvirt/libvirt-sock", "/var/run/libvirt/libvirt-sock"} {
			if _, err := os.Stat(s); err == nil {
				return s
			}
		}
	}
	t.Fatalf("cannot tell the unix socket of the libvirtd at %s", uri)
	return ""
}
