package prefix

import "github.com/lago-go/lago/core/spec"

// RootPasswordFor says which of a VM's root passwords RootPassword
// answers with: the one bootstrap is to set, or the one the guest has.
type RootPasswordFor int

const (
	// GuestRootPassword is the password the guest has, which status shows
	// and ssh tries: its spec's (bootstrap records there the one it set),
	// else, for a VM that was not bootstrapped, its first disk's
	// template's (the password that works, where the original would show
	// the default), else the default.
	GuestRootPassword RootPasswordFor = iota
	// BootstrapRootPassword is the password bootstrap sets: the spec's,
	// else the default (default_root_password, 123456), as the original
	// does. Never the template's: users of the original log into
	// bootstrapped VMs with the default.
	BootstrapRootPassword
)

// RootPassword is the one rule for a VM's root password (see
// RootPasswordFor); def is the configured default.
func RootPassword(vm *spec.VM, def string, of RootPasswordFor) string {
	if vm.RootPassword != "" {
		return vm.RootPassword
	}
	if of == GuestRootPassword {
		if p := firstDiskMeta(vm, "root-password"); p != "" {
			return p
		}
	}
	return def
}

// Distro is the VM's distro: its spec's, else its first disk's
// template's.
func Distro(vm *spec.VM) string {
	if vm.Distro != "" {
		return vm.Distro
	}
	return firstDiskMeta(vm, "distro")
}

// firstDiskMeta is a string of the first disk's template metadata.
func firstDiskMeta(v *spec.VM, key string) string {
	if len(v.Disks) == 0 {
		return ""
	}
	if s, ok := v.Disks[0].Metadata[key].(string); ok {
		return s
	}
	return ""
}
