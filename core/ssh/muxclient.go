package ssh

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
)

// This file is the client side of the mux (mux.go is the server): which
// socket a command uses, the lock hand-over to a mux being spawned, the
// detached mux process and the choice between the mux and a connection
// of the command's own. It lives beside the server so that one package
// owns the protocol, the lock and the lifecycle.
//
// A VM's mux is a detached process (the engine's hidden MuxVerb) that
// keeps one connection to the VM open for Persist after its last command,
// so `lago shell` and deploy skip the guest's key exchange. There is one
// per VM and login (user and credentials, see MuxSocket): a command as
// another user never runs on root's connection. It is an accelerator only:
// when none runs or it fails, Run connects directly. Stop, shutdown,
// revert and destroy release it (ReleaseVMMuxes, ReleasePrefixMuxes), and
// it exits on its own when idle, when its guest connection fails and when
// the prefix's key file disappears.
//
// Concurrent commands share it even when none runs yet: the first takes
// the mux's lock, connects and starts the mux; the others find the lock
// taken and wait for the mux instead of each logging in, which a guest's
// sshd would refuse beyond a few at once (dropbear: 5 unauthenticated
// connections per client).

// MuxRequest is what the mux process reads on stdin (JSON): a password
// stays out of argv, where ps would show it.
type MuxRequest struct {
	Target Target
	Socket string
	Idle   time.Duration
	// LockInherited says the spawner took the mux's lock and passed it
	// as file descriptor 3.
	LockInherited bool
}

// muxLockFD is where a spawned mux finds its inherited lock.
const muxLockFD = 3

// muxStartWait bounds the wait for a mux that is still starting: the
// command that started it connects first (up to the dial and handshake
// timeouts), then the mux does (0.1-0.3 s of key exchange on a TCG
// guest). A mux that fails releases its lock, which ends the wait at once.
const muxStartWait = 20 * time.Second

// Muxer runs commands on VMs through their muxes, starting one when none
// runs. The zero Muxer starts none and always connects directly.
type Muxer struct {
	// Persist is how long a VM's mux keeps its connection after the last
	// command; zero connects afresh every time.
	Persist time.Duration
	// Command is the argv that starts a mux process: one that calls
	// ServeMuxRequest with its stdin (the engine's hidden MuxVerb).
	Command []string
}

// Socket returns the socket of the mux that logs in as t to the VM named
// vm of the prefix with this uuid, or "" when m starts no muxes or the VM
// cannot have one (no uuid, no private mux folder).
func (m Muxer) Socket(uuid, vm string, t Target) string {
	if m.Persist <= 0 || len(m.Command) == 0 {
		return ""
	}
	return muxSocketOf(uuid, vm, t)
}

// muxSocketOf is the mux socket of a VM and login whatever a Muxer's
// settings are, or "" when the VM cannot have one.
func muxSocketOf(uuid, vm string, t Target) string {
	if uuid == "" {
		return ""
	}
	dir, err := MuxDir()
	if err != nil {
		return ""
	}
	return MuxSocket(dir, uuid, vm, t)
}

// Run calls do with a connection to t, the VM named vm of the prefix with
// this uuid: through the VM's mux for t's login when one serves or is
// starting, else on a connection of its own, which then starts the mux
// for the next commands. A mux that lost its guest is replaced without
// the caller noticing. Run returns do's results, or Dial's error (ErrAuth,
// *HostKeyChangedError, ...) when no connection could be made.
func (m Muxer) Run(ctx context.Context, uuid, vm string, t Target, do func(*Client) (int, error)) (int, error) {
	sock := m.Socket(uuid, vm, t)
	var lock *os.File
	// A second round only when another command took the lock between
	// our look and our claim: its mux is then worth waiting for.
	for round := 0; sock != "" && round < 2; round++ {
		cl, err := DialMuxWait(ctx, sock, t, muxStartWait)
		if errors.Is(err, ErrMuxRefused) {
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
			StopMux(ctx, sock)
		}
		if lock, err = LockMux(sock); err == nil {
			break
		}
		lock = nil
	}
	cl, err := Dial(ctx, t)
	if err != nil {
		if lock != nil {
			// Commands waiting for our mux go their own way.
			_ = os.Remove(sock + ".lock")
			lock.Close()
		}
		return -1, err
	}
	if lock != nil {
		// Before our command, after our key exchange: the mux's
		// key exchange then overlaps the command rather than
		// competing with ours for the guest's CPU.
		m.start(t, sock, lock)
	}
	code, err := do(cl)
	cl.Close()
	return code, err
}

// spawn starts a mux for t on sock in the background and does not wait
// for it. Its failures are quiet by design (the direct path reports them).
func (m Muxer) spawn(t Target, sock string) {
	lock, err := LockMux(sock)
	if err != nil {
		return // one is starting or serving already
	}
	m.start(t, sock, lock)
}

// start starts a mux for t, handing it lock (see LockMux), which it closes
// here. The lock is taken before the mux process starts, so from then on
// a stop or destroy sees the mux starting and ends it.
func (m Muxer) start(t Target, sock string, lock *os.File) {
	defer lock.Close()
	req, err := json.Marshal(MuxRequest{Target: t, Socket: sock, Idle: m.Persist, LockInherited: true})
	if err != nil {
		return
	}
	cmd := exec.Command(m.Command[0], m.Command[1:]...) //nolint:gosec // our own engine binary
	cmd.ExtraFiles = []*os.File{lock}                   // fd 3
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

// ReleaseVMMuxes stops the muxes of every login of the VM named vm of the
// prefix with this uuid, serving or still starting, whatever Persist
// started them: a verb about to stop, revert or destroy the VM calls it.
func ReleaseVMMuxes(ctx context.Context, uuid, vm string) {
	if uuid == "" {
		return
	}
	if dir, err := MuxDir(); err == nil {
		StopVMMuxes(ctx, dir, uuid, vm)
	}
}

// ReleasePrefixMuxes stops every mux of the prefix with this uuid.
func ReleasePrefixMuxes(ctx context.Context, uuid string) {
	if uuid == "" {
		return
	}
	if dir, err := MuxDir(); err == nil {
		StopMuxes(ctx, dir, uuid)
	}
}

// ServeMuxRequest is the mux process (what a Muxer's Command runs): it
// reads a MuxRequest from in and serves until the mux exits. It stops
// early when the prefix's key file goes (the prefix was destroyed or
// removed). A second mux for a socket that one serves already returns nil.
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
	o := MuxOptions{Socket: req.Socket, Idle: req.Idle, Alive: alive}
	if req.LockInherited {
		o.Lock = os.NewFile(muxLockFD, req.Socket+".lock")
	}
	err := ServeMux(ctx, req.Target, o, nil)
	if errors.Is(err, ErrMuxRunning) {
		return nil
	}
	return err
}
