package env

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/lago-go/lago/core/errs"
	lagossh "github.com/lago-go/lago/core/ssh"
)

// This file adapts the real packages to env's small interfaces.

// SSHClient implements SSH with core/ssh. With Persist set, Run reuses a
// connection kept open by a per-VM mux process (lagossh.Muxer).
type SSHClient struct {
	// Persist is how long a VM's mux keeps its connection after the last
	// command; zero connects afresh every time.
	Persist time.Duration
	// MuxCommand is the argv that starts a mux (the engine's hidden
	// __ssh-mux verb); it reads a lagossh.MuxRequest on stdin.
	MuxCommand []string
}

var (
	_ SSH         = SSHClient{}
	_ SSHReleaser = SSHClient{}
)

// Target maps t onto core/ssh's target.
func (t SSHTarget) Target() lagossh.Target {
	addr := t.Host
	if t.Port != 0 && t.Port != 22 {
		addr = net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
	}
	return lagossh.Target{Addr: addr, User: t.User, Password: t.Password, KeyPath: t.KeyFile, KnownHostsPath: t.KnownHostsFile}
}

// WaitReady implements SSH.
func (c SSHClient) WaitReady(ctx context.Context, t SSHTarget) error {
	return SSHUserError(lagossh.WaitReady(ctx, t.Target(), 0))
}

// SSHUserError marks the ssh failures the user can fix (wrong password or
// key, a guest whose host key changed) as Lago errors: exit status 2.
func SSHUserError(err error) error {
	var changed *lagossh.HostKeyChangedError
	if errors.Is(err, lagossh.ErrAuth) || errors.As(err, &changed) {
		return errs.User(err)
	}
	return err
}

// Run implements SSH: an interactive shell (with a pty when stdin is a
// terminal) when argv is empty, else argv. It goes through the VM's mux
// for this login when one runs or is starting, and otherwise connects
// directly and starts a mux for the next commands (see lagossh.Muxer.Run).
func (c SSHClient) Run(ctx context.Context, t SSHTarget, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	return c.run(ctx, t, func(cl *lagossh.Client) (int, error) {
		return runOn(ctx, cl, argv, stdin, stdout, stderr)
	})
}

func runOn(ctx context.Context, cl *lagossh.Client, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if len(argv) == 0 {
		if f, ok := stdin.(*os.File); ok {
			return cl.Shell(ctx, f, stdout, stderr)
		}
		return cl.RunCommand(ctx, "", stdin, stdout, stderr)
	}
	return cl.Run(ctx, argv, stdin, stdout, stderr)
}
