package env

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lago-go/lago/core/errs"
	lagossh "github.com/lago-go/lago/core/ssh"
	"github.com/lago-go/lago/core/ssh/sshtest"
	"github.com/lago-go/lago/sdk"
)

// localFixture is a fixture whose VMs run and whose "guests" are this
// machine (localSSH), so copies move real bytes; conns counts the
// connections the copies asked for.
func localFixture(t *testing.T) (*fixture, *connSSH) {
	t.Helper()
	f := newFixture(t)
	for _, vm := range []string{"vm0", "vm1", "vm2"} {
		f.prov.SetVMState(testUUID, vm, "running")
	}
	c := &connSSH{}
	f.m = New(Options{DefaultProvider: "local"}, Deps{
		Providers: func(context.Context, string) (sdk.Provider, error) { return f.prov, nil },
		SSH:       c,
	})
	return f, c
}

// connSSH is localSSH with SSHConn, counting connections and commands
// per VM and the most connections open at once.
type connSSH struct {
	localSSH
	// hold keeps each connection open that long.
	hold time.Duration

	mu      sync.Mutex
	conns   map[string]int
	runs    map[string]int
	open    int
	maxOpen int
}

func (c *connSSH) WithConn(_ context.Context, t SSHTarget, do func(lagossh.Runner) error) error {
	c.mu.Lock()
	if c.conns == nil {
		c.conns, c.runs = map[string]int{}, map[string]int{}
	}
	c.conns[t.VM]++
	c.open++
	c.maxOpen = max(c.maxOpen, c.open)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.open--
		c.mu.Unlock()
	}()
	time.Sleep(c.hold)
	return do(countRunner{c: c, t: t})
}

type countRunner struct {
	c *connSSH
	t SSHTarget
}

func (r countRunner) Run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	r.c.mu.Lock()
	r.c.runs[r.t.VM]++
	r.c.mu.Unlock()
	return r.c.localSSH.Run(ctx, r.t, argv, stdin, stdout, stderr)
}

