package sdk

import (
	"bufio"
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
)

// NewProviderClient returns the Provider served as component by the
// plugin at the other end of conn.
func NewProviderClient(conn grpc.ClientConnInterface, component string, opts ...ClientOption) Provider {
	return &providerClient{clientBase: newClientBase(component, opts), c: providerv1.NewProviderClient(conn)}
}

type providerClient struct {
	clientBase
	c providerv1.ProviderClient
}

func (p *providerClient) ValidateSpec(ctx context.Context, env *providerv1.EnvRef, nets []*providerv1.Network, vms []*providerv1.VM) error {
	r, err := p.c.ValidateSpec(p.outgoing(ctx), &providerv1.ValidateSpecRequest{Env: env, Nets: nets, Vms: vms})
	return p.result(ctx, "ValidateSpec", r.GetDiagnostics(), err)
}

func (p *providerClient) UsedSubnets(ctx context.Context) ([]*providerv1.UsedSubnet, error) {
	r, err := p.c.UsedSubnets(p.outgoing(ctx), &providerv1.UsedSubnetsRequest{})
	if err := p.result(ctx, "UsedSubnets", r.GetDiagnostics(), err); err != nil {
		return nil, err
	}
	return r.GetSubnets(), nil
}

func (p *providerClient) PrepareDisks(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) ([]*providerv1.PreparedDisk, error) {
	r, err := p.c.PrepareDisks(p.outgoing(ctx), &providerv1.PrepareDisksRequest{Env: env, Vm: vm})
	if err := p.result(ctx, "PrepareDisks", r.GetDiagnostics(), err); err != nil {
		return nil, err
	}
	return r.GetDisks(), nil
}

func (p *providerClient) StartNetwork(ctx context.Context, env *providerv1.EnvRef, net *providerv1.Network) error {
	r, err := p.c.StartNetwork(p.outgoing(ctx), &providerv1.NetworkRequest{Env: env, Network: net})
	return p.result(ctx, "StartNetwork", r.GetDiagnostics(), err)
}

func (p *providerClient) StopNetwork(ctx context.Context, env *providerv1.EnvRef, net *providerv1.Network) error {
	r, err := p.c.StopNetwork(p.outgoing(ctx), &providerv1.NetworkRequest{Env: env, Network: net})
	return p.result(ctx, "StopNetwork", r.GetDiagnostics(), err)
}

func (p *providerClient) NetworkState(ctx context.Context, env *providerv1.EnvRef, net *providerv1.Network) (string, error) {
	r, err := p.c.NetworkState(p.outgoing(ctx), &providerv1.NetworkRequest{Env: env, Network: net})
	if err := p.result(ctx, "NetworkState", r.GetDiagnostics(), err); err != nil {
		return "", err
	}
	return r.GetState(), nil
}

func (p *providerClient) StartVM(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) error {
	r, err := p.c.StartVM(p.outgoing(ctx), &providerv1.VMRequest{Env: env, Vm: vm})
	return p.result(ctx, "StartVM", r.GetDiagnostics(), err)
}

func (p *providerClient) StopVM(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) error {
	r, err := p.c.StopVM(p.outgoing(ctx), &providerv1.VMRequest{Env: env, Vm: vm})
	return p.result(ctx, "StopVM", r.GetDiagnostics(), err)
}

func (p *providerClient) ShutdownVM(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, reboot bool, timeout time.Duration) error {
	r, err := p.c.ShutdownVM(p.outgoing(ctx), &providerv1.ShutdownRequest{Env: env, Vm: vm, Reboot: reboot, TimeoutSeconds: int32((timeout + time.Second - 1) / time.Second)})
	return p.result(ctx, "ShutdownVM", r.GetDiagnostics(), err)
}

func (p *providerClient) VMState(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) (string, error) {
	r, err := p.c.VMState(p.outgoing(ctx), &providerv1.VMRequest{Env: env, Vm: vm})
	if err := p.result(ctx, "VMState", r.GetDiagnostics(), err); err != nil {
		return "", err
	}
	return r.GetState(), nil
}

func (p *providerClient) Snapshot(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, name string) error {
	r, err := p.c.Snapshot(p.outgoing(ctx), &providerv1.SnapshotRequest{Env: env, Vm: vm, Name: name})
	return p.result(ctx, "Snapshot", r.GetDiagnostics(), err)
}

func (p *providerClient) Revert(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, name string) error {
	r, err := p.c.Revert(p.outgoing(ctx), &providerv1.SnapshotRequest{Env: env, Vm: vm, Name: name})
	return p.result(ctx, "Revert", r.GetDiagnostics(), err)
}

