package provider

import (
	"context"
	"errors"
	"fmt"
	"os"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	"github.com/lago-go/lago/sdk"
)

var _ sdk.SerialLogReader = (*Provider)(nil)

// SerialLog returns the end of vm's serial console log: the local file at
// its serial_log_path, or on a remote host the log volume beside its disks
// (downloaded through libvirt, which is the only way in). A VM that has
// not run yet has no log: nothing, no error.
func (p *Provider) SerialLog(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, maxBytes int64) ([]byte, error) {
	if maxBytes <= 0 {
		maxBytes = sdk.DefaultSerialLogBytes
	}
	c, cfg, _, warns, err := p.connect(ctx)
	if err != nil {
		return nil, err
	}
	if !cfg.Remote {
		var b []byte
		if path := vm.GetSerialLogPath(); path != "" {
			b, err = sdk.ReadFileTail(path, maxBytes)
		}
		if errors.Is(err, os.ErrNotExist) {
			b, err = nil, nil // not started yet
		}
		if err != nil {
			return nil, withWarnings(warns, errorDiag(vmLabel(env, vm)+": cannot read its serial log", err))
		}
		return b, withWarnings(warns, nil)
	}
	name := serialVolumeName(env.GetUuid(), vm.GetName())
	b, err := c.VolumeTail(cfg.Pool, name, maxBytes)
	if errors.Is(err, ErrNotFound) {
		return nil, withWarnings(warns, nil)
	}
	if err != nil {
		return nil, withWarnings(warns, errorDiag(fmt.Sprintf("%s: cannot read its serial log %s/%s", vmLabel(env, vm), cfg.Pool, name), err))
	}
	return b, withWarnings(warns, nil)
}
