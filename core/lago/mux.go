package lago

import (
	"context"
	"io"

	lagossh "github.com/lago-go/lago/core/ssh"
)

// SSHMuxVerb is the hidden verb of the lago engine that runs a VM's ssh
// mux (ssh_persist): the process that keeps one connection to the VM for
// the CLI's next commands.
const SSHMuxVerb = lagossh.MuxVerb

// ServeSSHMux is that verb: it reads the mux's request on in and serves
// until the mux is released or idle for ssh_persist.
func ServeSSHMux(ctx context.Context, in io.Reader) error { return lagossh.ServeMuxRequest(ctx, in) }
