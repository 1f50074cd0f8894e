package ssh

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	xssh "golang.org/x/crypto/ssh"

	"github.com/lago-go/lago/core/ssh/sshtest"
)

// TestMain lets the test binary play the engine's mux process, so the
// real spawn path (argv, stdin request, inherited lock, detached session)
// is exercised.
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

// testMuxer is a Muxer whose mux process is this test binary.
func testMuxer(persist time.Duration) Muxer {
	return Muxer{Persist: persist, Command: []string{os.Args[0], MuxVerb}}
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

// waitServing waits until a mux serves sock to t's login.
func waitServing(t *testing.T, sock string, tg Target) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cl, err := DialMux(context.Background(), sock, tg); err == nil {
			cl.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no mux serves %s", sock)
}

// runEcho runs `echo want` with m and fails the test unless it prints want.
func runEcho(t *testing.T, m Muxer, uuid, vm string, tg Target, want string) {
	t.Helper()
	var out bytes.Buffer
	code, err := m.Run(context.Background(), uuid, vm, tg, func(cl *Client) (int, error) {
		return cl.Run(context.Background(), []string{"echo", want}, nil, &out, nil)
	})
	if err != nil || code != 0 || out.String() != want+"\n" {
		t.Fatalf("run: code %d err %v out %q", code, err, out.String())
	}
}

// TestMuxerKeepsConnection: the first command connects itself and starts
// the mux (right after its login); later ones reuse the mux's login; a mux
// whose guest connection died is replaced without the caller noticing;
// ReleaseVMMuxes ends it.
func TestMuxerKeepsConnection(t *testing.T) {
	shortTmpdir(t)
	srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
	const uuid, vm = "0123abcd", "vm0"
	target := Target{Addr: srv.Addr(), User: "root", Password: "pw"}
	m := testMuxer(30 * time.Second)
	sock := m.Socket(uuid, vm, target)
	if sock == "" {
		t.Fatal("no mux socket with Persist set")
	}
	t.Cleanup(func() { ReleaseVMMuxes(context.Background(), uuid, vm) })

	runEcho(t, m, uuid, vm, target, "one")
	// The first command logs in and starts the mux, which logs in while
	// the command runs.
	if n := srv.Logins(); n != 1 && n != 2 {
		t.Fatalf("first command: %d logins, want 1 or 2", n)
	}
	waitServing(t, sock, Target{})
	runEcho(t, m, uuid, vm, target, "two")
	runEcho(t, m, uuid, vm, target, "three")
	if n := srv.Logins(); n != 2 {
		t.Errorf("after three commands: %d logins, want 2 (the first command's and the mux's)", n)
	}

	// The guest drops every connection (it rebooted): the next command
	// still runs, and a new mux takes over.
	srv.Drop()
	runEcho(t, m, uuid, vm, target, "four")
	waitServing(t, sock, Target{})
	runEcho(t, m, uuid, vm, target, "five")
	if n := srv.Logins(); n != 4 {
		t.Errorf("after the guest dropped the mux: %d logins, want 4", n)
	}

	ReleaseVMMuxes(context.Background(), uuid, vm)
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket after ReleaseVMMuxes: %v", err)
	}

	// ssh_persist = 0 starts no mux.
	runEcho(t, Muxer{}, uuid, vm, target, "off")
	time.Sleep(200 * time.Millisecond)
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("a mux started with ssh_persist = 0: %v", err)
	}
}

// TestMuxerSocket: a Muxer names no socket when it starts no muxes or the
// VM has no prefix uuid, and one per VM and login otherwise.
func TestMuxerSocket(t *testing.T) {
	shortTmpdir(t)
	root := Target{Addr: "192.0.2.1", User: "root", Password: "pw"}
	alice := root
	alice.User = "alice"
	on := testMuxer(time.Minute)
	base := on.Socket("u", "vm0", root)
	tests := []struct {
		name  string
		m     Muxer
		uuid  string
		vm    string
		t     Target
		empty bool
		same  bool // the same socket as base
	}{
		{name: "same VM and login", m: on, uuid: "u", vm: "vm0", t: root, same: true},
		{name: "ssh_persist off", m: Muxer{Command: on.Command}, uuid: "u", vm: "vm0", t: root, empty: true},
		{name: "no mux command", m: Muxer{Persist: time.Minute}, uuid: "u", vm: "vm0", t: root, empty: true},
		{name: "no prefix uuid", m: on, vm: "vm0", t: root, empty: true},
		{name: "other VM", m: on, uuid: "u", vm: "vm1", t: root},
		{name: "other prefix", m: on, uuid: "v", vm: "vm0", t: root},
		{name: "other user", m: on, uuid: "u", vm: "vm0", t: alice},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.m.Socket(tc.uuid, tc.vm, tc.t)
			switch {
			case tc.empty && got != "":
				t.Errorf("Socket = %q, want none", got)
			case !tc.empty && got == "":
				t.Error("no socket")
			case !tc.empty && (got == base) != tc.same:
				t.Errorf("Socket = %q, base %q: same = %v, want %v", got, base, got == base, tc.same)
			}
		})
	}
}