// TestManagerCopy: files and folders both ways with modes and times, and
// a missing path on either side is a user's *PathError naming the VM and
// the path.
func TestManagerCopy(t *testing.T) {
	f, conns := localFixture(t)
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	mustMkdir(t, filepath.Join(src, "sub"))
	mustWrite(t, filepath.Join(src, "sub", "f"), "payload")
	if err := os.Chmod(filepath.Join(src, "sub", "f"), 0o640); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(1650000000, 0)
	for _, p := range []string{filepath.Join(src, "sub", "f"), filepath.Join(src, "sub"), src} {
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	guest := filepath.Join(dir, "guest")
	if err := f.m.CopyTo(ctx, f.prefix, "vm0", src, guest); err != nil {
		t.Fatalf("CopyTo: %v", err)
	}
	back := filepath.Join(dir, "back")
	if err := f.m.CopyFrom(ctx, f.prefix, "vm0", guest, back); err != nil {
		t.Fatalf("CopyFrom: %v", err)
	}
	if conns.conns["vm0"] != 2 {
		t.Errorf("two copies on %d connections, want 2", conns.conns["vm0"])
	}
	for _, root := range []string{guest, back} {
		p := filepath.Join(root, "sub", "f")
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		got, _ := os.ReadFile(p)
		if string(got) != "payload" || st.Mode().Perm() != 0o640 || !st.ModTime().Equal(mtime) {
			t.Errorf("%s = %q mode %o time %v", p, got, st.Mode().Perm(), st.ModTime())
		}
		if st, _ := os.Stat(root); !st.ModTime().Equal(mtime) {
			t.Errorf("%s: time %v, want %v", root, st.ModTime(), mtime)
		}
	}

	tests := []struct {
		name string
		copy func() error
		path string
		host bool
	}{
		{"local source", func() error { return f.m.CopyTo(ctx, f.prefix, "vm0", filepath.Join(dir, "nope"), guest) },
			filepath.Join(dir, "nope"), true},
		{"remote parent", func() error { return f.m.CopyTo(ctx, f.prefix, "vm1", src, filepath.Join(dir, "nope", "x")) },
			filepath.Join(dir, "nope"), false},
		{"remote source", func() error { return f.m.CopyFrom(ctx, f.prefix, "vm0", filepath.Join(dir, "nope"), back) },
			filepath.Join(dir, "nope"), false},
		{"local parent", func() error { return f.m.CopyFrom(ctx, f.prefix, "vm0", guest, filepath.Join(dir, "nope", "x")) },
			filepath.Join(dir, "nope"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.copy()
			var pe *PathError
			if !errors.As(err, &pe) || pe.Path != tc.path || pe.Host != tc.host || !errors.Is(err, ErrNoSuchPath) || !errs.IsUser(err) {
				t.Fatalf("err = %#v (%v), want a user's PathError for %s (host %v)", err, err, tc.path, tc.host)
			}
			vm := pe.VM
			if vm != "vm0" && vm != "vm1" || !strings.Contains(err.Error(), vm) || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("%q does not name the VM and %s", err, tc.path)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "nope")); !os.IsNotExist(err) {
		t.Error("a failed copy created something")
	}
}

// TestManagerCopyVMOff: a copy with a VM that is off says so.
func TestManagerCopyVMOff(t *testing.T) {
	f := newFixture(t)
	f.ssh.runErr = errors.New("dial tcp: connection refused")
	err := f.m.CopyFrom(context.Background(), f.prefix, "vm0", "/etc/hosts", t.TempDir())
	if !errors.Is(err, ErrVMNotRunning) {
		t.Fatalf("err = %v, want ErrVMNotRunning", err)
	}
}

// TestSSHClientCopyOneLogin: a copy's commands share one connection: one
// login without ssh_persist, none through a running mux.
func TestSSHClientCopyOneLogin(t *testing.T) {
	shortTmpdir(t)
	srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
	host, port, _ := net.SplitHostPort(srv.Addr())
	p, _ := strconv.Atoi(port)
	for _, mode := range []struct {
		name    string
		persist time.Duration
		logins  int
	}{{"direct", 0, 1}, {"mux", 30 * time.Second, 0}} {
		t.Run(mode.name, func(t *testing.T) {
			f := newFixture(t)
			f.prov.SetVMState(testUUID, "vm0", "running")
			c := SSHClient{Persist: mode.persist, MuxCommand: []string{os.Args[0], lagossh.MuxVerb}}
			f.m = New(Options{DefaultProvider: "local", SSHPassword: "pw"}, Deps{
				Providers: func(context.Context, string) (sdk.Provider, error) { return f.prov, nil },
				SSH:       c,
			})
			e, err := f.m.Load(f.prefix)
			if err != nil {
				t.Fatal(err)
			}
			target, err := f.m.Target(e, "vm0")
			if err != nil {
				t.Fatal(err)
			}
			target.Host, target.Port, target.KeyFile = host, p, ""
			t.Cleanup(func() { c.Release(context.Background(), target) })
			if mode.persist > 0 {
				if _, err := c.Run(context.Background(), target, []string{"true"}, nil, nil, nil); err != nil {
					t.Fatal(err)
				}
				waitMux(t, c.socket(target))
			}
			dir := t.TempDir()
			src := filepath.Join(dir, "src")
			mustMkdir(t, filepath.Join(src, "sub"))
			mustWrite(t, filepath.Join(src, "sub", "f"), "x")
			ctx := context.Background()
			for _, step := range []struct {
				name string
				do   func() error
			}{
				{"to", func() error {
					return c.WithConn(ctx, target, func(r lagossh.Runner) error { return lagossh.Push(ctx, r, src, filepath.Join(dir, "remote")) })
				}},
				{"from", func() error {
					return c.WithConn(ctx, target, func(r lagossh.Runner) error {
						return lagossh.CopyFrom(ctx, r, filepath.Join(dir, "remote"), filepath.Join(dir, "back"), lagossh.PullOptions{})
					})
				}},
			} {
				logins := srv.Logins()
				if err := step.do(); err != nil {
					t.Fatalf("copy %s: %v", step.name, err)
				}
				if n := srv.Logins() - logins; n != mode.logins {
					t.Errorf("copy %s: %d logins, want %d", step.name, n, mode.logins)
				}
			}
			if got, _ := os.ReadFile(filepath.Join(dir, "back", "sub", "f")); string(got) != "x" {
				t.Errorf("copied back %q", got)
			}
		})
	}
}
