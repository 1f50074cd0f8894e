package env

import (
	"context"
	"net/netip"

	"github.com/lago-go/lago/core/spec"
)

// Leaser is what env needs from the subnet lease store (core/lease).
// Leases are tied to the prefix's uuid file: a lease whose uuid file is
// gone is stale, so a prefix removed by hand frees its subnets.
type Leaser interface {
	// Acquire leases want for the prefix whose uuid file is uuidPath, or
	// the lowest free subnet when want is the zero Prefix; skip reports
	// subnets in use on a hypervisor host, which are never leased.
	Acquire(uuidPath string, want netip.Prefix, skip func(netip.Prefix) bool) (netip.Prefix, error)
	// ReleaseAll drops every lease held by uuidPath. Releasing nothing is
	// not an error.
	ReleaseAll(uuidPath string) error
}

// Image is a template image in the store (outside any prefix).
type Image struct {
	Path string
	// Key names the image (repo:template:version) so a remote provider
	// can upload it once.
	Key      string
	Hash     string
	Format   string
	Metadata map[string]any
}

// Templates fetches template images into the shared store.
type Templates interface {
	Get(ctx context.Context, disk TemplateRef) (Image, error)
}

// TemplateRef names a template as a disk spec does.
type TemplateRef struct {
	Repo, Name, Version string
}

// InitFile is a parsed and validated init file: specs before allocation
// (no subnets, IPs or disk paths yet).
type InitFile struct {
	Nets []*spec.Net
	VMs  []*spec.VM
}

// InitFileLoader parses and allocates init files (core/initfile).
type InitFileLoader interface {
	// Parse reads and validates the init file at path with vars set
	// (LAGO_PREFIX_PATH, ...), with no side effects.
	Parse(path string, vars map[string]string) (*InitFile, error)
	// Allocate gives every NIC its IP and MAC and every net its gateway
	// from the leased subnets (net name -> subnet; bridge nets get none).
	Allocate(f *InitFile, subnets map[string]netip.Prefix) error
}

// Builder runs one build step on a disk (the virt-customize builder).
type Builder interface {
	Build(ctx context.Context, req BuildRequest) error
}

// BuildRequest is one build step of one disk.
type BuildRequest struct {
	VM         string
	DiskPath   string
	DiskFormat string
	Step       spec.BuildStep
	// PublicKey is the prefix's public key, for ssh-inject.
	PublicKey string
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
