// Package hostcheck checks the host settings lago needs when it runs as a
// normal user on a host shared with others: that the libvirt socket lets
// the user in, that qemu (which runs as its own user) can reach the
// workdir's disks and the template store, and that the lease and template
// stores are writable and shareable. Each check returns a Result that says
// what it found and, when it fails, exactly what to change; init runs the
// blocking ones before it creates anything (core/lago), `lago doctor`
// prints them all.
//
// The checks read the filesystem and connect to a unix socket; they never
// change anything and never need privileges.
package hostcheck

import (
	"errors"
	"fmt"
	"strings"
)

// Result is the outcome of one check.
type Result struct {
	// Name says what was checked: "libvirt socket", "qemu reaches the workdir".
	Name string
	// OK is false when lago cannot work (or cannot share) as the host is.
	OK bool
	// Detail is what was found.
	Detail string
	// Fix says what to change, when !OK.
	Fix string
}

// String is the result as `lago doctor` prints it: "OK   name: detail" or
// "FAIL name: detail\n     fix: ...".
func (r Result) String() string {
	if r.OK {
		return fmt.Sprintf("OK   %s: %s", r.Name, r.Detail)
	}
	s := fmt.Sprintf("FAIL %s: %s", r.Name, r.Detail)
	if r.Fix != "" {
		s += "\n     fix: " + r.Fix
	}
	return s
}

// ErrHostSetup is wrapped by every *Error, for errors.Is.
var ErrHostSetup = errors.New("the host is not set up for lago")

// Error is the error of a failed preflight: every failed check, each
// named once with its fix.
type Error struct {
	Failed []Result
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(ErrHostSetup.Error())
	b.WriteString(" (nothing was created):")
	for _, r := range e.Failed {
		fmt.Fprintf(&b, "\n  %s: %s", r.Name, r.Detail)
		if r.Fix != "" {
			fmt.Fprintf(&b, "\n    fix: %s", r.Fix)
		}
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrHostSetup) hold.
func (e *Error) Unwrap() error { return ErrHostSetup }

// Failures returns an *Error of the failed results, or nil when all are OK.
func Failures(results ...Result) error {
	var failed []Result
	for _, r := range results {
		if !r.OK {
			failed = append(failed, r)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return &Error{Failed: failed}
}