// TestReleaseEndsConnectingMux: a mux still in its key exchange has no
// socket yet; ReleasePrefixMuxes (as stop and destroy call it) still ends
// it and leaves no file, instead of letting it finish after the VM is
// gone.
func TestReleaseEndsConnectingMux(t *testing.T) {
	shortTmpdir(t)
	// A guest whose sshd never speaks: the mux hangs in its handshake.
	const uuid = "feedbeef"
	target := Target{Addr: sshtest.Mute(t), User: "root", Password: "pw"}
	m := testMuxer(30 * time.Second)
	sock := m.Socket(uuid, "vm0", target)

	// Right after the spawn, as `destroy` right after a first `shell`
	// runs: the spawner's lock already says a mux is starting.
	m.spawn(target, sock)
	ReleasePrefixMuxes(context.Background(), uuid)
	for _, f := range []string{sock, sock + ".lock"} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s left by a release right after the spawn: %v", f, err)
		}
	}

	// While it is stuck in its handshake.
	m.spawn(target, sock)
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
	ReleasePrefixMuxes(context.Background(), uuid)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("ReleasePrefixMuxes took %s", d)
	}
	for _, f := range []string{sock, sock + ".lock"} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s left after ReleasePrefixMuxes: %v", f, err)
		}
	}
	// The mux is our child's child in no way we wait for: it exited if
	// signal 0 finds no process (or a zombie, which pid 1 reaps).
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(st), ") Z ") {
		t.Errorf("mux pid %d still runs after ReleasePrefixMuxes: %s", pid, st)
	}
}

