package sdk

import (
	"strings"
)

// Severity of a Diagnostic.
type Severity int

const (
	SeverityError Severity = iota + 1
	SeverityWarning
)

// Diagnostic is a domain error or warning that crosses the plugin boundary
// in a response (gRPC status is kept for transport and cancellation).
type Diagnostic struct {
	Severity  Severity
	Summary   string
	Detail    string
	Attribute string
}

// Diagnostics is a list of diagnostics; as an error it reports its errors.
type Diagnostics []Diagnostic

// Error joins the error summaries (and details) of d.
func (d Diagnostics) Error() string {
	var b strings.Builder
	for _, x := range d {
		if x.Severity != SeverityError {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		if x.Attribute != "" {
			b.WriteString(x.Attribute + ": ")
		}
		b.WriteString(x.Summary)
		if x.Detail != "" {
			b.WriteString(": " + x.Detail)
		}
	}
	return b.String()
}

// HasErrors reports whether d holds at least one error.
func (d Diagnostics) HasErrors() bool {
	for _, x := range d {
		if x.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Err returns d as an error when it holds errors, else nil.
func (d Diagnostics) Err() error {
	if d.HasErrors() {
		return d
	}
	return nil
}

// Warnings returns only the warnings of d.
func (d Diagnostics) Warnings() Diagnostics {
	var w Diagnostics
	for _, x := range d {
		if x.Severity == SeverityWarning {
			w = append(w, x)
		}
	}
	return w
}
