package ssh_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	lagossh "github.com/lago-go/lago/core/ssh"
	"github.com/lago-go/lago/core/ssh/sshtest"
)

// startMux serves a mux for srv on a fresh socket and returns the socket
// and a channel that receives ServeMux's result.
func startMux(t *testing.T, srv *sshtest.Server, o lagossh.MuxOptions) (string, <-chan error) {
	t.Helper()
	if o.Socket == "" {
		// A short folder: socket paths are limited to 107 bytes.
		dir, err := os.MkdirTemp("", "mux")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		o.Socket = filepath.Join(dir, "vm.sock")
	}
	ready := make(chan error, 1)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		done <- lagossh.ServeMux(ctx, muxTarget(srv), o, func(err error) { ready <- err })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(5 * time.Second):
			t.Error("mux did not stop when its context ended")
		}
	})
	if err := <-ready; err != nil {
		t.Fatalf("mux not ready: %v", err)
	}
	return o.Socket, done
}

// muxTarget is the login startMux's mux makes, which its clients present.
func muxTarget(srv *sshtest.Server) lagossh.Target {
	return lagossh.Target{Addr: srv.Addr(), Password: "pw"}
}

func waitDone(t *testing.T, done <-chan error, within time.Duration, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("mux ended with %v", err)
		}
	case <-time.After(within):
		t.Fatalf("mux still serving %s after %s", what, within)
	}
}

// TestMuxReusesOneLogin: commands through the mux keep stdout, stderr,
// stdin and exit codes apart and exact, and all of them share the mux's
// single login to the guest.
func TestMuxReusesOneLogin(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
	sock, _ := startMux(t, srv, lagossh.MuxOptions{})
	tests := []struct {
		name           string
		argv           []string
		stdin          string
		code           int
		stdout, stderr string
	}{
		{name: "exit code and both streams", argv: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, code: 3, stdout: "out\n", stderr: "err\n"},
		{name: "stdin to the command", argv: []string{"tr", "a-z", "A-Z"}, stdin: "hello\n", stdout: "HELLO\n"},
		{name: "argv quoting", argv: []string{"echo", "a b", "$HOME"}, stdout: "a b $HOME\n"},
		{name: "large output", argv: []string{"sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x"}, stdout: strings.Repeat("x", 300000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl, err := lagossh.DialMux(context.Background(), sock, muxTarget(srv))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			var out, errOut bytes.Buffer
			var in *strings.Reader
			if tt.stdin != "" {
				in = strings.NewReader(tt.stdin)
			}
			var code int
			if in != nil {
				code, err = cl.Run(context.Background(), tt.argv, in, &out, &errOut)
			} else {
				code, err = cl.Run(context.Background(), tt.argv, nil, &out, &errOut)
			}
			if err != nil {
				t.Fatal(err)
			}
			if code != tt.code || out.String() != tt.stdout || errOut.String() != tt.stderr {
				t.Errorf("got code %d stdout %.40q stderr %q, want %d %.40q %q", code, out.String(), errOut.String(), tt.code, tt.stdout, tt.stderr)
			}
		})
	}
	if n := srv.Logins(); n != 1 {
		t.Errorf("guest saw %d logins for %d commands, want 1", n, len(tests))
	}
}

// TestMuxExits: each reason a mux has to go ends it and removes its socket.
func TestMuxExits(t *testing.T) {
	var prefixGone atomic.Bool
	tests := []struct {
		name  string
		opts  lagossh.MuxOptions
		cause func(srv *sshtest.Server, sock string)
	}{
		{name: "idle", opts: lagossh.MuxOptions{Idle: 300 * time.Millisecond}, cause: func(*sshtest.Server, string) {}},
		{name: "asked to", cause: func(_ *sshtest.Server, sock string) { lagossh.StopMux(context.Background(), sock) }},
		{name: "guest gone", cause: func(srv *sshtest.Server, _ string) { srv.Drop() }},
		{name: "prefix gone", opts: lagossh.MuxOptions{Alive: func() bool { return !prefixGone.Load() }},
			cause: func(*sshtest.Server, string) { prefixGone.Store(true) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
			sock, done := startMux(t, srv, tt.opts)
			tt.cause(srv, sock)
			waitDone(t, done, 4*time.Second, "after its cause")
			for _, f := range []string{sock, sock + ".lock"} {
				if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left behind: %v", f, err)
				}
			}
			if _, err := lagossh.DialMux(context.Background(), sock, lagossh.Target{}); err == nil {
				t.Error("a stopped mux still answers")
			}
		})
	}
}

