package sdk

import (
	"context"
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc"

	hostv1 "github.com/lago-go/lago/proto/lago/host/v1"
)

// NewHostClient returns the Host a plugin uses to call back into the core
// over conn (a connection from the go-plugin broker).
func NewHostClient(conn grpc.ClientConnInterface, opts ...ClientOption) Host {
	return &hostClient{clientBase: newClientBase("host", opts), c: hostv1.NewHostClient(conn)}
}

type hostClient struct {
	clientBase
	c hostv1.HostClient
}

func (h *hostClient) Exec(ctx context.Context, vm string, argv []string, stdin []byte, stdout, stderr io.Writer) (int, error) {
	stream, err := h.c.Exec(ctx, &hostv1.ExecRequest{Vm: vm, Argv: argv, Stdin: stdin})
	if err != nil {
		return -1, h.rpcErr(ctx, "Exec", err)
	}
	code := -1
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return code, nil
		}
		if err != nil {
			return -1, h.rpcErr(ctx, "Exec", err)
		}
		switch ev := msg.GetEvent().(type) {
		case *hostv1.ExecOutput_Stdout:
			if stdout != nil {
				_, _ = stdout.Write(ev.Stdout)
			}
		case *hostv1.ExecOutput_Stderr:
			if stderr != nil {
				_, _ = stderr.Write(ev.Stderr)
			}
		case *hostv1.ExecOutput_ExitCode:
			code = int(ev.ExitCode)
		}
	}
}

func (h *hostClient) CopyTo(ctx context.Context, vm, localPath, remotePath string) error {
	r, err := h.c.CopyTo(ctx, &hostv1.CopyRequest{Vm: vm, LocalPath: localPath, RemotePath: remotePath})
	return h.result(ctx, "CopyTo", r.GetDiagnostics(), err)
}

func (h *hostClient) CopyFrom(ctx context.Context, vm, remotePath, localPath string) error {
	r, err := h.c.CopyFrom(ctx, &hostv1.CopyRequest{Vm: vm, LocalPath: localPath, RemotePath: remotePath})
	return h.result(ctx, "CopyFrom", r.GetDiagnostics(), err)
}

func (h *hostClient) Environment(ctx context.Context) (*hostv1.GetEnvironmentResponse, error) {
	r, err := h.c.GetEnvironment(ctx, &hostv1.GetEnvironmentRequest{})
	if err != nil {
		return nil, h.rpcErr(ctx, "GetEnvironment", err)
	}
	return r, nil
}

func (h *hostClient) Progress(ctx context.Context, message string, fraction float64) error {
	_, err := h.c.Progress(ctx, &hostv1.ProgressRequest{Message: message, Fraction: fraction})
	return h.rpcErr(ctx, "Progress", err)
}

func (h *hostClient) Log(ctx context.Context, level, message string) error {
	_, err := h.c.Log(ctx, &hostv1.LogRequest{Level: level, Message: message})
	return h.rpcErr(ctx, "Log", err)
}

// NewHostServer adapts the core's Host implementation to the gRPC service
// the plugins dial through the broker.
func NewHostServer(h Host) hostv1.HostServer { return &hostServer{h: h} }

type hostServer struct {
	hostv1.UnimplementedHostServer
	h Host
}

// streamWriter sends each Write as one stream message; the mutex keeps
// concurrent writers (stdout and stderr copiers) from racing on Send.
type streamWriter struct {
	mu   *sync.Mutex
	send func([]byte) error
}

func (w streamWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := make([]byte, len(p))
	copy(b, p)
	if err := w.send(b); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *hostServer) Exec(req *hostv1.ExecRequest, stream hostv1.Host_ExecServer) error {
	ctx := stream.Context()
	var mu sync.Mutex
	out := streamWriter{&mu, func(b []byte) error {
		return stream.Send(&hostv1.ExecOutput{Event: &hostv1.ExecOutput_Stdout{Stdout: b}})
	}}
	errw := streamWriter{&mu, func(b []byte) error {
		return stream.Send(&hostv1.ExecOutput{Event: &hostv1.ExecOutput_Stderr{Stderr: b}})
	}}
	return invokeStream(ctx, func() error {
		code, err := s.h.Exec(ctx, req.GetVm(), req.GetArgv(), req.GetStdin(), out, errw)
		if failed(err) {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if serr := stream.Send(&hostv1.ExecOutput{Event: &hostv1.ExecOutput_ExitCode{ExitCode: int32(code)}}); serr != nil {
			return serr
		}
		return err
	})
}

func (s *hostServer) CopyTo(ctx context.Context, req *hostv1.CopyRequest) (*hostv1.CopyResponse, error) {
	d, err := invoke(ctx, func() error { return s.h.CopyTo(ctx, req.GetVm(), req.GetLocalPath(), req.GetRemotePath()) })
	if err != nil {
		return nil, err
	}
	return &hostv1.CopyResponse{Diagnostics: d}, nil
}

func (s *hostServer) CopyFrom(ctx context.Context, req *hostv1.CopyRequest) (*hostv1.CopyResponse, error) {
	d, err := invoke(ctx, func() error { return s.h.CopyFrom(ctx, req.GetVm(), req.GetRemotePath(), req.GetLocalPath()) })
	if err != nil {
		return nil, err
	}
	return &hostv1.CopyResponse{Diagnostics: d}, nil
}

func (s *hostServer) GetEnvironment(ctx context.Context, _ *hostv1.GetEnvironmentRequest) (*hostv1.GetEnvironmentResponse, error) {
	var resp *hostv1.GetEnvironmentResponse
	d, err := invoke(ctx, func() error {
		var e error
		resp, e = s.h.Environment(ctx)
		return e
	})
	if err == nil {
		err = statusWithDiags(d)
	}
	if err != nil {
		return nil, err
	}
	if resp == nil {
		resp = &hostv1.GetEnvironmentResponse{}
	}
	return resp, nil
}

func (s *hostServer) Progress(ctx context.Context, req *hostv1.ProgressRequest) (*hostv1.Empty, error) {
	d, err := invoke(ctx, func() error { return s.h.Progress(ctx, req.GetMessage(), req.GetFraction()) })
	if err == nil {
		err = statusWithDiags(d)
	}
	if err != nil {
		return nil, err
	}
	return &hostv1.Empty{}, nil
}

func (s *hostServer) Log(ctx context.Context, req *hostv1.LogRequest) (*hostv1.Empty, error) {
	d, err := invoke(ctx, func() error { return s.h.Log(ctx, req.GetLevel(), req.GetMessage()) })
	if err == nil {
		err = statusWithDiags(d)
	}
	if err != nil {
		return nil, err
	}
	return &hostv1.Empty{}, nil
}
