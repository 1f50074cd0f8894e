package env

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/lago-go/lago/core/errs"
	lagossh "github.com/lago-go/lago/core/ssh"
	"github.com/lago-go/lago/core/ssh/sshtest"
)

// The mux itself (sockets, lock hand-over, spawn, release) is core/ssh's
// and tested there (core/ssh/muxclient_test.go); these tests cover env's
// adapter onto it.

// TestMain lets the test binary play the engine's mux process, so
// SSHClient's tests with ssh_persist go through a real mux.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == lagossh.MuxVerb {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		if err := lagossh.ServeMuxRequest(ctx, os.Stdin); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// socket is t's mux socket under c's settings, "" when c starts none.
func (c SSHClient) socket(t SSHTarget) string {
	return c.muxer().Socket(t.UUID, t.VM, t.Target())
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

// TestSSHClientMux: with ssh_persist, SSHClient's commands go through the
// VM's mux and Release and ReleaseAll (what stop and destroy call) end
// it; a wrong password is the user's error (exit status 2) whether or not
// a mux would serve.
func TestSSHClientMux(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
	host, port, _ := net.SplitHostPort(srv.Addr())
	p, _ := strconv.Atoi(port)
	tests := []struct {
		name    string
		persist time.Duration
		release func(SSHClient, SSHTarget)
	}{
		{"direct", 0, nil},
		{"mux, Release", 30 * time.Second, func(c SSHClient, t SSHTarget) { c.Release(context.Background(), t) }},
		{"mux, ReleaseAll", 30 * time.Second, func(c SSHClient, t SSHTarget) { c.ReleaseAll(context.Background(), t.UUID) }},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			shortTmpdir(t)
			target := SSHTarget{VM: "vm0", Host: host, Port: p, User: "root", Password: "pw", UUID: fmt.Sprintf("abcd%02d", i)}
			c := SSHClient{Persist: tc.persist, MuxCommand: []string{os.Args[0], lagossh.MuxVerb}}
			t.Cleanup(func() { c.ReleaseAll(context.Background(), target.UUID) })

			bad := target
			bad.Password = "wrong"
			if _, err := c.Run(context.Background(), bad, []string{"true"}, nil, nil, nil); !errs.IsUser(err) || !errors.Is(err, lagossh.ErrAuth) {
				t.Errorf("wrong password: err = %v, want a user error wrapping ssh.ErrAuth", err)
			}

			if code, err := c.Run(context.Background(), target, []string{"true"}, nil, nil, nil); err != nil || code != 0 {
				t.Fatalf("run: code %d err %v", code, err)
			}
			sock := c.socket(target)
			if tc.persist == 0 {
				if sock != "" {
					t.Errorf("socket %q with ssh_persist off", sock)
				}
				return
			}
			waitMux(t, sock)
			logins := srv.Logins()
			if code, err := c.Run(context.Background(), target, []string{"true"}, nil, nil, nil); err != nil || code != 0 {
				t.Fatalf("run through the mux: code %d err %v", code, err)
			}
			if n := srv.Logins() - logins; n != 0 {
				t.Errorf("%d logins through the mux, want 0", n)
			}
			tc.release(c, target)
			for _, f := range []string{sock, sock + ".lock"} {
				if _, err := os.Stat(f); !os.IsNotExist(err) {
					t.Errorf("%s after release: %v", f, err)
				}
			}
		})
	}
}
