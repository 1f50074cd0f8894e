package env

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	xssh "golang.org/x/crypto/ssh"

	lagossh "github.com/lago-go/lago/core/ssh"
)

// A VM's ssh mux is a detached process (the engine's hidden __ssh-mux
// verb) that keeps one connection to the VM open for Persist after its
// last command, so `lago shell` and deploy skip the guest's key exchange.
// There is one per VM and login (user and credentials, see
// lagossh.MuxSocket): a command as another user never runs on root's
// connection. It is an accelerator only: when none runs or it fails, Run
// connects directly. Stop, shutdown, revert and destroy release it, and it
// exits on its own when idle, when its guest connection fails and when the
// prefix's key file disappears.
//
// Concurrent commands share it even when none runs yet: the first takes
// the mux's lock, connects and starts the mux; the others find the lock
// taken and wait for the mux instead of each logging in, which a guest's
// sshd would refuse beyond a few at once (dropbear: 5 unauthenticated
// connections per client).

// MuxRequest is what the mux process reads on stdin (JSON): a password
// stays out of argv, where ps would show it.
type MuxRequest struct {
	Target lagossh.Target
	Socket string
	Idle   time.Duration
	// LockInherited says the spawner took the mux's lock and passed it
	// as file descriptor 3.
	LockInherited bool
}

// muxLockFD is where a spawned mux finds its inherited lock.
const muxLockFD = 3

// socket returns t's mux socket, or "" when muxes are off or unusable.
func (c SSHClient) socket(t SSHTarget) string {
	if c.Persist <= 0 || len(c.MuxCommand) == 0 {
		return ""
	}
	return c.socketAlways(t)
}

// run runs do on a connection to t: through t's mux when one serves or
// is starting, else on a connection of its own, starting the mux for the
// next commands when none is.
func (c SSHClient) run(ctx context.Context, t SSHTarget, do func(*lagossh.Client) (int, error)) (int, error) {
	target := c.target(t)
	sock := c.socket(t)
	var lock *os.File
	// A second round only when another command took the lock between
	// our look and our claim: its mux is then worth waiting for.
	for round := 0; sock != "" && round < 2; round++ {
		cl, err := lagossh.DialMuxWait(ctx, sock, target, muxStartWait)
		if errors.Is(err, lagossh.ErrMuxRefused) {
			break
		}
		if err == nil {
			code, err := do(cl)
			cl.Close()
			var oe *xssh.OpenChannelError
			if !errors.As(err, &oe) {
				return code, err
			}
			// Nothing ran. A mux that lost its guest (stopped,
			// rebooted behind our back) is replaced; one that
			// refused for another reason is left to its sessions.
			if oe.Reason != xssh.ConnectionFailed {
				break
			}
			lagossh.StopMux(ctx, sock)
		}
		if lock, err = lagossh.LockMux(sock); err == nil {
			break
		}
		lock = nil
	}
	cl, err := lagossh.Dial(ctx, target)
	if err != nil {
		if lock != nil {
			// Commands waiting for our mux go their own way.
			_ = os.Remove(sock + ".lock")
			lock.Close()
		}
		return -1, sshUserError(err)
	}
	if lock != nil {
		// Before our command, after our key exchange: the mux's
		// key exchange then overlaps the command rather than
		// competing with ours for the guest's CPU.
		c.startMux(t, sock, lock)
	}
	code, err := do(cl)
	cl.Close()
	return code, err
}

// muxStartWait bounds the wait for a mux that is still starting: the
// command that started it connects first (up to the dial and handshake
// timeouts), then the mux does (0.1-0.3 s of key exchange on a TCG
// guest). A mux that fails releases its lock, which ends the wait at once.
const muxStartWait = 20 * time.Second

// spawnMux starts a mux for t in the background and does not wait for
// it. Its failures are quiet by design (the direct path reports them).
func (c SSHClient) spawnMux(t SSHTarget, sock string) {
	lock, err := lagossh.LockMux(sock)
	if err != nil {
		return // one is starting or serving already
	}
	c.startMux(t, sock, lock)
}

