//go:build e2e

package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// concurrentShells is how many `lago shell` run at once: more than the
// tiny guest's dropbear accepts unauthenticated connections from one
// client (5) and than OpenSSH's sessions per connection (10).
const concurrentShells = 32

// nScript is /root/n.sh on the guest: `sh /root/n.sh N` prints N and exits
// N%7, so every command has its own output and exit code with argv words
// that need no quoting (the test holds whether `lago shell` quotes its
// words or joins them into one command line).
const nScript = `printf '%s\n' 'echo "$1"' 'exit $(($1 % 7))' >/root/n.sh
`

// TestConcurrentShells: 32 `lago shell vm0 sh /root/n.sh N` started at once
// on the tiny guest all succeed, each with its own output and exit code:
// with ssh_persist off (each logs in, retrying the handshakes dropbear cuts
// beyond 5 at once), with ssh_persist on and no mux yet (they share the mux
// the first one starts) and with the mux up.
// Then a command as another user within root's ssh_persist does not run on
// root's connection.
func TestConcurrentShells(t *testing.T) {
	h := newHarness(t)
	h.initEnv(h.writeInitFile("domains:\n" + vmBlock("vm0", "net: lago") + oneNet))
	h.must("start")
	uuid := h.uuid()
	// Without a mux: the cold phase must find none.
	noMux := []string{"LAGO_SSH_PERSIST=0"}
	if r := h.lagoEnv(noMux, nScript, "shell", "vm0"); r.code != 0 {
		t.Fatalf("writing /root/n.sh:\n%s", r)
	}
	// dropbear logs every login. The count is taken with a login of its
	// own (and no mux), which it includes.
	logins := func(h *harness) int {
		h.t.Helper()
		r := h.lagoEnv(noMux, "", "shell", "vm0", "grep", "-c", "succeeded", "/var/log/dropbear.log")
		n, err := strconv.Atoi(strings.TrimSpace(r.stdout))
		if r.code != 0 || err != nil {
			h.t.Fatalf("counting logins: %v\n%s", err, r)
		}
		return n
	}

	phases := []struct {
		name string
		env  []string
		// socks is how many mux sockets the phase leaves.
		socks int
		// maxLogins bounds the guest logins of the 32 commands.
		maxLogins int
	}{
		{name: "ssh_persist off", env: noMux, maxLogins: concurrentShells},
		// The first command's login and the mux's connections: the
		// tiny guest's dropbear 2022.83 gets one session per
		// connection (it aborts connections whose sessions overlap),
		// and the mux makes up to 4 connections.
		{name: "ssh_persist cold", socks: 1, maxLogins: 1 + 4},
		{name: "ssh_persist warm", socks: 1, maxLogins: 3},
	}
	for _, ph := range phases {
		ok := t.Run(ph.name, func(t *testing.T) {
			h := h.sub(t)
			before := logins(h)
			if ph.name == "ssh_persist cold" {
				if socks := h.muxSockets(uuid); len(socks) != 0 {
					t.Fatalf("a mux runs before the cold phase: %v", socks)
				}
			}
			elapsed := runShells(t, h, ph.env)
			t.Logf("%d concurrent shells, %s: %s", concurrentShells, ph.name, elapsed.Round(time.Millisecond))
			if socks := h.muxSockets(uuid); len(socks) != ph.socks {
				t.Errorf("mux sockets after the phase: %v, want %d", socks, ph.socks)
			}
			// The second count's own login is not the commands'.
			if n := logins(h) - before - 1; n > ph.maxLogins || n < 0 {
				t.Errorf("%d guest logins for %d commands, want at most %d", n, concurrentShells, ph.maxLogins)
			} else {
				t.Logf("%d guest logins for %d commands", n, concurrentShells)
			}
		})
		if !ok {
			return
		}
	}

	// Root's mux is up. The tiny guest has no second user with a login:
	// nobody (shell /bin/false, no password, no key) must be refused, not
	// run as root on root's connection.
	t.Run("another user within root's ssh_persist", func(t *testing.T) {
		h := h.sub(t)
		rootSocks := h.muxSockets(uuid)
		if len(rootSocks) != 1 {
			t.Fatalf("root's mux sockets: %v", rootSocks)
		}
		r := h.lago("--ssh-user", "nobody", "shell", "vm0", "id", "-u")
		if r.code == 0 || strings.TrimSpace(r.stdout) == "0" {
			t.Fatalf("a command as nobody ran as root:\n%s", r)
		}
		if !strings.Contains(r.stderr, "as nobody") || !strings.Contains(r.stderr, "authentication failed") {
			t.Errorf("the refused login as nobody is not reported as such:\n%s", r)
		}
		if socks := h.muxSockets(uuid); len(socks) != 1 || socks[0] != rootSocks[0] {
			t.Errorf("mux sockets after the refused login: %v, want root's %v alone", socks, rootSocks)
		}
		if got := strings.TrimSpace(h.shell("vm0", "id", "-u")); got != "0" {
			t.Errorf("root after nobody: id -u = %q", got)
		}
	})
}

// runShells starts concurrentShells `lago shell vm0 sh /root/n.sh N` at
// once, checks each output and exit code, and returns how long they took
// together.
func runShells(t *testing.T, h *harness, env []string) time.Duration {
	t.Helper()
	type result struct {
		code           int
		stdout, stderr string
		err            error
	}
	results := make([]result, concurrentShells)
	cmds := make([]*exec.Cmd, concurrentShells)
	outs := make([][2]bytes.Buffer, concurrentShells)
	ctx, cancel := context.WithTimeout(context.Background(), lagoTimeout)
	defer cancel()
	for i := range cmds {
		cmd := h.command(ctx, "", "shell", "vm0", "sh", "/root/n.sh", strconv.Itoa(i))
		cmd.Env = append(cmd.Env, env...)
		cmd.Stdout, cmd.Stderr = &outs[i][0], &outs[i][1]
		cmds[i] = cmd
	}
	var wg sync.WaitGroup
	start := time.Now()
	for i, cmd := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code, err = ee.ExitCode(), nil
			}
			results[i] = result{code: code, err: err}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	failed := 0
	for i := range results {
		r := &results[i]
		r.stdout, r.stderr = outs[i][0].String(), outs[i][1].String()
		if want := fmt.Sprintf("%d\n", i); r.err != nil || r.code != i%7 || r.stdout != want {
			failed++
			t.Errorf("shell %d: exit %d (%v), stdout %q, want exit %d, stdout %q; stderr:\n%s", i, r.code, r.err, r.stdout, i%7, want, r.stderr)
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d concurrent shells failed", failed, concurrentShells)
		// For the post-mortem: what the guest's sshd said.
		r := h.lagoEnv([]string{"LAGO_SSH_PERSIST=0"}, "", "shell", "vm0", "tail", "-n", "60", "/var/log/dropbear.log")
		t.Logf("the guest's /var/log/dropbear.log ends with:\n%s", r.stdout)
	}
	return elapsed
}

// lagoEnv is lagoStdin with env added to lago's environment.
func (h *harness) lagoEnv(env []string, stdin string, args ...string) result {
	h.t.Helper()
	c := *h
	c.extraEnv = append(append([]string(nil), h.extraEnv...), env...)
	return c.lagoStdin(stdin, args...)
}
