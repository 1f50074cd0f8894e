package lago

import (
	"context"

	"github.com/lago-go/lago/core/env"
)

// CopyTo copies a local file or folder into the VM at remote, keeping
// modes and mtimes, streamed. A missing local path is an error naming it.
func (v *VM) CopyTo(ctx context.Context, local, remote string) error {
	if err := v.env.c.check(); err != nil {
		return err
	}
	return v.env.c.mgr.CopyTo(ctx, v.env.path, v.Name, local, remote)
}

// CopyFrom copies a file or folder of the VM to local. Nothing appears
// under local's final name until the copy is complete; a missing remote
// path is an error naming the VM and the path.
func (v *VM) CopyFrom(ctx context.Context, remote, local string) error {
	if err := v.env.c.check(); err != nil {
		return err
	}
	return v.env.c.mgr.CopyFrom(ctx, v.env.path, v.Name, remote, local)
}

// CollectOptions say how Collect treats missing artifacts.
type CollectOptions = env.CollectOptions

// CollectResult is what Collect copied from one VM.
type CollectResult = env.CollectResult

// Collect copies every VM's artifacts (the init file's `artifacts`) into
// dir/<vm>/, names with / replaced by _, VMs in parallel; an existing dir
// is first renamed with a timestamp suffix. A running VM's come over ssh;
// a stopped VM's are read from its disks, read-only, by its provider
// (CollectResult.FromDisks). Everything a guest sends is confined to its
// folder.
func (e *Env) Collect(ctx context.Context, dir string, o CollectOptions) ([]CollectResult, error) {
	if err := e.c.check(); err != nil {
		return nil, err
	}
	return e.c.mgr.Collect(ctx, e.path, dir, o)
}
