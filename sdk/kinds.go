package sdk

import (
	"context"
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc"

	builderv1 "github.com/lago-go/lago/proto/lago/builder/v1"
	commandv1 "github.com/lago-go/lago/proto/lago/command/v1"
	outputv1 "github.com/lago-go/lago/proto/lago/output/v1"
	servicev1 "github.com/lago-go/lago/proto/lago/service/v1"
	vmtypev1 "github.com/lago-go/lago/proto/lago/vmtype/v1"
)

// ---- vm type ----

// NewVMTypeClient returns the VMType served as component over conn.
func NewVMTypeClient(conn grpc.ClientConnInterface, component string, opts ...ClientOption) VMType {
	return &vmTypeClient{clientBase: newClientBase(component, opts), c: vmtypev1.NewVMTypeClient(conn)}
}

type vmTypeClient struct {
	clientBase
	c vmtypev1.VMTypeClient
}

func (v *vmTypeClient) NormalizeSpec(ctx context.Context, vm string, specJSON []byte) ([]byte, error) {
	r, err := v.c.NormalizeSpec(v.outgoing(ctx), &vmtypev1.NormalizeSpecRequest{Vm: vm, SpecJson: specJSON})
	if err := v.result(ctx, "NormalizeSpec", r.GetDiagnostics(), err); err != nil {
		return nil, err
	}
	return r.GetSpecJson(), nil
}

func (v *vmTypeClient) AfterStart(ctx context.Context, vm string) error {
	r, err := v.c.AfterStart(v.outgoing(ctx), &vmtypev1.AfterStartRequest{Vm: vm})
	return v.result(ctx, "AfterStart", r.GetDiagnostics(), err)
}

func (v *vmTypeClient) StatusFields(ctx context.Context, vm string) (map[string]string, error) {
	r, err := v.c.StatusFields(v.outgoing(ctx), &vmtypev1.StatusFieldsRequest{Vm: vm})
	if err := v.result(ctx, "StatusFields", r.GetDiagnostics(), err); err != nil {
		return nil, err
	}
	return r.GetFields(), nil
}

type vmTypeServer struct {
	vmtypev1.UnimplementedVMTypeServer
	reg *registry
}

func (s *vmTypeServer) impl(ctx context.Context) (VMType, error) {
	i, err := s.reg.lookup(ctx, KindVMType)
	if err != nil {
		return nil, err
	}
	return i.(VMType), nil
}

