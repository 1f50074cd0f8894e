package env

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	lagossh "github.com/lago-go/lago/core/ssh"
	"github.com/lago-go/lago/core/ssh/sshtest"
)

// TestMain lets the test binary play the engine's mux process, so the
// real spawn path (argv, stdin request, detached session) is exercised.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == MuxVerb {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		if err := ServeMuxRequest(ctx, os.Stdin); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSSHClientKeepsConnection: the first command connects itself and
// starts the mux (right after its login); later ones reuse the mux's login; a mux whose guest
// connection died is replaced without the caller noticing; Release ends
// it.
func TestSSHClientKeepsConnection(t *testing.T) {
	shortTmpdir(t)
	srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
	host, port, _ := net.SplitHostPort(srv.Addr())
	p, _ := strconv.Atoi(port)
	target := SSHTarget{VM: "vm0", Host: host, Port: p, User: "root", Password: "pw", UUID: "0123abcd"}
	c := SSHClient{Persist: 30 * time.Second, MuxCommand: []string{os.Args[0], MuxVerb}}
	sock := c.socket(target)
	if sock == "" {
		t.Fatal("no mux socket with Persist set")
	}
	t.Cleanup(func() { c.Release(context.Background(), target) })

	run := func(want string) {
		t.Helper()
		var out bytes.Buffer
		code, err := c.Run(context.Background(), target, []string{"echo", want}, nil, &out, nil)
		if err != nil || code != 0 || out.String() != want+"\n" {
			t.Fatalf("run: code %d err %v out %q", code, err, out.String())
		}
	}
	waitSocket := func() {
		t.Helper()
		for i := 0; i < 500; i++ {
			if _, err := lagossh.DialMux(context.Background(), sock, lagossh.Target{}); err == nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("the mux never served its socket")
	}

	run("one")
	// The first command logs in and starts the mux, which logs in while
	// the command runs.
	if n := srv.Logins(); n != 1 && n != 2 {
		t.Fatalf("first command: %d logins, want 1 or 2", n)
	}
	waitSocket()
	run("two")
	run("three")
	if n := srv.Logins(); n != 2 {
		t.Errorf("after three commands: %d logins, want 2 (the first command's and the mux's)", n)
	}

	// The guest drops every connection (it rebooted): the next command
	// still runs, and a new mux takes over.
	srv.Drop()
	run("four")
	waitSocket()
	run("five")
	if n := srv.Logins(); n != 4 {
		t.Errorf("after the guest dropped the mux: %d logins, want 4", n)
	}

	c.Release(context.Background(), target)
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket after Release: %v", err)
	}

	// ssh_persist = 0 starts no mux.
	off := SSHClient{}
	var out bytes.Buffer
	if _, err := off.Run(context.Background(), target, []string{"true"}, nil, &out, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("a mux started with ssh_persist = 0: %v", err)
	}
}

// TestReleaseEndsConnectingMux: a mux still in its key exchange has no
// socket yet; Release (as stop and destroy call it) still ends it and
// leaves no file, instead of letting it finish after the VM is gone.
func TestReleaseEndsConnectingMux(t *testing.T) {
	shortTmpdir(t)
	// A guest whose sshd never speaks: the mux hangs in its handshake.
	host, port, _ := net.SplitHostPort(sshtest.Mute(t))
	p, _ := strconv.Atoi(port)
	target := SSHTarget{VM: "vm0", Host: host, Port: p, User: "root", Password: "pw", UUID: "feedbeef"}
	c := SSHClient{Persist: 30 * time.Second, MuxCommand: []string{os.Args[0], MuxVerb}}
	sock := c.socket(target)

	// Right after the spawn, as `destroy` right after a first `shell`
	// runs: the spawner's lock already says a mux is starting.
	c.spawnMux(target, sock)
	c.ReleaseAll(context.Background(), target.UUID)
	for _, f := range []string{sock, sock + ".lock"} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s left by a release right after the spawn: %v", f, err)
		}
	}

	// While it is stuck in its handshake.
	c.spawnMux(target, sock)
	held := false
	for i := 0; i < 300 && !held; i++ {
		if b, err := os.ReadFile(sock + ".lock"); err == nil && len(b) > 0 {
			held = true
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !held {
		t.Fatal("the mux never took its lock")
	}
	b, _ := os.ReadFile(sock + ".lock")
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("lock file holds %q, want the mux's pid", b)
	}
	start := time.Now()
	c.ReleaseAll(context.Background(), target.UUID)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("ReleaseAll took %s", d)
	}
	for _, f := range []string{sock, sock + ".lock"} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s left after ReleaseAll: %v", f, err)
		}
	}
	// The mux is our child's child in no way we wait for: it exited if
	// signal 0 finds no process (or a zombie, which pid 1 reaps).
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(st), ") Z ") {
		t.Errorf("mux pid %d still runs after ReleaseAll: %s", pid, st)
	}
}

