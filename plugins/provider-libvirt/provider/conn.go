package provider

import (
	"errors"
	"io"
)

// ErrNotFound is returned by a Conn when the named domain, network, pool,
// volume or snapshot does not exist. Callers use it to make start, stop and
// remove idempotent.
var ErrNotFound = errors.New("not found")

// DomainState is the provider's view of a libvirt domain state; the real
// connection maps libvirt's numeric states onto it so the fake need not know
// libvirt's constants.
type DomainState int

// Domain states.
const (
	DomainNoState DomainState = iota
	DomainRunning
	DomainBlocked
	DomainPaused
	DomainShutdown // being shut down
	DomainShutoff
	DomainCrashed
	DomainPMSuspended
)

// DomainInfo is one domain as listed by ListDomains.
type DomainInfo struct {
	Name  string
	XML   string
	State DomainState
}

// NetworkInfo is one network as listed by ListNetworks.
type NetworkInfo struct {
	Name   string
	XML    string
	Active bool
}

// Conn is the narrow slice of the libvirt API the provider needs. Every
// object is addressed by name and described by XML produced with
// libvirtxml, so the provider's logic can be unit-tested against an
// in-memory fake and the real implementation stays a thin adapter.
type Conn interface {
	Capabilities() (string, error)

	DefineDomain(xml string) error
	DomainXML(name string) (string, error)
	DomainState(name string) (DomainState, error)
	StartDomain(name string) error
	DestroyDomain(name string) error
	ShutdownDomain(name string) error
	// RebootDomain asks the guest agent to reboot the guest.
	RebootDomain(name string) error
	// UndefineDomain removes the definition with its snapshot metadata,
	// managed save and nvram.
	UndefineDomain(name string) error
	ListDomains() ([]DomainInfo, error)
	FSThaw(name string) error
	CreateSnapshot(domain, xml string) error
	RevertSnapshot(domain, snapshot string) error
	// ListSnapshots returns the XML description of every snapshot.
	ListSnapshots(domain string) ([]string, error)
	// OpenConsole connects to the domain's first serial console.
	OpenConsole(domain string) (io.ReadWriteCloser, error)

	DefineNetwork(xml string) error
	StartNetwork(name string) error
	DestroyNetwork(name string) error
	UndefineNetwork(name string) error
	ListNetworks() ([]NetworkInfo, error)
	// NetworkActive reports whether the named network runs (ErrNotFound
	// when it is not defined): two calls, where ListNetworks costs two per
	// network of the host.
	NetworkActive(name string) (bool, error)
	// ListInterfaceXML describes the host's active interfaces as libvirt
	// sees them (may be unsupported by the remote driver).
	ListInterfaceXML() ([]string, error)

	PoolXML(name string) (string, error)
	// VolumeTail downloads at most max bytes from the end of a volume,
	// after refreshing the pool (files written on the host, such as a
	// serial log, are volumes only once the pool has seen them).
	VolumeTail(pool, name string, max int64) ([]byte, error)
	// DefinePool defines, builds, starts and autostarts a storage pool.
	DefinePool(xml string) error
	StartPool(name string) error
	VolumeXML(pool, name string) (string, error)
	CreateVolume(pool, xml string) error
	DeleteVolume(pool, name string) error
	ListVolumes(pool string) ([]string, error)
	// UploadVolume writes size bytes from r into the volume through a
	// libvirt stream, so it works when the hypervisor does not share our
	// filesystem.
	UploadVolume(pool, name string, r io.Reader, size int64) error
	DownloadVolume(pool, name string, w io.Writer) error

	Close() error
}
