// Package errs defines the error kinds the CLI maps to exit codes.
//
// A Lago error is a problem of the user's input or environment (a bad init
// file, a missing prefix, a VM that does not answer): it exits 2 and prints
// without a stack of internal context. Every other error is a bug or an
// unexpected failure and exits 1. Packages mark an error as a Lago error with
// User or Userf; wrapping with %w keeps the mark.
package errs

import (
	"errors"
	"fmt"
)

// Exit codes of the lago CLI.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitLago    = 2
)

// Error is a Lago (user or environment) error.
type Error struct {
	Err error
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error so errors.Is/As see through the mark.
func (e *Error) Unwrap() error { return e.Err }

// User marks err as a Lago error; nil stays nil.
func User(err error) error {
	if err == nil {
		return nil
	}
	var le *Error
	if errors.As(err, &le) {
		return err
	}
	return &Error{Err: err}
}

// Userf is fmt.Errorf followed by User.
func Userf(format string, args ...any) error {
	return &Error{Err: fmt.Errorf(format, args...)}
}

// IsUser reports whether err (or anything it wraps) is a Lago error.
func IsUser(err error) bool {
	var le *Error
	return errors.As(err, &le)
}

// ExitError carries an exact exit code, for verbs that pass through the exit
// status of something they ran (a remote shell command, a command plugin).
// Message may be empty, in which case nothing is printed.
type ExitError struct {
	Code    int
	Message string
}

func (e *ExitError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return fmt.Sprintf("exit status %d", e.Code)
}

// Exit returns an ExitError with code and no message.
func Exit(code int) error { return &ExitError{Code: code} }

// ExitCode maps err to the process exit code: 0 for nil, the code of an
// ExitError, 2 for a Lago error and 1 for anything else.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if IsUser(err) {
		return ExitLago
	}
	return ExitFailure
}