func (p *providerClient) ListSnapshots(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) ([]*providerv1.Snapshot, error) {
	r, err := p.c.ListSnapshots(p.outgoing(ctx), &providerv1.VMRequest{Env: env, Vm: vm})
	if err := p.result(ctx, "ListSnapshots", r.GetDiagnostics(), err); err != nil {
		return nil, err
	}
	return r.GetSnapshots(), nil
}

var _ SerialLogReader = (*providerClient)(nil)

// SerialLog implements SerialLogReader over the wire.
func (p *providerClient) SerialLog(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, maxBytes int64) ([]byte, error) {
	r, err := p.c.SerialLog(p.outgoing(ctx), &providerv1.SerialLogRequest{Env: env, Vm: vm, MaxBytes: maxBytes})
	if err := p.result(ctx, "SerialLog", r.GetDiagnostics(), err); err != nil {
		return nil, err
	}
	return r.GetTail(), nil
}

// Console streams in to the guest and the guest's output to out. The
// goroutine reading in may outlive the call when in blocks (a terminal);
// it ends at the next read.
func (p *providerClient) Console(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, in io.Reader, out io.Writer) error {
	ctx2, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := p.c.Console(p.outgoing(ctx2))
	if err != nil {
		return p.rpcErr(ctx, "Console", err)
	}
	if err := stream.Send(&providerv1.ConsoleInput{Env: env, Vm: vm}); err != nil {
		return p.rpcErr(ctx, "Console", err)
	}
	if in != nil {
		go func() {
			buf := make([]byte, 4096)
			for {
				n, rerr := in.Read(buf)
				if n > 0 {
					if serr := stream.Send(&providerv1.ConsoleInput{Data: append([]byte(nil), buf[:n]...)}); serr != nil {
						return
					}
				}
				if rerr != nil {
					_ = stream.CloseSend()
					return
				}
			}
		}()
	} else {
		_ = stream.CloseSend()
	}
	var diags Diagnostics
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return p.diags(diags)
		}
		if err != nil {
			return p.rpcErr(ctx, "Console", err)
		}
		if len(msg.GetData()) > 0 && out != nil {
			if _, werr := out.Write(msg.GetData()); werr != nil {
				return werr
			}
		}
		diags = append(diags, diagsFromProto(msg.GetDiagnostics())...)
	}
}

func (p *providerClient) Export(ctx context.Context, req *providerv1.ExportRequest) ([]string, error) {
	r, err := p.c.Export(p.outgoing(ctx), req)
	if err := p.result(ctx, "Export", r.GetDiagnostics(), err); err != nil {
		return nil, err
	}
	return r.GetPaths(), nil
}

var _ FileReader = (*providerClient)(nil)

// ReadFiles implements FileReader over the wire: the chunks' data goes to
// w as it arrives, so an archive of any size passes in constant memory. A
// failed write to w ends the call and is its error.
func (p *providerClient) ReadFiles(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, paths []string, maxBytes int64, w io.Writer) ([]string, error) {
	ctx2, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := p.c.ReadFiles(p.outgoing(ctx2), &providerv1.ReadFilesRequest{Env: env, Vm: vm, Paths: paths, MaxBytes: maxBytes})
	if err != nil {
		return nil, p.rpcErr(ctx, "ReadFiles", err)
	}
	var missing []string
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return missing, nil
		}
		if err != nil {
			return nil, p.rpcErr(ctx, "ReadFiles", err)
		}
		if len(msg.GetData()) > 0 {
			if _, werr := w.Write(msg.GetData()); werr != nil {
				return nil, werr
			}
		}
		missing = append(missing, msg.GetMissing()...)
	}
}

func (p *providerClient) ListOwned(ctx context.Context) ([]*providerv1.OwnedResource, error) {
	r, err := p.c.ListOwned(p.outgoing(ctx), &providerv1.ListOwnedRequest{})
	if err := p.result(ctx, "ListOwned", r.GetDiagnostics(), err); err != nil {
		return nil, err
	}
	return r.GetResources(), nil
}

func (p *providerClient) RemoveOwned(ctx context.Context, env *providerv1.EnvRef, resources []*providerv1.OwnedResource) error {
	r, err := p.c.RemoveOwned(p.outgoing(ctx), &providerv1.RemoveOwnedRequest{Env: env, Resources: resources})
	return p.result(ctx, "RemoveOwned", r.GetDiagnostics(), err)
}

// providerServer dispatches lago.provider.v1.Provider calls to the
// component named in the call's metadata.
type providerServer struct {
	providerv1.UnimplementedProviderServer
	reg *registry
}

