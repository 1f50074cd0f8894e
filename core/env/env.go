// Package env orchestrates a lago environment (a prefix): it is the logic
// behind the verbs init, start, stop, shutdown, status, snapshot, revert,
// destroy, cleanup and shell, and behind orphan cleanup.
//
// The package talks to everything it orchestrates through small interfaces
// (ProviderResolver, Leaser, Templates, SSH, ...) so its ordering and
// rollback rules can be tested with in-memory fakes (see envtest); New wires
// in the real implementations.
//
// Two rules shape the code:
//   - all or nothing: Init either leaves an initialized prefix or nothing
//     (no prefix folder, no lease, no provider object), and anything it
//     leaves half-made after a kill -9 is removed completely by Destroy;
//   - what a verb starts it also stops when it fails half way, so nothing
//     is left running that stop would not stop.
package env

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/lago-go/lago/sdk"

	"github.com/lago-go/lago/core/errs"
)

// Defaults used when Options leave a field zero.
const (
	DefaultStartTimeout    = 10 * time.Minute
	DefaultShutdownTimeout = 5 * time.Minute
	DefaultSSHUser         = "root"
	DefaultSSHPassword     = "123456"
	// DefaultDiskParallelism bounds concurrent PrepareDisks, build and
	// bootstrap work during init: they are disk and CPU heavy.
	DefaultDiskParallelism = 2
	// serialTailLines is how much of a VM's serial console an ssh timeout
	// error quotes.
	serialTailLines = 20
	// DefaultBootWatchInterval: see Options.BootWatchInterval.
	DefaultBootWatchInterval = 2 * time.Second
	// serialLogTimeout bounds asking a provider for a serial log.
	serialLogTimeout = 10 * time.Second
	// cleanupTimeout bounds rollback work, which runs on a context detached
	// from the (possibly cancelled) caller's.
	cleanupTimeout = 2 * time.Minute
)

// ErrPrefixExists is wrapped by Init's error when the prefix to create
// already exists (initialized or half made).
var ErrPrefixExists = errors.New("prefix already exists")

// NotRunningError says a VM that a verb needs running is not; errors.Is
// matches ErrVMNotRunning.
type NotRunningError struct {
	VM, State string
}

// ErrVMNotRunning is matched by a *NotRunningError.
var ErrVMNotRunning = errors.New("vm is not running")

func (e *NotRunningError) Error() string {
	return fmt.Sprintf("vm %s is not running (%s): start it with lago start", e.VM, e.State)
}

// Is makes errors.Is(err, ErrVMNotRunning) true.
func (e *NotRunningError) Is(target error) bool { return target == ErrVMNotRunning }

// userErrorf makes a Lago (user) error, which the CLI reports with exit
// code 2; errs.IsUser recognises it through any %w wrapping.
func userErrorf(format string, a ...any) error { return errs.Userf(format, a...) }

// ProviderResolver returns the provider serving a named provider instance
// (a [provider.NAME] section of lago.conf, or a plugin name). The CLI backs
// it with pluginhost.Host.Provider and the config's instance settings.
type ProviderResolver func(ctx context.Context, instance string) (sdk.Provider, error)

// SSHTarget says how to reach a VM over ssh.
type SSHTarget struct {
	// VM is the VM's name, for error messages.
	VM   string
	Host string
	Port int
	User string
	// KeyFile is the prefix's private key; Password is tried after it.
	KeyFile  string
	Password string
	// KnownHostsFile is the prefix's trust-on-first-use known_hosts, so a
	// guest whose host key changes is noticed.
	KnownHostsFile string
	// UUID is the prefix's uuid; it names the VM's ssh mux socket.
	UUID string
}

// SSHReleaser is implemented by an SSH that keeps connections open
// between commands (see SSHClient.Persist): a VM that stops, reboots or
// reverts must not be reached through a connection of its past.
type SSHReleaser interface {
	// Release closes the kept connection to t, if any.
	Release(ctx context.Context, t SSHTarget)
	// ReleaseAll closes every kept connection of the prefix with uuid.
	ReleaseAll(ctx context.Context, uuid string)
}

// SSH is what env needs from core/ssh.
type SSH interface {
	// WaitReady returns once t accepts an ssh login, or ctx's error.
	WaitReady(ctx context.Context, t SSHTarget) error
	// Run runs argv (an interactive shell when argv is empty) and returns
	// its exit code; err is set only when it could not be run.
	Run(ctx context.Context, t SSHTarget, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error)
}

// Options are the settings env takes from the configuration.
type Options struct {
	// DefaultProvider is the provider instance of VMs without vm-provider.
	DefaultProvider string
	// DefaultVMType is the vm type of VMs without vm-type.
	DefaultVMType string
	// ProviderInstances lists every configured provider instance; Destroy
	// of a prefix whose specs are missing and Orphans ask all of them.
	ProviderInstances []string
	SSHUser           string
	SSHPassword       string
	// DefaultRootPassword is used when neither the VM spec nor its
	// template's metadata give one.
	DefaultRootPassword string
	// StartTimeout is the one overall deadline for VMs to answer ssh.
	StartTimeout time.Duration
	// StartParallelism bounds concurrent StartVM calls; 0 means all at once.
	StartParallelism int
	ShutdownTimeout  time.Duration
	// DiskParallelism bounds concurrent disk preparation, builds and
	// bootstraps during init.
	DiskParallelism int
	// BootWatchInterval is how often start checks, while it waits for
	// ssh, whether a VM stopped or its kernel panicked (default 2 s).
	BootWatchInterval time.Duration
	Logger            *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.SSHUser == "" {
		o.SSHUser = DefaultSSHUser
	}
	if o.SSHPassword == "" {
		o.SSHPassword = DefaultSSHPassword
	}
	if o.DefaultRootPassword == "" {
		o.DefaultRootPassword = o.SSHPassword
	}
	if o.DiskParallelism <= 0 {
		o.DiskParallelism = DefaultDiskParallelism
	}
	if o.BootWatchInterval <= 0 {
		o.BootWatchInterval = DefaultBootWatchInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Deps are the components env orchestrates. Providers is required; the
// others are needed only by the verbs that use them (Init needs Leaser
// and Templates, start needs SSH unless NoWait, ...).
type Deps struct {
	Providers ProviderResolver
	Leaser    Leaser
	Templates Templates
	Builder   Builder
	Bootstrap Bootstrapper
	SSH       SSH
	// Services are the service managers (service state/start/stop).
	Services Services
	// VMTypes are the vm types' hooks (init, start, status); nil: only
	// the built-in type.
	VMTypes VMTypes
}

// Manager runs the verbs. It holds no state of its own between calls, so
// one Manager may serve several prefixes.
type Manager struct {
	opts Options
	deps Deps
	// afterStep is a test hook (see testHook).
	afterStep testHook
}

// New returns a Manager.
func New(opts Options, deps Deps) *Manager {
	return &Manager{opts: opts.withDefaults(), deps: deps}
}

func (m *Manager) log() *slog.Logger { return m.opts.Logger }

// provider resolves a provider instance, naming it in the error.
func (m *Manager) provider(ctx context.Context, instance string) (sdk.Provider, error) {
	if m.deps.Providers == nil {
		return nil, fmt.Errorf("get provider %q: no provider resolver configured", instance)
	}
	p, err := m.deps.Providers(ctx, instance)
	if err != nil {
		return nil, fmt.Errorf("get provider %q: %w", instance, err)
	}
	return p, nil
}

// detached returns a context for cleanup work that must run even when ctx
// was cancelled (Ctrl-C), bounded by cleanupTimeout.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}
