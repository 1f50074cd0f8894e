package sdk

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/lago-go/lago/proto/lago/plugin/v1"
)

// ClientOption tunes a component client returned by the New*Client
// constructors.
type ClientOption func(*clientConfig)

type clientConfig struct {
	onWarning     func(Diagnostic)
	wrapTransport func(error) error
}

// WithWarningHandler receives the warnings a plugin returns along with a
// successful (or failed) call; without it warnings are dropped.
func WithWarningHandler(f func(Diagnostic)) ClientOption {
	return func(c *clientConfig) { c.onWarning = f }
}

// WithTransportErrorWrapper lets the plugin host decorate transport
// failures (the plugin died, the connection broke) with the plugin's name
// and the tail of its stderr. It is not called for diagnostics,
// ErrNotImplemented or cancellation.
func WithTransportErrorWrapper(f func(error) error) ClientOption {
	return func(c *clientConfig) { c.wrapTransport = f }
}

// clientBase holds what every component client shares: the component name
// sent as metadata and the error conversion.
type clientBase struct {
	component string
	cfg       clientConfig
}

func newClientBase(component string, opts []ClientOption) clientBase {
	b := clientBase{component: component}
	for _, o := range opts {
		o(&b.cfg)
	}
	return b
}

// outgoing tags ctx with the component this client talks to.
func (b *clientBase) outgoing(ctx context.Context) context.Context {
	if b.component == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, ComponentMetadataKey, b.component)
}

// result turns a unary response's diagnostics and the call error into the
// error the sdk interface returns.
func (b *clientBase) result(ctx context.Context, method string, diags []*pluginv1.Diagnostic, err error) error {
	if err != nil {
		return b.rpcErr(ctx, method, err)
	}
	return b.diags(diagsFromProto(diags))
}

// diags reports warnings to the hook and returns the errors, if any.
func (b *clientBase) diags(d Diagnostics) error {
	if b.cfg.onWarning != nil {
		for _, w := range d.Warnings() {
			b.cfg.onWarning(w)
		}
	}
	if d.HasErrors() {
		return d
	}
	return nil
}

// rpcErr maps a gRPC error back to the sdk's error vocabulary.
func (b *clientBase) rpcErr(ctx context.Context, method string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if ok {
		switch st.Code() {
		case codes.Unimplemented:
			return fmt.Errorf("%s %s: %w", b.component, method, ErrNotImplemented)
		case codes.Canceled:
			// Only the caller's context produces these: the server maps
			// context errors to status only when its (propagated) context
			// ended. gRPC may notice a deadline a moment before ctx.Err().
			return fmt.Errorf("%s %s: %w", b.component, method, context.Canceled)
		case codes.DeadlineExceeded:
			return fmt.Errorf("%s %s: %w", b.component, method, context.DeadlineExceeded)
		case codes.Unknown:
			var d Diagnostics
			for _, det := range st.Details() {
				if pd, ok := det.(*pluginv1.Diagnostic); ok {
					d = append(d, diagsFromProto([]*pluginv1.Diagnostic{pd})...)
				}
			}
			if len(d) > 0 {
				if e := b.diags(d); e != nil {
					return e
				}
				return nil
			}
		}
	}
	if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
		return fmt.Errorf("%s %s: %w", b.component, method, cerr)
	}
	err = fmt.Errorf("plugin call %s.%s: %w", b.component, method, err)
	if b.cfg.wrapTransport != nil {
		err = b.cfg.wrapTransport(err)
	}
	return err
}