// TestMuxBusyIsNotIdle: a command that runs longer than the idle time
// keeps the mux up.
func TestMuxBusyIsNotIdle(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
	sock, done := startMux(t, srv, lagossh.MuxOptions{Idle: 200 * time.Millisecond})
	cl, err := lagossh.DialMux(context.Background(), sock, muxTarget(srv))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out bytes.Buffer
	code, err := cl.Run(context.Background(), []string{"sh", "-c", "sleep 1.5; echo done"}, nil, &out, nil)
	if err != nil || code != 0 || out.String() != "done\n" {
		t.Fatalf("long command through the mux: code %d err %v out %q", code, err, out.String())
	}
	waitDone(t, done, 4*time.Second, "once idle")
}

// TestSecondMuxRefused: one mux per socket; a second one says so and
// leaves the first serving.
func TestSecondMuxRefused(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
	sock, _ := startMux(t, srv, lagossh.MuxOptions{})
	var got error
	err := lagossh.ServeMux(context.Background(), lagossh.Target{Addr: srv.Addr(), Password: "pw"},
		lagossh.MuxOptions{Socket: sock}, func(err error) { got = err })
	if !errors.Is(err, lagossh.ErrMuxRunning) || !errors.Is(got, lagossh.ErrMuxRunning) {
		t.Fatalf("second mux: %v (ready %v), want ErrMuxRunning", err, got)
	}
	if _, err := lagossh.DialMux(context.Background(), sock, lagossh.Target{}); err != nil {
		t.Errorf("first mux gone after the second was refused: %v", err)
	}
}

// TestMuxLoginFails: a mux that cannot log in reports it and leaves no
// socket.
func TestMuxLoginFails(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{Password: "other"})
	dir := t.TempDir()
	sock := filepath.Join(dir, "s")
	var got error
	err := lagossh.ServeMux(context.Background(), lagossh.Target{Addr: srv.Addr(), Password: "pw"},
		lagossh.MuxOptions{Socket: sock}, func(err error) { got = err })
	if !errors.Is(err, lagossh.ErrAuth) || !errors.Is(got, lagossh.ErrAuth) {
		t.Fatalf("mux with a wrong password: %v (ready %v), want ErrAuth", err, got)
	}
	for _, f := range []string{sock, sock + ".lock"} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s of a failed mux exists: %v", f, err)
		}
	}
}