// TestMuxerPerLogin: within ssh_persist of a root command, a command as
// another user runs as that user, on a mux of its own, and never on
// root's connection; ReleaseVMMuxes ends both.
func TestMuxerPerLogin(t *testing.T) {
	shortTmpdir(t)
	srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
	const uuid, vm = "0123abcd", "vm0"
	root := Target{Addr: srv.Addr(), User: "root", Password: "pw"}
	alice := root
	alice.User = "alice"
	m := testMuxer(30 * time.Second)
	t.Cleanup(func() { ReleaseVMMuxes(context.Background(), uuid, vm) })

	whoami := func(tg Target) string {
		t.Helper()
		var out bytes.Buffer
		code, err := m.Run(context.Background(), uuid, vm, tg, func(cl *Client) (int, error) {
			return cl.Run(context.Background(), []string{"sh", "-c", "echo $USER"}, nil, &out, nil)
		})
		if err != nil || code != 0 {
			t.Fatalf("run as %s: code %d err %v", tg.User, code, err)
		}
		return strings.TrimSpace(out.String())
	}
	if got := whoami(root); got != "root" {
		t.Fatalf("first command ran as %q", got)
	}
	waitServing(t, m.Socket(uuid, vm, root), root)
	if m.Socket(uuid, vm, alice) == m.Socket(uuid, vm, root) {
		t.Fatal("alice's mux socket is root's")
	}
	for i := 0; i < 3; i++ {
		if got := whoami(alice); got != "alice" {
			t.Fatalf("command %d as alice within root's ssh_persist ran as %q", i, got)
		}
		if i == 0 {
			waitServing(t, m.Socket(uuid, vm, alice), alice)
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
	ReleaseVMMuxes(context.Background(), uuid, vm)
	for _, tg := range []Target{root, alice} {
		if _, err := os.Stat(m.Socket(uuid, vm, tg)); !os.IsNotExist(err) {
			t.Errorf("%s's mux socket after ReleaseVMMuxes: %v", tg.User, err)
		}
	}
}

// TestMuxerConcurrentCommands: 32 commands started at once on one VM all
// succeed with their own output and exit code, whether no mux runs yet,
// one is up, or ssh_persist is off, on a guest whose logins take a while
// (a TCG guest's key exchange) and that drops connections beyond 5
// unauthenticated ones (dropbear's MAX_UNAUTH_PER_IP), and either allows
// 10 sessions per connection (OpenSSH's MaxSessions) or is a dropbear
// 2022.83 that aborts a connection whose sessions overlap badly.
func TestMuxerConcurrentCommands(t *testing.T) {
	openssh := sshtest.Options{Password: "pw", MaxUnauth: 5, MaxSessions: 10, AuthDelay: 50 * time.Millisecond}
	dropbear := sshtest.Options{Password: "pw", MaxUnauth: 5, AuthDelay: 50 * time.Millisecond,
		ServerVersion: "SSH-2.0-dropbear_2022.83", DropbearSessionRace: true}
	tests := []struct {
		name    string
		guest   sshtest.Options
		persist time.Duration
		warm    bool
		// maxLogins bounds the guest's logins for the 32 commands.
		maxLogins int
	}{
		{name: "ssh_persist, no mux yet", guest: openssh, persist: 30 * time.Second, maxLogins: 1 + muxMaxConns},
		{name: "ssh_persist, mux up", guest: openssh, persist: 30 * time.Second, warm: true, maxLogins: muxMaxConns - 1},
		{name: "ssh_persist off", guest: openssh, maxLogins: 32},
		{name: "dropbear, ssh_persist, no mux yet", guest: dropbear, persist: 30 * time.Second, maxLogins: 1 + muxMaxConns},
		{name: "dropbear, ssh_persist, mux up", guest: dropbear, persist: 30 * time.Second, warm: true, maxLogins: muxMaxConns - 1},
		{name: "dropbear, ssh_persist off", guest: dropbear, maxLogins: 32},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			shortTmpdir(t)
			srv := sshtest.Start(t, tc.guest)
			uuid, vm := fmt.Sprintf("c0ffee%02d", i), "vm0"
			target := Target{Addr: srv.Addr(), User: "root", Password: "pw"}
			m := testMuxer(tc.persist)
			t.Cleanup(func() { ReleaseVMMuxes(context.Background(), uuid, vm) })
			if tc.warm {
				runEcho(t, m, uuid, vm, target, "warm")
				waitServing(t, m.Socket(uuid, vm, target), target)
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
					code, err := m.Run(context.Background(), uuid, vm, target, func(cl *Client) (int, error) {
						return cl.Run(context.Background(), []string{"sh", "-c", fmt.Sprintf("sleep 0.1; echo %d; exit %d", i, i%7)}, nil, &out, nil)
					})
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

// TestStopMuxClosesItsConnections: StopMux leaves no connection of its own
// open to a mux, not even to one that still serves when it gives up (one
// that ignores the exit request, or a new one that took over meanwhile):
// a leaked control connection would hold a file and goroutines in the
// caller, and a socket and goroutines in the mux, for as long as either
// lives.
func TestStopMuxClosesItsConnections(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "m")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "vm.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	cfg, err := muxServerConfig("token")
	if err != nil {
		t.Fatal(err)
	}
	// A mux that acknowledges the exit request and goes on serving.
	var open, accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				conn, chans, reqs, err := xssh.NewServerConn(c, cfg)
				if err != nil {
					return
				}
				accepted.Add(1)
				open.Add(1)
				defer open.Add(-1)
				go xssh.DiscardRequests(reqs)
				go func() {
					for nc := range chans {
						_ = nc.Reject(xssh.Prohibited, "no channels")
					}
				}()
				_ = conn.Wait()
			}()
		}
	}()

	StopMux(context.Background(), sock)
	if accepted.Load() == 0 {
		t.Fatal("StopMux never connected to the mux")
	}
	deadline := time.Now().Add(2 * time.Second)
	for open.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := open.Load(); n != 0 {
		t.Errorf("%d of StopMux's %d connections to the mux still open after it returned", n, accepted.Load())
	}
	if _, err := os.Stat(sock); err != nil {
		t.Errorf("StopMux removed the socket of a mux that still serves: %v", err)
	}
}
