package env

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/lago-go/lago/core/prefix"
	"github.com/lago-go/lago/core/spec"
	"github.com/lago-go/lago/core/version"

	"github.com/lago-go/lago/core/errs"
)

// KeyType is the type of the ssh key each new prefix gets. ed25519, not
// the original's RSA: generating an RSA key alone costs about half a second
// of `init` on a 2-core host, and every sshd of the last decade (OpenSSH
// 6.5+, dropbear 2020+) accepts ed25519. The files keep the id_rsa names
// so tools that look for them still find them.
var KeyType = "ed25519"

// createPrefix makes the prefix folder with its uuid (written first, so
// anything leased or created later can be traced back to and removed with
// this prefix), ssh keys, metadata and empty subfolders, but no
// `initialized`. The folder must not exist: two inits of one prefix must
// not share it.
func createPrefix(path string) (*prefix.Prefix, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, errs.User(fmt.Errorf("prefix %s: %w", path, ErrPrefixExists))
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

// copyDeployScripts copies each VM's deploy scripts into the prefix's
// scripts/ folder and points the VM's metadata at the copies (stored as
// $LAGO_PREFIX_PATH/scripts/...), as the original does, so a prefix keeps
// working when the originals change or go.
func copyDeployScripts(p *prefix.Prefix, vm *spec.VM) error {
	scripts := vm.DeployScripts()
	if len(scripts) == 0 {
		return nil
	}
	if err := os.MkdirAll(p.ScriptsDir(), 0o755); err != nil {
		return fmt.Errorf("copy deploy scripts of vm %s: %w", vm.Name, err)
	}
	copies := make([]any, 0, len(scripts))
	for _, src := range scripts {
		data, err := os.ReadFile(src)
		if err != nil {
			return userErrorf("copy deploy script of vm %s: %w", vm.Name, err)
		}
		st, err := os.Stat(src)
		if err != nil {
			return userErrorf("copy deploy script of vm %s: %w", vm.Name, err)
		}
		dst := p.ScriptPath(src)
		if err := prefix.WriteFileAtomic(dst, data, scriptCopyMode(st.Mode())); err != nil {
			return fmt.Errorf("copy deploy script of vm %s: %w", vm.Name, err)
		}
		copies = append(copies, p.Collapse(dst))
	}
	md := make(map[string]any, len(vm.Metadata))
	for k, v := range vm.Metadata {
		md[k] = v
	}
	md["deploy-scripts"] = copies
	vm.Metadata = md
	return nil
}

// scriptCopyMode is the mode of a deploy script's copy in the prefix: the
// owner may read, write and run it; group and others get no more than the
// original grants them (at most r-x), since a script may hold a token or a
// password its author kept private with 0700.
func scriptCopyMode(src fs.FileMode) fs.FileMode {
	return 0o700 | src.Perm()&0o055
}
