package env

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/lago-go/lago/core/lease"
	"github.com/lago-go/lago/core/spec"
)

// Leaser is what env needs from the subnet lease store; *lease.Store
// implements it. Leases are tied to the prefix's uuid file: a lease whose
// uuid file is gone is stale, so a prefix removed by hand frees its
// subnets.
type Leaser interface {
	// AcquireN leases one subnet per request, all or nothing.
	AcquireN(ctx context.Context, uuidPath, uuid string, reqs []lease.Request) ([]lease.Lease, error)
	// ReleaseAll drops every lease held by uuidPath.
	ReleaseAll(ctx context.Context, uuidPath string) ([]netip.Prefix, error)
}

// Image is a template image in the store (outside any prefix).
type Image struct {
	Path string
	// Key names the image (repo:template:version) so a remote provider
	// can upload it once.
	Key      string
	Hash     string
	Format   string
	Metadata map[string]string
}

// Templates fetches template images into the shared store.
type Templates interface {
	Get(ctx context.Context, disk TemplateRef) (Image, error)
}

// TemplateRef names a template as a disk spec does.
type TemplateRef struct {
	Repo, Name, Version string
}

// Builder runs one build step on a disk (the virt-customize builder).
type Builder interface {
	Build(ctx context.Context, req BuildRequest) error
}

// BuilderLister is implemented by a Builder that knows which builders
// exist (the plugin host's builder components), so that init refuses a
// build step naming none of them before it creates anything, rather than
// after minutes of preparing disks.
type BuilderLister interface {
	BuilderNames(ctx context.Context) ([]string, error)
}

// BuildRequest is one build step of one disk.
type BuildRequest struct {
	VM         string
	DiskPath   string
	DiskFormat string
	Step       spec.BuildStep
	// PublicKey is the prefix's public key, for ssh-inject.
	PublicKey string
	// LogFile is the prefix's log (logs/lago.log): the builder appends
	// the tool's output there, the terminal only gets progress.
	LogFile string
}

// Bootstrapper prepares the VMs' first disks before their first boot: the
// hostname, the root password, the prefix's key for root and the ssh user,
// and (VMs being clones of one template) a machine-id and ssh host keys of
// their own. It gets every disk of an init at once, so that an
// implementation can prepare them all in one libguestfs appliance, whose
// start is most of the cost.
type Bootstrapper interface {
	// BootstrapAll prepares every disk of reqs, reporting each step
	// through progress (which may be nil, and may be called from several
	// goroutines). It fails as a whole: a failure in one guest leaves the
	// others in any state, init then removes them all. The error of a
	// step the guest makes impossible is a *BootstrapError.
	BootstrapAll(ctx context.Context, reqs []BootstrapRequest, progress func(BootstrapEvent)) error
}

// BootstrapRequest says what to set on a VM's first disk.
type BootstrapRequest struct {
	VM         string
	DiskPath   string
	DiskFormat string
	Hostname   string
	// RootPassword is the password to set for root; only its hash
	// reaches the guest.
	RootPassword  string
	PublicKeyPath string
	// SSHUser also gets the prefix's key when it is not root ("" means
	// root only).
	SSHUser string
}

// BootstrapEvent is one progress report of BootstrapAll: a step begins
// (Step set), or a VM is done (Done, with the time spent on it).
type BootstrapEvent struct {
	// VM is "" for a step shared by every VM (starting the appliance).
	VM   string
	Step string
	Done bool
	Took time.Duration
}

// BootstrapError is a bootstrap step that failed on one VM's disk: the
// guest lacks what the step needs (no /etc/shadow, no operating system
// found, a read-only filesystem) or the tool failed on it.
type BootstrapError struct {
	VM   string
	Step string
	Err  error
}

func (e *BootstrapError) Error() string {
	return fmt.Sprintf("bootstrap vm %s: %s: %v", e.VM, e.Step, e.Err)
}

func (e *BootstrapError) Unwrap() error { return e.Err }
