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

	lagossh "github.com/lago-go/lago/core/ssh"
)

// A VM's ssh mux is a detached process (the engine's hidden __ssh-mux
// verb) that keeps one connection to the VM open for Persist after its
// last command, so `lago shell` and deploy skip the guest's key exchange.
// There is one per VM and login (user and credentials, see
// lagossh.MuxSocket): a command as another user never runs on root's
// connection. It is an accelerator only: when none runs or it fails, Run
// connects directly. Stop, shutdown, revert and destroy release it, and it exits on
// its own when idle, when its guest connection fails and when the prefix's
// key file disappears.

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

// spawnMux starts a mux for t in the background and does not wait for
// it: this command connects on its own, the next ones find the mux. Its
// failures are quiet by design (the direct path reports them).
func (c SSHClient) spawnMux(t SSHTarget, sock string) {
	// The lock is taken here and handed over, so from our return on a
	// stop or destroy sees the mux starting and ends it.
	lock, err := lagossh.LockMux(sock)
	if err != nil {
		return // one is starting or serving already
	}
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
