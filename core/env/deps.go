package env

import (
	"context"
	"net/netip"

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

// Bootstrapper prepares a VM's first disk (hostname, root password, the
// prefix's key) before first boot.
type Bootstrapper interface {
	Bootstrap(ctx context.Context, req BootstrapRequest) error
}

// BootstrapRequest says what to set on a VM's first disk.
type BootstrapRequest struct {
	VM            string
	DiskPath      string
	DiskFormat    string
	Hostname      string
	RootPassword  string
	PublicKeyPath string
}
