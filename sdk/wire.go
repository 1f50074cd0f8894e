package sdk

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/lago-go/lago/proto/lago/plugin/v1"
)

// ComponentMetadataKey is the gRPC metadata key naming the component a call
// is meant for, so one plugin binary can serve several components of the
// same kind over one connection.
const ComponentMetadataKey = "lago-component"

// diagsToProto converts diagnostics to their wire form.
func diagsToProto(d Diagnostics) []*pluginv1.Diagnostic {
	if len(d) == 0 {
		return nil
	}
	out := make([]*pluginv1.Diagnostic, 0, len(d))
	for _, x := range d {
		sev := pluginv1.Diagnostic_SEVERITY_ERROR
		if x.Severity == SeverityWarning {
			sev = pluginv1.Diagnostic_SEVERITY_WARNING
		}
		out = append(out, &pluginv1.Diagnostic{Severity: sev, Summary: x.Summary, Detail: x.Detail, Attribute: x.Attribute})
	}
	return out
}

// diagsFromProto converts wire diagnostics back; an unspecified severity is
// treated as an error so a sloppy plugin cannot hide a failure.
func diagsFromProto(p []*pluginv1.Diagnostic) Diagnostics {
	if len(p) == 0 {
		return nil
	}
	out := make(Diagnostics, 0, len(p))
	for _, x := range p {
		sev := SeverityError
		if x.GetSeverity() == pluginv1.Diagnostic_SEVERITY_WARNING {
			sev = SeverityWarning
		}
		out = append(out, Diagnostic{Severity: sev, Summary: x.GetSummary(), Detail: x.GetDetail(), Attribute: x.GetAttribute()})
	}
	return out
}

// panicDiagnostics turns a recovered panic into an error diagnostic carrying
// the panic value and a short stack, so a bug in one plugin method fails
// that call instead of killing the plugin process (and every other
// component it serves).
func panicDiagnostics(v any) []*pluginv1.Diagnostic {
	stack := string(debug.Stack())
	lines := strings.Split(stack, "\n")
	if len(lines) > 24 {
		lines = lines[:24]
	}
	return []*pluginv1.Diagnostic{{
		Severity: pluginv1.Diagnostic_SEVERITY_ERROR,
		Summary:  fmt.Sprintf("plugin panic: %v", v),
		Detail:   strings.Join(lines, "\n"),
	}}
}

// errToWire splits an implementation's error into what travels in the
// response (diagnostics) and what travels as gRPC status (not implemented,
// cancellation). Warnings-only Diagnostics are a success with warnings.
func errToWire(ctx context.Context, err error) ([]*pluginv1.Diagnostic, error) {
	if err == nil {
		return nil, nil
	}
	if errors.Is(err, ErrNotImplemented) {
		return nil, status.Error(codes.Unimplemented, err.Error())
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	var d Diagnostics
	if errors.As(err, &d) {
		return diagsToProto(d), nil
	}
	return []*pluginv1.Diagnostic{{Severity: pluginv1.Diagnostic_SEVERITY_ERROR, Summary: err.Error()}}, nil
}

// statusWithDiags is used by streaming RPCs whose messages have no
// diagnostics field: the diagnostics ride in the status details instead.
//
// Warnings alone give nil: a successful gRPC call cannot carry a status,
// so RPCs without a diagnostics field drop warnings-only results rather
// than turn them into a failure.
func statusWithDiags(diags []*pluginv1.Diagnostic) error {
	if !diagsFromProto(diags).HasErrors() {
		return nil
	}
	st := status.New(codes.Unknown, diagsFromProto(diags).Error())
	for _, d := range diags {
		if s2, err := st.WithDetails(d); err == nil {
			st = s2
		}
	}
	return st.Err()
}

// invoke runs f, converting a panic into an error diagnostic and f's error
// into wire diagnostics or a status error.
func invoke(ctx context.Context, f func() error) (diags []*pluginv1.Diagnostic, err error) {
	defer func() {
		if v := recover(); v != nil {
			diags, err = panicDiagnostics(v), nil
		}
	}()
	return errToWire(ctx, f())
}

// invokeStream is invoke for streaming handlers: error diagnostics (with
// any warnings) become the status details of the returned error.
func invokeStream(ctx context.Context, f func() error) error {
	diags, err := invoke(ctx, f)
	if err != nil {
		return err
	}
	return statusWithDiags(diags)
}

// failed reports whether err is a real failure, not nil and not
// warnings-only Diagnostics (a success with warnings).
func failed(err error) bool {
	if err == nil {
		return false
	}
	var d Diagnostics
	if errors.As(err, &d) {
		return d.HasErrors()
	}
	return true
}