func (s *vmTypeServer) NormalizeSpec(ctx context.Context, r *vmtypev1.NormalizeSpecRequest) (*vmtypev1.NormalizeSpecResponse, error) {
	v, err := s.impl(ctx)
	if err != nil {
		return nil, err
	}
	resp := &vmtypev1.NormalizeSpecResponse{}
	resp.Diagnostics, err = invoke(ctx, func() (e error) { resp.SpecJson, e = v.NormalizeSpec(ctx, r.GetVm(), r.GetSpecJson()); return e })
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func (s *vmTypeServer) AfterStart(ctx context.Context, r *vmtypev1.AfterStartRequest) (*vmtypev1.AfterStartResponse, error) {
	v, err := s.impl(ctx)
	if err != nil {
		return nil, err
	}
	d, err := invoke(ctx, func() error { return v.AfterStart(ctx, r.GetVm()) })
	if err != nil {
		return nil, err
	}
	return &vmtypev1.AfterStartResponse{Diagnostics: d}, nil
}

func (s *vmTypeServer) StatusFields(ctx context.Context, r *vmtypev1.StatusFieldsRequest) (*vmtypev1.StatusFieldsResponse, error) {
	v, err := s.impl(ctx)
	if err != nil {
		return nil, err
	}
	resp := &vmtypev1.StatusFieldsResponse{}
	resp.Diagnostics, err = invoke(ctx, func() (e error) { resp.Fields, e = v.StatusFields(ctx, r.GetVm()); return e })
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// UnimplementedVMType answers ErrNotImplemented for every method.
type UnimplementedVMType struct{}

func (UnimplementedVMType) NormalizeSpec(context.Context, string, []byte) ([]byte, error) {
	return nil, ErrNotImplemented
}
func (UnimplementedVMType) AfterStart(context.Context, string) error { return ErrNotImplemented }
func (UnimplementedVMType) StatusFields(context.Context, string) (map[string]string, error) {
	return nil, ErrNotImplemented
}

// ---- service manager ----

// NewServiceClient returns the ServiceManager served as component over conn.
func NewServiceClient(conn grpc.ClientConnInterface, component string, opts ...ClientOption) ServiceManager {
	return &serviceClient{clientBase: newClientBase(component, opts), c: servicev1.NewServiceManagerClient(conn)}
}

type serviceClient struct {
	clientBase
	c servicev1.ServiceManagerClient
}

func (s *serviceClient) Supported(ctx context.Context, vm string) (bool, error) {
	r, err := s.c.Supported(s.outgoing(ctx), &servicev1.SupportedRequest{Vm: vm})
	if err := s.result(ctx, "Supported", r.GetDiagnostics(), err); err != nil {
		return false, err
	}
	return r.GetSupported(), nil
}

func (s *serviceClient) State(ctx context.Context, vm, service string) (string, error) {
	r, err := s.c.State(s.outgoing(ctx), &servicev1.ServiceRequest{Vm: vm, Service: service})
	if err := s.result(ctx, "State", r.GetDiagnostics(), err); err != nil {
		return "", err
	}
	return r.GetState(), nil
}

func (s *serviceClient) Start(ctx context.Context, vm, service string) error {
	r, err := s.c.Start(s.outgoing(ctx), &servicev1.ServiceRequest{Vm: vm, Service: service})
	return s.result(ctx, "Start", r.GetDiagnostics(), err)
}

func (s *serviceClient) Stop(ctx context.Context, vm, service string) error {
	r, err := s.c.Stop(s.outgoing(ctx), &servicev1.ServiceRequest{Vm: vm, Service: service})
	return s.result(ctx, "Stop", r.GetDiagnostics(), err)
}

type serviceServer struct {
	servicev1.UnimplementedServiceManagerServer
	reg *registry
}

func (s *serviceServer) impl(ctx context.Context) (ServiceManager, error) {
	i, err := s.reg.lookup(ctx, KindService)
	if err != nil {
		return nil, err
	}
	return i.(ServiceManager), nil
}

func (s *serviceServer) Supported(ctx context.Context, r *servicev1.SupportedRequest) (*servicev1.SupportedResponse, error) {
	m, err := s.impl(ctx)
	if err != nil {
		return nil, err
	}
	resp := &servicev1.SupportedResponse{}
	resp.Diagnostics, err = invoke(ctx, func() (e error) { resp.Supported, e = m.Supported(ctx, r.GetVm()); return e })
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func (s *serviceServer) State(ctx context.Context, r *servicev1.ServiceRequest) (*servicev1.ServiceStateResponse, error) {
	m, err := s.impl(ctx)
	if err != nil {
		return nil, err
	}
	resp := &servicev1.ServiceStateResponse{}
	resp.Diagnostics, err = invoke(ctx, func() (e error) { resp.State, e = m.State(ctx, r.GetVm(), r.GetService()); return e })
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func (s *serviceServer) Start(ctx context.Context, r *servicev1.ServiceRequest) (*servicev1.ServiceActionResponse, error) {
	m, err := s.impl(ctx)
	if err != nil {
		return nil, err
	}
	d, err := invoke(ctx, func() error { return m.Start(ctx, r.GetVm(), r.GetService()) })
	if err != nil {
		return nil, err
	}
	return &servicev1.ServiceActionResponse{Diagnostics: d}, nil
}

func (s *serviceServer) Stop(ctx context.Context, r *servicev1.ServiceRequest) (*servicev1.ServiceActionResponse, error) {
	m, err := s.impl(ctx)
	if err != nil {
		return nil, err
	}
	d, err := invoke(ctx, func() error { return m.Stop(ctx, r.GetVm(), r.GetService()) })
	if err != nil {
		return nil, err
	}
	return &servicev1.ServiceActionResponse{Diagnostics: d}, nil
}

// UnimplementedServiceManager answers ErrNotImplemented for every method.
type UnimplementedServiceManager struct{}

func (UnimplementedServiceManager) Supported(context.Context, string) (bool, error) {
	return false, ErrNotImplemented
}
func (UnimplementedServiceManager) State(context.Context, string, string) (string, error) {
	return "", ErrNotImplemented
}
func (UnimplementedServiceManager) Start(context.Context, string, string) error {
	return ErrNotImplemented
}
func (UnimplementedServiceManager) Stop(context.Context, string, string) error {
	return ErrNotImplemented
}

// ---- builder ----

// NewBuilderClient returns the Builder served as component over conn.
func NewBuilderClient(conn grpc.ClientConnInterface, component string, opts ...ClientOption) Builder {
	return &builderClient{clientBase: newClientBase(component, opts), c: builderv1.NewBuilderClient(conn)}
}

type builderClient struct {
	clientBase
	c builderv1.BuilderClient
}

func (b *builderClient) Build(ctx context.Context, req *builderv1.BuildRequest, log func(line string)) error {
	stream, err := b.c.Build(b.outgoing(ctx), req)
	if err != nil {
		return b.rpcErr(ctx, "Build", err)
	}
	var diags Diagnostics
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return b.diags(diags)
		}
		if err != nil {
			return b.rpcErr(ctx, "Build", err)
		}
		switch ev := msg.GetEvent().(type) {
		case *builderv1.BuildEvent_LogLine:
			if log != nil {
				log(ev.LogLine)
			}
		case *builderv1.BuildEvent_Result:
			diags = append(diags, diagsFromProto(ev.Result.GetDiagnostics())...)
		}
	}
}

type builderServer struct {
	builderv1.UnimplementedBuilderServer
	reg *registry
}

func (s *builderServer) Build(r *builderv1.BuildRequest, stream builderv1.Builder_BuildServer) error {
	ctx := stream.Context()
	i, err := s.reg.lookup(ctx, KindBuilder)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	log := func(line string) {
		mu.Lock()
		defer mu.Unlock()
		_ = stream.Send(&builderv1.BuildEvent{Event: &builderv1.BuildEvent_LogLine{LogLine: line}})
	}
	d, err := invoke(ctx, func() error { return i.(Builder).Build(ctx, r, log) })
	if err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	return stream.Send(&builderv1.BuildEvent{Event: &builderv1.BuildEvent_Result{Result: &builderv1.BuildResult{Diagnostics: d}}})
}

// UnimplementedBuilder answers ErrNotImplemented.
type UnimplementedBuilder struct{}

func (UnimplementedBuilder) Build(context.Context, *builderv1.BuildRequest, func(string)) error {
	return ErrNotImplemented
}

// ---- output format ----

// NewOutputClient returns the OutputFormat served as component over conn.
func NewOutputClient(conn grpc.ClientConnInterface, component string, opts ...ClientOption) OutputFormat {
	return &outputClient{clientBase: newClientBase(component, opts), c: outputv1.NewOutputFormatClient(conn)}
}

type outputClient struct {
	clientBase
	c outputv1.OutputFormatClient
}

func (o *outputClient) Format(ctx context.Context, documentJSON []byte) ([]byte, error) {
	r, err := o.c.Format(o.outgoing(ctx), &outputv1.FormatRequest{DocumentJson: documentJSON})
	if err := o.result(ctx, "Format", r.GetDiagnostics(), err); err != nil {
		return nil, err
	}
	return r.GetOutput(), nil
}

type outputServer struct {
	outputv1.UnimplementedOutputFormatServer
	reg *registry
}

func (s *outputServer) Format(ctx context.Context, r *outputv1.FormatRequest) (*outputv1.FormatResponse, error) {
	i, err := s.reg.lookup(ctx, KindOutput)
	if err != nil {
		return nil, err
	}
	resp := &outputv1.FormatResponse{}
	resp.Diagnostics, err = invoke(ctx, func() (e error) { resp.Output, e = i.(OutputFormat).Format(ctx, r.GetDocumentJson()); return e })
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// UnimplementedOutputFormat answers ErrNotImplemented.
type UnimplementedOutputFormat struct{}

func (UnimplementedOutputFormat) Format(context.Context, []byte) ([]byte, error) {
	return nil, ErrNotImplemented
}

// ---- command ----

// NewCommandClient returns the Command served as component over conn.
func NewCommandClient(conn grpc.ClientConnInterface, component string, opts ...ClientOption) Command {
	return &commandClient{clientBase: newClientBase(component, opts), c: commandv1.NewCommandClient(conn)}
}

type commandClient struct {
	clientBase
	c commandv1.CommandClient
}

// Execute streams the verb's stdout and stderr to the given writers (kept
// apart) and returns its exit code; err is set when the verb could not run.
func (c *commandClient) Execute(ctx context.Context, req *commandv1.ExecuteRequest, stdout, stderr io.Writer) (int, error) {
	stream, err := c.c.Execute(c.outgoing(ctx), req)
	if err != nil {
		return -1, c.rpcErr(ctx, "Execute", err)
	}
	code := 0
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return code, nil
		}
		if err != nil {
			if e := c.rpcErr(ctx, "Execute", err); e != nil {
				return -1, e
			}
			return code, nil
		}
		switch ev := msg.GetEvent().(type) {
		case *commandv1.ExecuteOutput_Stdout:
			if stdout != nil {
				_, _ = stdout.Write(ev.Stdout)
			}
		case *commandv1.ExecuteOutput_Stderr:
			if stderr != nil {
				_, _ = stderr.Write(ev.Stderr)
			}
		case *commandv1.ExecuteOutput_ExitCode:
			code = int(ev.ExitCode)
		}
	}
}

type commandServer struct {
	commandv1.UnimplementedCommandServer
	reg *registry
}

func (s *commandServer) Execute(r *commandv1.ExecuteRequest, stream commandv1.Command_ExecuteServer) error {
	ctx := stream.Context()
	i, err := s.reg.lookup(ctx, KindCommand)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	out := streamWriter{&mu, func(b []byte) error {
		return stream.Send(&commandv1.ExecuteOutput{Event: &commandv1.ExecuteOutput_Stdout{Stdout: b}})
	}}
	errw := streamWriter{&mu, func(b []byte) error {
		return stream.Send(&commandv1.ExecuteOutput{Event: &commandv1.ExecuteOutput_Stderr{Stderr: b}})
	}}
	return invokeStream(ctx, func() error {
		code, err := i.(Command).Execute(ctx, r, out, errw)
		if failed(err) {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if serr := stream.Send(&commandv1.ExecuteOutput{Event: &commandv1.ExecuteOutput_ExitCode{ExitCode: int32(code)}}); serr != nil {
			return serr
		}
		return err
	})
}

// UnimplementedCommand answers ErrNotImplemented.
type UnimplementedCommand struct{}

func (UnimplementedCommand) Execute(context.Context, *commandv1.ExecuteRequest, io.Writer, io.Writer) (int, error) {
	return -1, ErrNotImplemented
}
