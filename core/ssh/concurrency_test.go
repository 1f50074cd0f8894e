package ssh_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	lagossh "github.com/lago-go/lago/core/ssh"
	"github.com/lago-go/lago/core/ssh/sshtest"
)

// TestDialConcurrentLogins: 32 direct logins at once to a guest that drops
// connections beyond 2 unauthenticated ones (dropbear: 5) all get in, and
// 32 goroutines sharing one Client on a guest that allows 3 sessions per
// connection all run.
func TestDialConcurrentLogins(t *testing.T) {
	t.Run("one connection each", func(t *testing.T) {
		srv := sshtest.Start(t, sshtest.Options{Password: "pw", MaxUnauth: 2, AuthDelay: 30 * time.Millisecond})
		runConcurrently(t, 32, func(int) (*lagossh.Client, error) {
			return closed(t)(lagossh.Dial(context.Background(), lagossh.Target{Addr: srv.Addr(), Password: "pw"}))
		})
		if srv.Dropped() == 0 {
			t.Error("the guest never dropped a connection: the test did not reach the limit")
		}
		t.Logf("%d logins, %d connections dropped", srv.Logins(), srv.Dropped())
	})
	t.Run("one shared client", func(t *testing.T) {
		srv := sshtest.Start(t, sshtest.Options{Password: "pw", MaxSessions: 3})
		cl, err := lagossh.Dial(context.Background(), lagossh.Target{Addr: srv.Addr(), Password: "pw"})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		runConcurrently(t, 32, func(int) (*lagossh.Client, error) { return cl, nil })
		if srv.Refused() == 0 {
			t.Error("the guest never refused a session: the test did not reach the limit")
		}
	})
	// dropbear 2022.83 aborts a connection whose sessions overlap badly:
	// a shared client to it runs one session at a time.
	t.Run("one shared client, dropbear 2022.83", func(t *testing.T) {
		srv := sshtest.Start(t, sshtest.Options{Password: "pw", ServerVersion: "SSH-2.0-dropbear_2022.83", DropbearSessionRace: true})
		cl, err := lagossh.Dial(context.Background(), lagossh.Target{Addr: srv.Addr(), Password: "pw"})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		runConcurrently(t, 32, func(int) (*lagossh.Client, error) { return cl, nil })
		if n := srv.Aborted(); n != 0 {
			t.Errorf("the guest aborted %d connections", n)
		}
	})
}

// closed returns a function that passes a dial's result through and
// closes the client when the test ends.
func closed(t *testing.T) func(*lagossh.Client, error) (*lagossh.Client, error) {
	return func(cl *lagossh.Client, err error) (*lagossh.Client, error) {
		if err == nil {
			t.Cleanup(func() { cl.Close() })
		}
		return cl, err
	}
}

// runConcurrently runs `echo N; exit N%7` for N in 0..n-1 at once (5 ms
// apart), each on
// the client connect(N) returns, and checks every output and exit code.
func runConcurrently(t *testing.T, n int, connect func(int) (*lagossh.Client, error)) {
	t.Helper()
	type result struct {
		code int
		out  string
		err  error
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// Staggered a little, as processes started together are:
			// later commands start while earlier ones exit.
			time.Sleep(time.Duration(i) * 5 * time.Millisecond)
			cl, err := connect(i)
			if err != nil {
				results[i].err = err
				return
			}
			var out bytes.Buffer
			// A short sleep keeps the sessions open together.
			code, err := cl.Run(context.Background(), []string{"sh", "-c", fmt.Sprintf("sleep 0.1; echo %d; exit %d", i, i%7)}, nil, &out, nil)
			results[i] = result{code, out.String(), err}
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	t.Logf("%d concurrent commands in %s", n, time.Since(began).Round(time.Millisecond))
	failed := 0
	for i, r := range results {
		if r.err != nil || r.code != i%7 || r.out != fmt.Sprintf("%d\n", i) {
			failed++
			t.Errorf("command %d: code %d out %q err %v, want code %d out %q", i, r.code, r.out, r.err, i%7, fmt.Sprintf("%d\n", i))
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d concurrent commands failed", failed, n)
	}
}
