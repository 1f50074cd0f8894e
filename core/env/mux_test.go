package env

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	lagossh "github.com/lago-go/lago/core/ssh"
	"github.com/lago-go/lago/core/ssh/sshtest"
)

// TestMain lets the test binary play the engine's mux process, so the
// real spawn path (argv, stdin request, detached session) is exercised.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == MuxVerb {
		if err := ServeMuxRequest(context.Background(), os.Stdin); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSSHClientKeepsConnection: the first command connects itself and
// starts the mux; later ones reuse the mux's login; a mux whose guest
// connection died is replaced without the caller noticing; Release ends
// it.
func TestSSHClientKeepsConnection(t *testing.T) {
	tmp, err := os.MkdirTemp("/tmp", "m") // socket paths must stay short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	t.Setenv("TMPDIR", tmp)
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
	if n := srv.Logins(); n != 1 {
		t.Fatalf("first command: %d logins, want 1", n)
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