// startMux starts a mux for t, handing it lock (see lagossh.LockMux), which
// it closes here. The lock is taken before the mux process starts, so from
// then on a stop or destroy sees the mux starting and ends it.
func (c SSHClient) startMux(t SSHTarget, sock string, lock *os.File) {
	defer lock.Close()
	req, err := json.Marshal(MuxRequest{Target: c.target(t), Socket: sock, Idle: c.Persist, LockInherited: true})
	if err != nil {
		return
	}
	cmd := exec.Command(c.MuxCommand[0], c.MuxCommand[1:]...) //nolint:gosec // our own engine binary
	cmd.ExtraFiles = []*os.File{lock}                         // fd 3
	in, err := cmd.StdinPipe()
	if err != nil {
		return
	}
	// Its own session: a Ctrl-C meant for this command must not kill
	// the mux, and it outlives us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		_ = os.Remove(sock + ".lock")
		return
	}
	_, _ = lock.WriteAt([]byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0)
	_, _ = in.Write(req)
	in.Close()
	_ = cmd.Process.Release()
}

// Release implements SSHReleaser: it stops the VM's muxes of every login.
func (c SSHClient) Release(ctx context.Context, t SSHTarget) {
	if t.UUID == "" {
		return
	}
	if dir, err := lagossh.MuxDir(); err == nil {
		lagossh.StopVMMuxes(ctx, dir, t.UUID, t.VM)
	}
}

// ReleaseAll implements SSHReleaser.
func (c SSHClient) ReleaseAll(ctx context.Context, uuid string) {
	if uuid == "" {
		return
	}
	if dir, err := lagossh.MuxDir(); err == nil {
		lagossh.StopMuxes(ctx, dir, uuid)
	}
}

// socketAlways is t's socket whatever Persist says now: a mux started by
// an earlier command with other settings must be released too.
func (c SSHClient) socketAlways(t SSHTarget) string {
	if t.UUID == "" {
		return ""
	}
	dir, err := lagossh.MuxDir()
	if err != nil {
		return ""
	}
	return lagossh.MuxSocket(dir, t.UUID, t.VM, c.target(t))
}

// ServeMuxRequest is the mux process: it reads a MuxRequest from in and
// serves until the mux exits. It stops early when the prefix's key file
// goes (the prefix was destroyed or removed).
func ServeMuxRequest(ctx context.Context, in io.Reader) error {
	var req MuxRequest
	if err := json.NewDecoder(in).Decode(&req); err != nil {
		return fmt.Errorf("ssh mux request: %w", err)
	}
	if req.Socket == "" {
		return errors.New("ssh mux request: no socket")
	}
	alive := func() bool { return true }
	if k := req.Target.KeyPath; k != "" {
		alive = func() bool {
			_, err := os.Stat(k)
			return err == nil
		}
	}
	o := lagossh.MuxOptions{Socket: req.Socket, Idle: req.Idle, Alive: alive}
	if req.LockInherited {
		o.Lock = os.NewFile(muxLockFD, req.Socket+".lock")
	}
	err := lagossh.ServeMux(ctx, req.Target, o, nil)
	if errors.Is(err, lagossh.ErrMuxRunning) {
		return nil
	}
	return err
}

// releaseSSH closes kept connections to the named VMs of e (all when
// names is empty) before a verb changes what runs in them.
func (m *Manager) releaseSSH(ctx context.Context, e *Environment, names []string) {
	r, ok := m.deps.SSH.(SSHReleaser)
	if !ok {
		return
	}
	if len(names) == 0 {
		r.ReleaseAll(ctx, e.UUID)
		return
	}
	for _, n := range names {
		v := e.VM(n)
		if v == nil {
			continue
		}
		if t, err := m.sshTarget(e, v); err == nil {
			r.Release(ctx, t)
		}
	}
}
