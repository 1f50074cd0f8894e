package env

import (
	"context"

	lagossh "github.com/lago-go/lago/core/ssh"
)

// SSHClient's kept connections are core/ssh's muxes (see
// core/ssh/muxclient.go, which owns their sockets, lock, process and
// lifecycle); this file only maps env's targets onto them.

// muxer is the core/ssh side of c's ssh_persist settings.
func (c SSHClient) muxer() lagossh.Muxer {
	return lagossh.Muxer{Persist: c.Persist, Command: c.MuxCommand}
}

// run runs do on a connection to t: through t's mux when one serves or
// is starting, else on a connection of its own (see lagossh.Muxer.Run).
func (c SSHClient) run(ctx context.Context, t SSHTarget, do func(*lagossh.Client) (int, error)) (int, error) {
	code, err := c.muxer().Run(ctx, t.UUID, t.VM, t.Target(), do)
	return code, SSHUserError(err)
}

// Release implements SSHReleaser: it stops the VM's muxes of every login.
func (c SSHClient) Release(ctx context.Context, t SSHTarget) {
	lagossh.ReleaseVMMuxes(ctx, t.UUID, t.VM)
}

// ReleaseAll implements SSHReleaser.
func (c SSHClient) ReleaseAll(ctx context.Context, uuid string) {
	lagossh.ReleasePrefixMuxes(ctx, uuid)
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
