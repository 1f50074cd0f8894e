package lago

import (
	"context"

	"github.com/lago-go/lago/core/env"
)

// ExportOptions say which VMs Export writes, how and where; the zero
// value is `lago export`'s defaults (every VM, layered, uncompressed,
// into the current folder, init file LagoInitFile in YAML).
type ExportOptions = env.ExportOptions

// ExportResult lists the images, template copies and init file Export
// wrote.
type ExportResult = env.ExportResult

// ExportedDisk is one exported image.
type ExportedDisk = env.ExportedDisk

// VMsNotOffError is Export's error when selected VMs are not off; it names
// them (errors.Is(err, ErrVMsNotOff)).
type VMsNotOffError = env.VMsNotOffError

// ErrVMsNotOff is matched by a *VMsNotOffError.
var ErrVMsNotOff = env.ErrVMsNotOff

// Export writes the disks of the stopped VMs into o.DstDir, sparse, each
// with NAME.hash and NAME.metadata beside it (standalone: flattened;
// layered: one layer on a copy of its template, by relative name; xz when
// o.Compress), and an init file there that recreates the environment from
// those files: `Client.Init` of DstDir/LagoInitFile works on this host or,
// with the folder copied, on another, even while this one still exists.
// Running VMs are an error naming them; a failed export removes what it
// wrote.
func (e *Env) Export(ctx context.Context, o ExportOptions) (*ExportResult, error) {
	if err := e.c.check(); err != nil {
		return nil, err
	}
	return e.c.mgr.Export(ctx, e.path, o)
}
