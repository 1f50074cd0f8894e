package lago

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/lago-go/lago/core/env"
	"github.com/lago-go/lago/core/ssh/sshtest"
)

func keptTarget(t *testing.T, srv *sshtest.Server, vm string) env.SSHTarget {
	t.Helper()
	host, port, err := net.SplitHostPort(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return env.SSHTarget{VM: vm, Host: host, Port: p, User: "root", Password: "pw", UUID: "u1"}
}

// TestKeptSSHReusesOneLogin: a program's commands on one VM cost one
// login, not one each; that is what makes the Go API cheaper than `lago
// shell` per command.
func TestKeptSSHReusesOneLogin(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
	k := newKeptSSH(env.SSHClient{})
	defer k.closeAll()
	tg := keptTarget(t, srv, "vm0")
	ctx := context.Background()
	for i := range 5 {
		var out bytes.Buffer
		code, err := k.Run(ctx, tg, []string{"echo", "hi " + strconv.Itoa(i)}, nil, &out, nil)
		if err != nil || code != 0 || out.String() != "hi "+strconv.Itoa(i)+"\n" {
			t.Fatalf("run %d: code %d err %v out %q", i, code, err, out.String())
		}
	}
	code, err := k.RunCommandLine(ctx, tg, "exit 7", nil, nil, nil)
	if err != nil || code != 7 {
		t.Fatalf("command line: code %d err %v, want 7", code, err)
	}
	if n := srv.Logins(); n != 1 {
		t.Fatalf("logins = %d, want 1", n)
	}
}

// TestKeptSSHConcurrent: concurrent commands on one VM each get a
// connection; none waits for or breaks another, and at most keptIdleMax
// stay open afterwards.
func TestKeptSSHConcurrent(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
	k := newKeptSSH(env.SSHClient{})
	defer k.closeAll()
	tg := keptTarget(t, srv, "vm0")
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			want := "n" + strconv.Itoa(i) + "\n"
			code, err := k.Run(context.Background(), tg, []string{"sh", "-c", "sleep 0.2; echo n" + strconv.Itoa(i)}, nil, &out, nil)
			if err != nil || code != 0 || out.String() != want {
				errc <- err
				t.Errorf("run %d: code %d err %v out %q", i, code, err, out.String())
			}
		}()
	}
	wg.Wait()
	k.mu.Lock()
	idle := len(k.idle[keptKey(tg)])
	k.mu.Unlock()
	if idle > keptIdleMax || idle == 0 {
		t.Fatalf("idle connections = %d, want 1..%d", idle, keptIdleMax)
	}
}

// TestKeptSSHRedialsDroppedConnection: a kept connection the guest
// dropped (a reboot) is replaced once, transparently; Release drops the
// VM's connections so the next command logs in afresh.
func TestKeptSSHRedialsDroppedConnection(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
	k := newKeptSSH(env.SSHClient{})
	defer k.closeAll()
	tg := keptTarget(t, srv, "vm0")
	ctx := context.Background()
	if code, err := k.Run(ctx, tg, []string{"true"}, nil, nil, nil); err != nil || code != 0 {
		t.Fatalf("first run: %d %v", code, err)
	}
	srv.Drop()
	if code, err := k.Run(ctx, tg, []string{"true"}, nil, nil, nil); err != nil || code != 0 {
		t.Fatalf("run after drop: %d %v", code, err)
	}
	if n := srv.Logins(); n != 2 {
		t.Fatalf("logins = %d, want 2 (one re-dial)", n)
	}
	k.Release(ctx, tg)
	if code, err := k.Run(ctx, tg, []string{"true"}, nil, nil, nil); err != nil || code != 0 {
		t.Fatalf("run after release: %d %v", code, err)
	}
	if n := srv.Logins(); n != 3 {
		t.Fatalf("logins = %d, want 3 (release forgets the connection)", n)
	}
	other := tg
	other.VM = "vm1"
	k.Release(ctx, other) // another VM's release keeps vm0's connection
	if _, err := k.Run(ctx, tg, []string{"true"}, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if n := srv.Logins(); n != 3 {
		t.Fatalf("logins = %d, want 3", n)
	}
	k.closeAll()
	if _, err := k.Run(ctx, tg, []string{"true"}, nil, nil, nil); err == nil {
		t.Fatal("run after close: no error")
	}
}
