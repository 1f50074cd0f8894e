// Package plugintest runs lago plugin components in-process over the real
// gRPC glue (go-plugin's TestPluginGRPCConn), so a plugin's own tests
// exercise exactly what lago will call, and offers one conformance suite
// per component kind that a third-party plugin runs from its tests:
//
//	func TestConformance(t *testing.T) {
//		plugintest.OutputConformance(t, myFormat{})
//	}
package plugintest

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/hashicorp/go-plugin"

	hostv1 "github.com/lago-go/lago/proto/lago/host/v1"
	"github.com/lago-go/lago/sdk"
)

// Connect serves p in-process and returns a client for it; everything is
// torn down when the test ends.
func Connect(t testing.TB, p sdk.Plugin) *sdk.PluginClient {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, sdk.PluginSet(&p))
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(sdk.PluginSetKey)
	if err != nil {
		t.Fatalf("dispense plugin %s: %v", p.Name, err)
	}
	return raw.(*sdk.PluginClient)
}

// Single wraps impl as the only component of a test plugin, with the kind
// given (its Info is filled in when empty).
func Single(kind string, info sdk.ComponentInfo, impl any) sdk.Plugin {
	if info.Name == "" {
		info.Name = "under-test"
	}
	info.Kind = kind
	return sdk.Plugin{Name: "plugintest", Version: "0", Components: []sdk.Component{{Info: info, Impl: impl}}}
}

// HostCall records one call a plugin made to the FakeHost.
type HostCall struct {
	Method string
	VM     string
	Argv   []string
}

// FakeHost is an sdk.Host for tests. Exec answers with ExecFunc when set
// (else exit code 127, "command not found"); Environment returns Env. Calls
// are recorded.
type FakeHost struct {
	ExecFunc func(vm string, argv []string, stdin []byte, stdout, stderr io.Writer) (int, error)
	Env      *hostv1.GetEnvironmentResponse

	mu    sync.Mutex
	calls []HostCall
}

var _ sdk.Host = (*FakeHost)(nil)

func (h *FakeHost) record(c HostCall) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, c)
}

// Calls returns the calls made so far.
func (h *FakeHost) Calls() []HostCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]HostCall(nil), h.calls...)
}

// Exec runs ExecFunc or answers 127.
func (h *FakeHost) Exec(ctx context.Context, vm string, argv []string, stdin []byte, stdout, stderr io.Writer) (int, error) {
	h.record(HostCall{Method: "Exec", VM: vm, Argv: argv})
	if h.ExecFunc != nil {
		return h.ExecFunc(vm, argv, stdin, stdout, stderr)
	}
	fmt.Fprintf(stderr, "%s: command not found\n", firstOr(argv, ""))
	return 127, nil
}

// CopyTo records the call and succeeds.
func (h *FakeHost) CopyTo(ctx context.Context, vm, localPath, remotePath string) error {
	h.record(HostCall{Method: "CopyTo", VM: vm, Argv: []string{localPath, remotePath}})
	return nil
}

// CopyFrom records the call and succeeds.
func (h *FakeHost) CopyFrom(ctx context.Context, vm, remotePath, localPath string) error {
	h.record(HostCall{Method: "CopyFrom", VM: vm, Argv: []string{remotePath, localPath}})
	return nil
}

// Environment returns Env (an empty environment when nil).
func (h *FakeHost) Environment(ctx context.Context) (*hostv1.GetEnvironmentResponse, error) {
	h.record(HostCall{Method: "Environment"})
	if h.Env == nil {
		return &hostv1.GetEnvironmentResponse{PrefixPath: "/nonexistent/lago-plugintest", Uuid: "00000000000000000000000000000000"}, nil
	}
	return h.Env, nil
}

// Progress records the call.
func (h *FakeHost) Progress(ctx context.Context, message string, fraction float64) error {
	h.record(HostCall{Method: "Progress", Argv: []string{message}})
	return nil
}

// Log records the call.
func (h *FakeHost) Log(ctx context.Context, level, message string) error {
	h.record(HostCall{Method: "Log", Argv: []string{level, message}})
	return nil
}

func firstOr(s []string, def string) string {
	if len(s) == 0 {
		return def
	}
	return s[0]
}