func TestMuxDirIsPrivate(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	dir, err := lagossh.MuxDir()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("mux folder %s: %v %v", dir, fi.Mode(), err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := lagossh.MuxDir(); err == nil || !strings.Contains(err.Error(), "not a private folder") {
		t.Errorf("a mux folder others can enter was used: %v", err)
	}
	root := lagossh.Target{Addr: "192.168.200.2", KeyPath: "/p/id_rsa", KnownHostsPath: "/p/known_hosts"}
	a, b := lagossh.MuxSocket(dir, "u", "vm0", root), lagossh.MuxSocket(dir, "u", "vm1", root)
	if a == b || !strings.HasPrefix(filepath.Base(a), "u-") {
		t.Errorf("sockets %s and %s", a, b)
	}
	if p := lagossh.MuxSocket("/tmp/lago-mux-65534", strings.Repeat("f", 32), "vm0", root); len(p) > 107 {
		t.Errorf("socket path %s is too long for a unix socket", p)
	}
}

// TestMuxGivesUpDialWhenPrefixGoes: a mux still connecting to a guest that
// does not answer gives up as soon as its prefix is gone, and leaves no
// file, instead of holding its lock for the whole dial timeout.
func TestMuxGivesUpDialWhenPrefixGoes(t *testing.T) {
	addr := sshtest.Mute(t)
	dir, err := os.MkdirTemp("", "mux")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "vm.sock")
	var gone atomic.Bool
	done := make(chan error, 1)
	go func() {
		done <- lagossh.ServeMux(context.Background(), lagossh.Target{Addr: addr, Password: "pw"},
			lagossh.MuxOptions{Socket: sock, Alive: func() bool { return !gone.Load() }}, nil)
	}()
	time.Sleep(300 * time.Millisecond)
	gone.Store(true)
	select {
	case err := <-done:
		if err == nil {
			t.Error("a mux that never connected returned no error")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("mux still dialling 2 s after its prefix went")
	}
	if _, err := os.Stat(sock + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file left: %v", err)
	}
}

// TestMuxServesOnlyItsLogin: a mux logged in as one user with one set of
// credentials refuses a client that asks for another (the caller then
// connects on its own), control connections run nothing, and sockets are
// named apart for every part of the login except the password.
func TestMuxServesOnlyItsLogin(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
	sock, _ := startMux(t, srv, lagossh.MuxOptions{})
	base := muxTarget(srv)
	with := func(f func(*lagossh.Target)) lagossh.Target {
		tg := base
		f(&tg)
		return tg
	}
	tests := []struct {
		name    string
		target  lagossh.Target
		refused bool
		// sameSocket: MuxSocket names the same socket as base's.
		sameSocket bool
	}{
		{name: "same login", target: base, sameSocket: true},
		{name: "root spelled out", target: with(func(t *lagossh.Target) { t.User = "root" }), sameSocket: true},
		{name: "another user", target: with(func(t *lagossh.Target) { t.User = "alice" }), refused: true},
		{name: "another password", target: with(func(t *lagossh.Target) { t.Password = "other" }), refused: true, sameSocket: true},
		{name: "another key", target: with(func(t *lagossh.Target) { t.KeyPath = "/elsewhere/id_rsa" }), refused: true},
		{name: "another known_hosts", target: with(func(t *lagossh.Target) { t.KnownHostsPath = "/elsewhere/known_hosts" }), refused: true},
		{name: "another address", target: with(func(t *lagossh.Target) { t.Addr = "192.0.2.1" }), refused: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := lagossh.MuxSocket("/d", "u", "vm0", tc.target) == lagossh.MuxSocket("/d", "u", "vm0", base); got != tc.sameSocket {
				t.Errorf("same socket as the mux's login: %v, want %v", got, tc.sameSocket)
			}
			cl, err := lagossh.DialMux(context.Background(), sock, tc.target)
			if tc.refused {
				if !errors.Is(err, lagossh.ErrMuxRefused) {
					t.Fatalf("DialMux as %+v = %v, want ErrMuxRefused", tc.target, err)
				}
				// DialMuxWait does not wait out a refusal.
				start := time.Now()
				if _, err := lagossh.DialMuxWait(context.Background(), sock, tc.target, 3*time.Second); !errors.Is(err, lagossh.ErrMuxRefused) || time.Since(start) > time.Second {
					t.Errorf("DialMuxWait = %v after %s", err, time.Since(start))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			var out bytes.Buffer
			if code, err := cl.Run(context.Background(), []string{"sh", "-c", "echo $USER"}, nil, &out, nil); err != nil || code != 0 || out.String() != "root\n" {
				t.Errorf("command through the mux: %d %v %q", code, err, out.String())
			}
		})
	}
	t.Run("control connection", func(t *testing.T) {
		cl, err := lagossh.DialMux(context.Background(), sock, lagossh.Target{})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if _, err := cl.Run(context.Background(), []string{"true"}, nil, nil, nil); err == nil {
			t.Error("a control connection ran a command")
		}
	})
	if users := srv.Users(); len(users) != 1 || users[0] != "root" {
		t.Errorf("guest logins %q, want the mux's one root login", users)
	}
}

// TestMuxCarriesConcurrentSessions: 32 commands at once through one mux
// all run, each with its own output and exit code, whether the guest
// allows 3 sessions per connection (OpenSSH allows 10) or is a dropbear
// that aborts a connection whose sessions overlap badly; the mux then
// spreads them over a few connections of its own.
func TestMuxCarriesConcurrentSessions(t *testing.T) {
	tests := []struct {
		name string
		opts sshtest.Options
	}{
		{name: "3 sessions per connection", opts: sshtest.Options{Password: "pw", MaxSessions: 3}},
		{name: "dropbear 2022.83", opts: sshtest.Options{Password: "pw", ServerVersion: "SSH-2.0-dropbear_2022.83", DropbearSessionRace: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := sshtest.Start(t, tc.opts)
			sock, _ := startMux(t, srv, lagossh.MuxOptions{})
			runConcurrently(t, 32, func(int) (*lagossh.Client, error) {
				return closed(t)(lagossh.DialMux(context.Background(), sock, muxTarget(srv)))
			})
			if n := srv.Aborted(); n != 0 {
				t.Errorf("the guest aborted %d connections", n)
			}
			if n := srv.Logins(); n < 2 || n > 4 {
				t.Errorf("guest saw %d logins, want the mux's 2 to 4", n)
			}
			t.Logf("%d logins, %d sessions refused", srv.Logins(), srv.Refused())
		})
	}
}

// TestMuxPassesOnSessionClosedBeforeExec: when the guest closes a session
// before it answers the exec, the client sees the close, not a refusal, and
// retries on a new session through the mux.
func TestMuxPassesOnSessionClosedBeforeExec(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{Password: "pw", DropExecs: 1})
	sock, _ := startMux(t, srv, lagossh.MuxOptions{})
	c, err := lagossh.DialMux(context.Background(), sock, muxTarget(srv))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out bytes.Buffer
	code, err := c.Run(context.Background(), []string{"echo", "ran"}, nil, &out, nil)
	if err != nil || code != 0 || out.String() != "ran\n" {
		t.Fatalf("Run through the mux = %d, %v, %q; want the command run once", code, err, out.String())
	}
	if n := srv.DroppedExecs(); n != 1 {
		t.Errorf("server dropped %d execs, want 1", n)
	}
}
