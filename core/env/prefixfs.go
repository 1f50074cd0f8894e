package env

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/lago-go/lago/core/prefix"
	"github.com/lago-go/lago/core/spec"
	"github.com/lago-go/lago/core/version"
)

// KeyType is the type of the ssh key each new prefix gets ("rsa", as the
// original: guests of old templates know no other).
var KeyType = "rsa"

// createPrefix makes the prefix folder with its uuid (written first, so
// anything leased or created later can be traced back to and removed with
// this prefix), ssh keys, metadata and empty subfolders, but no
// `initialized`. The folder must not exist: two inits of one prefix must
// not share it.
func createPrefix(path string) (*prefix.Prefix, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, userErrorf("prefix %s already exists", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("create prefix %s: %w", path, err)
	}
	p, err := prefix.Create(path, prefix.CreateOptions{LagoVersion: version.Version, KeyType: KeyType})
	if err != nil {
		return p, fmt.Errorf("create prefix %s: %w", path, err)
	}
	return p, nil
}

// writeSpecs writes every net and VM spec, then virt/env, which names
// them: a prefix whose virt/env exists has all its specs.
func writeSpecs(p *prefix.Prefix, nets []spec.Net, vms []spec.VM) error {
	return p.Save(&prefix.Specs{Nets: nets, VMs: vms})
}
