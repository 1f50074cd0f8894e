// Package sdk is what a lago plugin author imports: one Go interface per
// component kind, the gRPC glue for both sides of the go-plugin connection,
// and Serve, which turns a set of components into a plugin binary.
//
// The core uses the very same interfaces on its side: a client for a plugin
// component returned by this package implements the kind's interface, so the
// core's logic can be tested with in-memory implementations.
package sdk

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	builderv1 "github.com/lago-go/lago/proto/lago/builder/v1"
	commandv1 "github.com/lago-go/lago/proto/lago/command/v1"
	hostv1 "github.com/lago-go/lago/proto/lago/host/v1"
	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	"github.com/lago-go/lago/sdk/plugininfo"
)

// APIVersion is the go-plugin protocol version; it equals the major version
// of the proto packages (lago.*.v1).
const APIVersion = plugininfo.APIVersion

// Component kinds.
const (
	KindProvider = plugininfo.KindProvider
	KindVMType   = plugininfo.KindVMType
	KindService  = plugininfo.KindService
	KindBuilder  = plugininfo.KindBuilder
	KindOutput   = plugininfo.KindOutput
	KindCommand  = plugininfo.KindCommand
)

// ErrNotImplemented is returned by the Unimplemented embeds; it crosses the
// wire as codes.Unimplemented and comes back as ErrNotImplemented.
var ErrNotImplemented = errors.New("not implemented")

// Configurer is implemented by components that take settings from lago.conf
// or that call back into the core. host is nil when the core offers none.
type Configurer interface {
	Configure(ctx context.Context, config map[string]string, host Host) error
}

// Host is the core's callback service as seen from a plugin.
type Host interface {
	// Exec runs argv in the guest vm and returns its exit code. err is set
	// only when the command could not be run at all.
	Exec(ctx context.Context, vm string, argv []string, stdin []byte, stdout, stderr io.Writer) (exitCode int, err error)
	CopyTo(ctx context.Context, vm, localPath, remotePath string) error
	CopyFrom(ctx context.Context, vm, remotePath, localPath string) error
	Environment(ctx context.Context) (*hostv1.GetEnvironmentResponse, error)
	Progress(ctx context.Context, message string, fraction float64) error
	Log(ctx context.Context, level, message string) error
}

// Provider creates and runs networks and VMs. Every object it creates must
// carry an owner tag (env.PrefixPath, env.Uuid) so ListOwned and RemoveOwned
// work without any local state.
type Provider interface {
	ValidateSpec(ctx context.Context, env *providerv1.EnvRef, nets []*providerv1.Network, vms []*providerv1.VM) error
	// UsedSubnets reports IPv4 subnets already in use on the hypervisor host,
	// so the core never leases them.
	UsedSubnets(ctx context.Context) ([]*providerv1.UsedSubnet, error)
	PrepareDisks(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) ([]*providerv1.PreparedDisk, error)
	StartNetwork(ctx context.Context, env *providerv1.EnvRef, net *providerv1.Network) error
	StopNetwork(ctx context.Context, env *providerv1.EnvRef, net *providerv1.Network) error
	NetworkState(ctx context.Context, env *providerv1.EnvRef, net *providerv1.Network) (string, error)
	StartVM(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) error
	StopVM(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) error
	ShutdownVM(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, reboot bool, timeout time.Duration) error
	VMState(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) (string, error)
	Snapshot(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, name string) error
	Revert(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, name string) error
	ListSnapshots(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) ([]*providerv1.Snapshot, error)
	// Console connects in to the guest's serial console and copies its
	// output to out until ctx ends or in reaches EOF.
	Console(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, in io.Reader, out io.Writer) error
	Export(ctx context.Context, req *providerv1.ExportRequest) ([]string, error)
	ListOwned(ctx context.Context) ([]*providerv1.OwnedResource, error)
	// RemoveOwned removes every object owned by env (or only resources when
	// given). Removing what is already gone is not an error.
	RemoveOwned(ctx context.Context, env *providerv1.EnvRef, resources []*providerv1.OwnedResource) error
}

// SerialLogReader is an optional Provider method: it returns at most
// maxBytes from the end of a VM's serial console log (64 KiB when
// maxBytes <= 0), or nothing when the VM has none yet. The core reads the
// log itself when it is on its own filesystem (VM.serial_log_path); it
// asks the provider when it is not, as with a remote hypervisor, so that a
// VM that never answers ssh is reported with its last console lines.
// Clients of plugins that lack it get ErrNotImplemented.
type SerialLogReader interface {
	SerialLog(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, maxBytes int64) ([]byte, error)
}

// DefaultSerialLogBytes is what SerialLog returns at most when asked for 0.
const DefaultSerialLogBytes = 64 << 10

// ReadFileTail reads at most max bytes from the end of the file at path,
// for serial logs that live on a local filesystem.
func ReadFileTail(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := st.Size() - max
	if off < 0 {
		off = 0
	}
	return io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
}

// VMType runs hooks around a VM's lifecycle.
type VMType interface {
	NormalizeSpec(ctx context.Context, vm string, specJSON []byte) ([]byte, error)
	AfterStart(ctx context.Context, vm string) error
	StatusFields(ctx context.Context, vm string) (map[string]string, error)
}

// ServiceManager acts on a guest's services through the Host.
type ServiceManager interface {
	Supported(ctx context.Context, vm string) (bool, error)
	// State is "active", "inactive", "missing" or "unknown".
	State(ctx context.Context, vm, service string) (string, error)
	Start(ctx context.Context, vm, service string) error
	Stop(ctx context.Context, vm, service string) error
}

// Builder changes a disk image before first boot. log receives progress
// lines as they happen.
type Builder interface {
	Build(ctx context.Context, req *builderv1.BuildRequest, log func(line string)) error
}

// OutputFormat renders a document given as JSON (object keys in render
// order) to bytes.
type OutputFormat interface {
	Format(ctx context.Context, documentJSON []byte) ([]byte, error)
}

// Command executes the verbs a command plugin declares in its ComponentInfo.
type Command interface {
	Execute(ctx context.Context, req *commandv1.ExecuteRequest, stdout, stderr io.Writer) (exitCode int, err error)
}