// shortTmpdir points TMPDIR, where mux sockets live, at a fresh folder
// with a short path: a socket path is limited to 107 bytes.
func shortTmpdir(t *testing.T) {
	t.Helper()
	tmp, err := os.MkdirTemp("/tmp", "m")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	t.Setenv("TMPDIR", tmp)
}

// TestSSHClientMuxPerLogin: within ssh_persist of a root command, a
// command as another user runs as that user, on a mux of its own, and
// never on root's connection; Release ends both.
func TestSSHClientMuxPerLogin(t *testing.T) {
	shortTmpdir(t)
	srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
	host, port, _ := net.SplitHostPort(srv.Addr())
	p, _ := strconv.Atoi(port)
	root := SSHTarget{VM: "vm0", Host: host, Port: p, User: "root", Password: "pw", UUID: "0123abcd"}
	alice := root
	alice.User = "alice"
	c := SSHClient{Persist: 30 * time.Second, MuxCommand: []string{os.Args[0], MuxVerb}}
	t.Cleanup(func() { c.Release(context.Background(), root) })

	whoami := func(tg SSHTarget) string {
		t.Helper()
		var out bytes.Buffer
		code, err := c.Run(context.Background(), tg, []string{"sh", "-c", "echo $USER"}, nil, &out, nil)
		if err != nil || code != 0 {
			t.Fatalf("run as %s: code %d err %v", tg.User, code, err)
		}
		return strings.TrimSpace(out.String())
	}
	serving := func(tg SSHTarget) {
		t.Helper()
		sock := c.socket(tg)
		for i := 0; i < 500; i++ {
			if cl, err := lagossh.DialMux(context.Background(), sock, c.target(tg)); err == nil {
				cl.Close()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("no mux serves %s", tg.User)
	}
	if got := whoami(root); got != "root" {
		t.Fatalf("first command ran as %q", got)
	}
	serving(root)
	if c.socket(alice) == c.socket(root) {
		t.Fatal("alice's mux socket is root's")
	}
	for i := 0; i < 3; i++ {
		if got := whoami(alice); got != "alice" {
			t.Fatalf("command %d as alice within root's ssh_persist ran as %q", i, got)
		}
		if i == 0 {
			serving(alice)
		}
	}
	if got := whoami(root); got != "root" {
		t.Fatalf("root after alice ran as %q", got)
	}
	logins := srv.Users()
	count := map[string]int{}
	for _, u := range logins {
		count[u]++
	}
	// Each user: the first command's login and its mux's.
	if count["root"] != 2 || count["alice"] != 2 {
		t.Errorf("guest logins %q, want 2 of root and 2 of alice", logins)
	}
	c.Release(context.Background(), root)
	for _, tg := range []SSHTarget{root, alice} {
		if _, err := os.Stat(c.socket(tg)); !os.IsNotExist(err) {
			t.Errorf("%s's mux socket after Release: %v", tg.User, err)
		}
	}
}

// TestSSHClientConcurrentCommands: 32 commands started at once on one VM
// all succeed with their own output and exit code, whether no mux runs
// yet, one is up, or ssh_persist is off, on a guest whose logins take a
// while (a TCG guest's key exchange) and that drops connections beyond 5
// unauthenticated ones (dropbear's MAX_UNAUTH_PER_IP), and either allows
// 10 sessions per connection (OpenSSH's MaxSessions) or is a dropbear
// 2022.83 that aborts a connection whose sessions overlap badly.
func TestSSHClientConcurrentCommands(t *testing.T) {
	openssh := sshtest.Options{Password: "pw", MaxUnauth: 5, MaxSessions: 10, AuthDelay: 50 * time.Millisecond}
	dropbear := sshtest.Options{Password: "pw", MaxUnauth: 5, AuthDelay: 50 * time.Millisecond,
		ServerVersion: "SSH-2.0-dropbear_2022.83", DropbearSessionRace: true}
	// The mux's connections: 1 to 4 (ssh.muxMaxConns).
	const muxConns = 4
	tests := []struct {
		name    string
		guest   sshtest.Options
		persist time.Duration
		warm    bool
		// maxLogins bounds the guest's logins for the 32 commands.
		maxLogins int
	}{
		{name: "ssh_persist, no mux yet", guest: openssh, persist: 30 * time.Second, maxLogins: 1 + muxConns},
		{name: "ssh_persist, mux up", guest: openssh, persist: 30 * time.Second, warm: true, maxLogins: muxConns - 1},
		{name: "ssh_persist off", guest: openssh, maxLogins: 32},
		{name: "dropbear, ssh_persist, no mux yet", guest: dropbear, persist: 30 * time.Second, maxLogins: 1 + muxConns},
		{name: "dropbear, ssh_persist, mux up", guest: dropbear, persist: 30 * time.Second, warm: true, maxLogins: muxConns - 1},
		{name: "dropbear, ssh_persist off", guest: dropbear, maxLogins: 32},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			shortTmpdir(t)
			srv := sshtest.Start(t, tc.guest)
			host, port, _ := net.SplitHostPort(srv.Addr())
			p, _ := strconv.Atoi(port)
			target := SSHTarget{VM: "vm0", Host: host, Port: p, User: "root", Password: "pw", UUID: fmt.Sprintf("c0ffee%02d", i)}
			c := SSHClient{Persist: tc.persist, MuxCommand: []string{os.Args[0], MuxVerb}}
			t.Cleanup(func() { c.Release(context.Background(), target) })
			if tc.warm {
				if _, err := c.Run(context.Background(), target, []string{"true"}, nil, nil, nil); err != nil {
					t.Fatal(err)
				}
				for i := 0; ; i++ {
					if cl, err := lagossh.DialMux(context.Background(), c.socket(target), c.target(target)); err == nil {
						cl.Close()
						break
					}
					if i > 500 {
						t.Fatal("the mux never served")
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			before := srv.Logins()
			const n = 32
			type result struct {
				code int
				out  string
				err  error
			}
			results := make([]result, n)
			start := make(chan struct{})
			done := make(chan int)
			for i := range n {
				go func() {
					<-start
					// Staggered, as processes started together are.
					time.Sleep(time.Duration(i) * 5 * time.Millisecond)
					var out bytes.Buffer
					code, err := c.Run(context.Background(), target, []string{"sh", "-c", fmt.Sprintf("sleep 0.1; echo %d; exit %d", i, i%7)}, nil, &out, nil)
					results[i] = result{code, out.String(), err}
					done <- i
				}()
			}
			began := time.Now()
			close(start)
			for range n {
				<-done
			}
			t.Logf("%d concurrent commands in %s; %d logins, %d connections dropped, %d sessions refused, %d connections aborted",
				n, time.Since(began).Round(time.Millisecond), srv.Logins()-before, srv.Dropped(), srv.Refused(), srv.Aborted())
			failed := 0
			for i, r := range results {
				if want := fmt.Sprintf("%d\n", i); r.err != nil || r.code != i%7 || r.out != want {
					failed++
					t.Errorf("command %d: code %d out %q err %v, want code %d out %q", i, r.code, r.out, r.err, i%7, want)
				}
			}
			if failed > 0 {
				t.Errorf("%d of %d concurrent commands failed", failed, n)
			}
			if got := srv.Logins() - before; got > tc.maxLogins {
				t.Errorf("%d guest logins for %d commands, want at most %d", got, n, tc.maxLogins)
			}
			if got := srv.Aborted(); got != 0 {
				t.Errorf("the guest aborted %d connections", got)
			}
		})
	}
}
