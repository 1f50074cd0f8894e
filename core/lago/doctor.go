package lago

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"

	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/hostcheck"
	"github.com/lago-go/lago/core/lease"
	"github.com/lago-go/lago/core/template"
)

// HostCheck is the outcome of one check of the host's settings: what was
// checked, whether it holds, what was found and what to change.
type HostCheck = hostcheck.Result

// HostSetupError is Init's error when the host is not set up for this
// user (the libvirt socket refuses it, qemu cannot reach the workdir, a
// store is not writable): every failed check, each with its fix. Init
// returns it before it creates anything.
type HostSetupError = hostcheck.Error

// ErrHostSetup matches every *HostSetupError.
var ErrHostSetup = hostcheck.ErrHostSetup

// ErrNotOwner is wrapped by the error of a verb on an environment whose
// prefix belongs to another user.
var ErrNotOwner = errors.New("the environment belongs to another user")

// DoctorOptions say where Doctor looks.
type DoctorOptions struct {
	// Workdir is the workdir to check qemu's access to (default ./.lago,
	// as init's).
	Workdir string
}

// Doctor checks every host setting lago depends on as this user, on a
// host that several users share (docs/SHARED-HOST.md): the libvirt socket
// of each local libvirt provider instance, qemu's access to the workdir
// and the template store, that the lease and template stores are
// writable by this user and shareable with the others, and a kernel
// libguestfs can read. It changes nothing; `lago doctor` prints the list.
func (c *Client) Doctor(ctx context.Context, o DoctorOptions) []HostCheck {
	out := c.hostChecks(o.Workdir, c.cfg.TemplateStore, true, true)
	return out
}

// preflight is Init's check of the host, before anything is created: only
// what makes init or start fail for sure (not the shareability checks,
// which matter to other users).
//
// LAGO_SKIP_HOST_CHECKS=1 skips it, for hosts it misjudges (qemu's user
// is guessed where qemu.conf cannot be read). The host kernel libguestfs
// needs is not checked here: init may not run libguestfs at all (no VM
// bootstraps, every disk stored); a bootstrap that fails names it.
func (c *Client) preflight(workdir, store string, bootstrap bool) error {
	if os.Getenv("LAGO_SKIP_HOST_CHECKS") != "" {
		return nil
	}
	if err := hostcheck.Failures(c.hostChecks(workdir, store, false, false)...); err != nil {
		return errs.User(err)
	}
	return nil
}

// hostChecks runs the checks; all adds the ones only Doctor reports.
func (c *Client) hostChecks(workdir, store string, bootstrap, all bool) []HostCheck {
	if workdir == "" {
		workdir = ".lago"
	}
	if abs, err := filepath.Abs(workdir); err == nil {
		workdir = abs
	}
	leaseDir := c.cfg.LeaseDir
	if leaseDir == "" {
		leaseDir = lease.DefaultDir
	}
	if store == "" {
		store = template.DefaultStoreDir
	}
	var out []HostCheck
	local := false
	uris := c.localLibvirtURIs()
	if !all && len(uris) > 0 && !c.defaultIsLocalLibvirt() {
		// Init's VMs go to the default instance: a libvirtd that
		// refuses this user matters to init only when that is it.
		uris = nil
	}
	for _, uri := range uris {
		local = true
		out = append(out, hostcheck.LibvirtSocket(uri))
	}
	if local {
		if q, ok := hostcheck.QemuIdentity(); ok {
			out = append(out,
				hostcheck.Reach("qemu reaches the workdir", workdir, q),
				hostcheck.Reach("qemu reaches the template store", store, q))
		} else if all {
			out = append(out, HostCheck{Name: "qemu's user", OK: true,
				Detail: fmt.Sprintf("none of %v exists: qemu's access to disks not checked", hostcheck.QemuUsers)})
		}
	}
	out = append(out,
		hostcheck.Writable("lease store", leaseDir, "[lago] lease_dir"),
		hostcheck.Writable("template store", store, "[init] template_store"))
	if all {
		out = append(out,
			hostcheck.Shared("lease store shared", leaseDir),
			hostcheck.Shared("template store shared", store))
	}
	if bootstrap {
		out = append(out, hostcheck.KernelReadable())
	}
	return out
}

// localLibvirtURIs are the libvirt URIs of the libvirt provider instances
// that name this host's system daemon, the default instance's first.
func (c *Client) localLibvirtURIs() []string {
	names := make([]string, 0, len(c.cfg.Providers))
	for n := range c.cfg.Providers {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == c.cfg.DefaultVMProvider) != (names[j] == c.cfg.DefaultVMProvider) {
			return names[i] == c.cfg.DefaultVMProvider
		}
		return names[i] < names[j]
	})
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		p := c.cfg.Providers[n]
		if p.Plugin != "libvirt" {
			continue
		}
		uri := p.Settings["libvirt_url"]
		if uri == "" {
			uri = c.cfg.LibvirtURL
		}
		sock, ok := hostcheck.LocalSocket(uri)
		if !ok || seen[sock] {
			continue
		}
		seen[sock] = true
		out = append(out, uri)
	}
	return out
}

// geteuid is os.Geteuid; tests, which run as root, pretend to be a user.
var geteuid = os.Geteuid

// explainStart adds to a failed start what init's preflight would now
// find: a folder above the prefix closed to qemu since init (qemu's own
// error only says "Permission denied" on a disk).
func (c *Client) explainStart(prefixPath string, err error) error {
	if err == nil || !c.defaultIsLocalLibvirt() {
		return err
	}
	q, ok := hostcheck.QemuIdentity()
	if !ok {
		return err
	}
	if r := hostcheck.Reach("qemu reaches the workdir", prefixPath, q); !r.OK {
		return fmt.Errorf("%w\n%s\n  fix: %s", err, r.Detail, r.Fix)
	}
	return err
}

// defaultIsLocalLibvirt tells whether the default provider instance is
// the libvirt plugin on this host's system daemon.
func (c *Client) defaultIsLocalLibvirt() bool {
	p, ok := c.cfg.Providers[c.cfg.DefaultVMProvider]
	if !ok || p.Plugin != "libvirt" {
		return false
	}
	uri := p.Settings["libvirt_url"]
	if uri == "" {
		uri = c.cfg.LibvirtURL
	}
	_, local := hostcheck.LocalSocket(uri)
	return local
}

// checkOwner refuses to act on a prefix or workdir another user owns:
// members of the libvirt group could stop each other's VMs and release
// each other's leases through lago, and then fail half way on the files.
// Root may act on anyone's.
func checkOwner(path string) error {
	me := geteuid()
	if me == 0 {
		return nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil // the verb's own error says more
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || int(sys.Uid) == me {
		return nil
	}
	owner := "uid " + strconv.FormatUint(uint64(sys.Uid), 10)
	if u, err := user.LookupId(strconv.FormatUint(uint64(sys.Uid), 10)); err == nil {
		owner = "user " + u.Username
	}
	return errs.User(fmt.Errorf("%s: %w (%s): lago acts only on its caller's own environments; ask its owner, or root", path, ErrNotOwner, owner))
}