func (s *providerServer) impl(ctx context.Context) (Provider, error) {
	i, err := s.reg.lookup(ctx, KindProvider)
	if err != nil {
		return nil, err
	}
	return i.(Provider), nil
}

// diagCall is the shape of every provider RPC that answers only
// diagnostics.
func (s *providerServer) diagCall(ctx context.Context, f func(Provider) error) (*providerv1.DiagnosticsResponse, error) {
	p, err := s.impl(ctx)
	if err != nil {
		return nil, err
	}
	d, err := invoke(ctx, func() error { return f(p) })
	if err != nil {
		return nil, err
	}
	return &providerv1.DiagnosticsResponse{Diagnostics: d}, nil
}

func (s *providerServer) ValidateSpec(ctx context.Context, r *providerv1.ValidateSpecRequest) (*providerv1.DiagnosticsResponse, error) {
	return s.diagCall(ctx, func(p Provider) error { return p.ValidateSpec(ctx, r.GetEnv(), r.GetNets(), r.GetVms()) })
}

func (s *providerServer) UsedSubnets(ctx context.Context, r *providerv1.UsedSubnetsRequest) (*providerv1.UsedSubnetsResponse, error) {
	p, err := s.impl(ctx)
	if err != nil {
		return nil, err
	}
	resp := &providerv1.UsedSubnetsResponse{}
	resp.Diagnostics, err = invoke(ctx, func() (e error) { resp.Subnets, e = p.UsedSubnets(ctx); return e })
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func (s *providerServer) PrepareDisks(ctx context.Context, r *providerv1.PrepareDisksRequest) (*providerv1.PrepareDisksResponse, error) {
	p, err := s.impl(ctx)
	if err != nil {
		return nil, err
	}
	resp := &providerv1.PrepareDisksResponse{}
	resp.Diagnostics, err = invoke(ctx, func() (e error) { resp.Disks, e = p.PrepareDisks(ctx, r.GetEnv(), r.GetVm()); return e })
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func (s *providerServer) StartNetwork(ctx context.Context, r *providerv1.NetworkRequest) (*providerv1.DiagnosticsResponse, error) {
	return s.diagCall(ctx, func(p Provider) error { return p.StartNetwork(ctx, r.GetEnv(), r.GetNetwork()) })
}

func (s *providerServer) StopNetwork(ctx context.Context, r *providerv1.NetworkRequest) (*providerv1.DiagnosticsResponse, error) {
	return s.diagCall(ctx, func(p Provider) error { return p.StopNetwork(ctx, r.GetEnv(), r.GetNetwork()) })
}

func (s *providerServer) NetworkState(ctx context.Context, r *providerv1.NetworkRequest) (*providerv1.StateResponse, error) {
	p, err := s.impl(ctx)
	if err != nil {
		return nil, err
	}
	resp := &providerv1.StateResponse{}
	resp.Diagnostics, err = invoke(ctx, func() (e error) { resp.State, e = p.NetworkState(ctx, r.GetEnv(), r.GetNetwork()); return e })
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func (s *providerServer) StartVM(ctx context.Context, r *providerv1.VMRequest) (*providerv1.DiagnosticsResponse, error) {
	return s.diagCall(ctx, func(p Provider) error { return p.StartVM(ctx, r.GetEnv(), r.GetVm()) })
}

func (s *providerServer) StopVM(ctx context.Context, r *providerv1.VMRequest) (*providerv1.DiagnosticsResponse, error) {
	return s.diagCall(ctx, func(p Provider) error { return p.StopVM(ctx, r.GetEnv(), r.GetVm()) })
}

func (s *providerServer) ShutdownVM(ctx context.Context, r *providerv1.ShutdownRequest) (*providerv1.DiagnosticsResponse, error) {
	return s.diagCall(ctx, func(p Provider) error {
		return p.ShutdownVM(ctx, r.GetEnv(), r.GetVm(), r.GetReboot(), time.Duration(r.GetTimeoutSeconds())*time.Second)
	})
}

func (s *providerServer) VMState(ctx context.Context, r *providerv1.VMRequest) (*providerv1.StateResponse, error) {
	p, err := s.impl(ctx)
	if err != nil {
		return nil, err
	}
	resp := &providerv1.StateResponse{}
	resp.Diagnostics, err = invoke(ctx, func() (e error) { resp.State, e = p.VMState(ctx, r.GetEnv(), r.GetVm()); return e })
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func (s *providerServer) Snapshot(ctx context.Context, r *providerv1.SnapshotRequest) (*providerv1.DiagnosticsResponse, error) {
	return s.diagCall(ctx, func(p Provider) error { return p.Snapshot(ctx, r.GetEnv(), r.GetVm(), r.GetName()) })
}

func (s *providerServer) Revert(ctx context.Context, r *providerv1.SnapshotRequest) (*providerv1.DiagnosticsResponse, error) {
	return s.diagCall(ctx, func(p Provider) error { return p.Revert(ctx, r.GetEnv(), r.GetVm(), r.GetName()) })
}

func (s *providerServer) ListSnapshots(ctx context.Context, r *providerv1.VMRequest) (*providerv1.ListSnapshotsResponse, error) {
	p, err := s.impl(ctx)
	if err != nil {
		return nil, err
	}
	resp := &providerv1.ListSnapshotsResponse{}
	resp.Diagnostics, err = invoke(ctx, func() (e error) { resp.Snapshots, e = p.ListSnapshots(ctx, r.GetEnv(), r.GetVm()); return e })
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func (s *providerServer) SerialLog(ctx context.Context, r *providerv1.SerialLogRequest) (*providerv1.SerialLogResponse, error) {
	p, err := s.impl(ctx)
	if err != nil {
		return nil, err
	}
	resp := &providerv1.SerialLogResponse{}
	resp.Diagnostics, err = invoke(ctx, func() (e error) {
		sl, ok := p.(SerialLogReader)
		if !ok {
			return ErrNotImplemented
		}
		max := r.GetMaxBytes()
		if max <= 0 {
			max = DefaultSerialLogBytes
		}
		resp.Tail, e = sl.SerialLog(ctx, r.GetEnv(), r.GetVm(), max)
		if int64(len(resp.Tail)) > max {
			resp.Tail = resp.Tail[int64(len(resp.Tail))-max:]
		}
		return e
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func (s *providerServer) Console(stream providerv1.Provider_ConsoleServer) error {
	ctx := stream.Context()
	p, err := s.impl(ctx)
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	defer pr.Close()
	go func() {
		if len(first.GetData()) > 0 {
			if _, err := pw.Write(first.GetData()); err != nil {
				return
			}
		}
		for {
			m, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					pw.Close()
				} else {
					pw.CloseWithError(err)
				}
				return
			}
			if _, err := pw.Write(m.GetData()); err != nil {
				return
			}
		}
	}()
	var mu sync.Mutex
	out := streamWriter{&mu, func(b []byte) error { return stream.Send(&providerv1.ConsoleOutput{Data: b}) }}
	d, err := invoke(ctx, func() error { return p.Console(ctx, first.GetEnv(), first.GetVm(), pr, out) })
	if err != nil {
		return err
	}
	if len(d) > 0 {
		mu.Lock()
		defer mu.Unlock()
		return stream.Send(&providerv1.ConsoleOutput{Diagnostics: d})
	}
	return nil
}

func (s *providerServer) Export(ctx context.Context, r *providerv1.ExportRequest) (*providerv1.ExportResponse, error) {
	p, err := s.impl(ctx)
	if err != nil {
		return nil, err
	}
	resp := &providerv1.ExportResponse{}
	resp.Diagnostics, err = invoke(ctx, func() (e error) { resp.Paths, e = p.Export(ctx, r); return e })
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// readFilesChunk is the size of the data of one ReadFiles message: big
// enough that tar's 512-byte headers do not each cost a message, well
// under gRPC's 4 MiB message limit.
const readFilesChunk = 256 << 10

func (s *providerServer) ReadFiles(r *providerv1.ReadFilesRequest, stream providerv1.Provider_ReadFilesServer) error {
	ctx := stream.Context()
	p, err := s.impl(ctx)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	bw := bufio.NewWriterSize(streamWriter{&mu, func(b []byte) error {
		return stream.Send(&providerv1.ReadFilesChunk{Data: b})
	}}, readFilesChunk)
	return invokeStream(ctx, func() error {
		fr, ok := p.(FileReader)
		if !ok {
			return ErrNotImplemented
		}
		missing, err := fr.ReadFiles(ctx, r.GetEnv(), r.GetVm(), r.GetPaths(), r.GetMaxBytes(), bw)
		if err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		if len(missing) > 0 {
			return stream.Send(&providerv1.ReadFilesChunk{Missing: missing})
		}
		return nil
	})
}

func (s *providerServer) ListOwned(ctx context.Context, r *providerv1.ListOwnedRequest) (*providerv1.ListOwnedResponse, error) {
	p, err := s.impl(ctx)
	if err != nil {
		return nil, err
	}
	resp := &providerv1.ListOwnedResponse{}
	resp.Diagnostics, err = invoke(ctx, func() (e error) { resp.Resources, e = p.ListOwned(ctx); return e })
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func (s *providerServer) RemoveOwned(ctx context.Context, r *providerv1.RemoveOwnedRequest) (*providerv1.DiagnosticsResponse, error) {
	return s.diagCall(ctx, func(p Provider) error { return p.RemoveOwned(ctx, r.GetEnv(), r.GetResources()) })
}

// FileReader is an optional Provider method: ReadFiles writes to w one
// uncompressed tar stream of paths (absolute, clean guest paths) read from
// the disks of vm, without writing to them, and returns the paths that do
// not exist there. Each path found is a member named like the path
// without its leading "/", a final symbolic link followed inside the
// guest's tree; a folder is followed by its tree. It is how the core
// collects the artifacts of a VM that is not running (the provider owns
// the disks, which may be on another host); a running VM is refused, its
// disks being in use. maxBytes caps the file contents read (0: the
// provider's own cap). Clients of plugins that lack it, and providers
// that embed UnimplementedProvider, get ErrNotImplemented.
type FileReader interface {
	ReadFiles(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, paths []string, maxBytes int64, w io.Writer) (missing []string, err error)
}

// UnimplementedProvider answers ErrNotImplemented for every method; embed
// it so a provider keeps compiling when the interface grows.
type UnimplementedProvider struct{}

func (UnimplementedProvider) ValidateSpec(context.Context, *providerv1.EnvRef, []*providerv1.Network, []*providerv1.VM) error {
	return ErrNotImplemented
}
func (UnimplementedProvider) UsedSubnets(context.Context) ([]*providerv1.UsedSubnet, error) {
	return nil, ErrNotImplemented
}
func (UnimplementedProvider) PrepareDisks(context.Context, *providerv1.EnvRef, *providerv1.VM) ([]*providerv1.PreparedDisk, error) {
	return nil, ErrNotImplemented
}
func (UnimplementedProvider) StartNetwork(context.Context, *providerv1.EnvRef, *providerv1.Network) error {
	return ErrNotImplemented
}
func (UnimplementedProvider) StopNetwork(context.Context, *providerv1.EnvRef, *providerv1.Network) error {
	return ErrNotImplemented
}
func (UnimplementedProvider) NetworkState(context.Context, *providerv1.EnvRef, *providerv1.Network) (string, error) {
	return "", ErrNotImplemented
}
func (UnimplementedProvider) StartVM(context.Context, *providerv1.EnvRef, *providerv1.VM) error {
	return ErrNotImplemented
}
func (UnimplementedProvider) StopVM(context.Context, *providerv1.EnvRef, *providerv1.VM) error {
	return ErrNotImplemented
}
func (UnimplementedProvider) ShutdownVM(context.Context, *providerv1.EnvRef, *providerv1.VM, bool, time.Duration) error {
	return ErrNotImplemented
}
func (UnimplementedProvider) VMState(context.Context, *providerv1.EnvRef, *providerv1.VM) (string, error) {
	return "", ErrNotImplemented
}
func (UnimplementedProvider) Snapshot(context.Context, *providerv1.EnvRef, *providerv1.VM, string) error {
	return ErrNotImplemented
}
func (UnimplementedProvider) Revert(context.Context, *providerv1.EnvRef, *providerv1.VM, string) error {
	return ErrNotImplemented
}
func (UnimplementedProvider) ListSnapshots(context.Context, *providerv1.EnvRef, *providerv1.VM) ([]*providerv1.Snapshot, error) {
	return nil, ErrNotImplemented
}
func (UnimplementedProvider) Console(context.Context, *providerv1.EnvRef, *providerv1.VM, io.Reader, io.Writer) error {
	return ErrNotImplemented
}
func (UnimplementedProvider) Export(context.Context, *providerv1.ExportRequest) ([]string, error) {
	return nil, ErrNotImplemented
}
func (UnimplementedProvider) ListOwned(context.Context) ([]*providerv1.OwnedResource, error) {
	return nil, ErrNotImplemented
}
func (UnimplementedProvider) RemoveOwned(context.Context, *providerv1.EnvRef, []*providerv1.OwnedResource) error {
	return ErrNotImplemented
}
func (UnimplementedProvider) ReadFiles(context.Context, *providerv1.EnvRef, *providerv1.VM, []string, int64, io.Writer) ([]string, error) {
	return nil, ErrNotImplemented
}
