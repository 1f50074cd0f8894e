package lago

import (
	"errors"

	"github.com/lago-go/lago/core/env"
	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/lease"
	"github.com/lago-go/lago/core/prefix"
	lagossh "github.com/lago-go/lago/core/ssh"
	"github.com/lago-go/lago/core/template"
)

// Errors a caller tells apart with errors.Is (or errors.As for the
// types). They are the lower layers' own values, so an error that passed
// through any of them still matches.
var (
	// ErrNoPrefix: Load found no environment where it looked.
	ErrNoPrefix = prefix.ErrNotFound
	// ErrNotInitialized: the environment's init never finished (a failed
	// or running Init); only Destroy works on it.
	ErrNotInitialized = prefix.ErrNotInitialized
	// ErrPrefixExists: Init's prefix already exists.
	ErrPrefixExists = env.ErrPrefixExists
	// ErrTemplateNotFound: the repository has no such template or version.
	ErrTemplateNotFound = template.ErrNotFound
	// ErrLeaseStoreFull: no free subnet is left to lease.
	ErrLeaseStoreFull = lease.ErrFull
	// ErrVMNotRunning: a command was sent to a VM that is off; errors.As
	// gives a *NotRunningError with its state.
	ErrVMNotRunning = env.ErrVMNotRunning
	// ErrNoSuchVM: no VM of the environment has that name.
	ErrNoSuchVM = errors.New("no such vm")
	// ErrSSHAuth: the guest refused the key and the password.
	ErrSSHAuth = lagossh.ErrAuth
)

// Typed errors, for errors.As.
type (
	// NotRunningError names the VM and its state.
	NotRunningError = env.NotRunningError
	// HostKeyChangedError: the guest's ssh host key is not the one its
	// first login recorded (a different machine at that address).
	HostKeyChangedError = lagossh.HostKeyChangedError
	// NoAddressError: the VM has no address lago knows (bridge-only).
	NoAddressError = env.NoAddressError
)

// IsUserError reports whether err is the user's to fix (bad input, a
// missing prefix, a refused login) rather than a failure of lago or the
// host; the CLI exits 2 for these.
func IsUserError(err error) bool { return errs.IsUser(err) }
