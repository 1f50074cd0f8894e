package plugintest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	builderv1 "github.com/lago-go/lago/proto/lago/builder/v1"
	commandv1 "github.com/lago-go/lago/proto/lago/command/v1"
	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	"github.com/lago-go/lago/sdk"
)

// memProvider is an in-memory provider: VMs and networks are names in maps.
type memProvider struct {
	sdk.UnimplementedProvider
	mu  sync.Mutex
	vms map[string]string
}

func (p *memProvider) ValidateSpec(ctx context.Context, env *providerv1.EnvRef, nets []*providerv1.Network, vms []*providerv1.VM) error {
	var d sdk.Diagnostics
	for i, vm := range vms {
		if vm.GetName() == "" {
			d = append(d, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: "vm without a name", Attribute: fmt.Sprintf("vms[%d]", i)})
		}
	}
	return d.Err()
}

func (p *memProvider) VMState(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st, ok := p.vms[vm.GetName()]; ok {
		return st, nil
	}
	return "down", nil
}

func (p *memProvider) NetworkState(ctx context.Context, env *providerv1.EnvRef, n *providerv1.Network) (string, error) {
	return "down", nil
}

func (p *memProvider) RemoveOwned(ctx context.Context, env *providerv1.EnvRef, res []*providerv1.OwnedResource) error {
	return nil
}

func (p *memProvider) ListOwned(ctx context.Context) ([]*providerv1.OwnedResource, error) {
	return []*providerv1.OwnedResource{{Kind: "domain", Name: "x", OwnerUuid: "someone"}}, nil
}

func (p *memProvider) UsedSubnets(ctx context.Context) ([]*providerv1.UsedSubnet, error) {
	return []*providerv1.UsedSubnet{{Cidr: "192.0.2.0/24", Reason: "test"}}, nil
}

// badProvider breaks the contract: it panics on nil input and reports an
// unknown VM as "running". Only the failure-detection test uses it.
type badProvider struct{ memProvider }

func (p *badProvider) VMState(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) (string, error) {
	_ = vm.Name // nil pointer dereference on nil input
	return "running", nil
}

type memOutput struct{}

func (memOutput) Format(ctx context.Context, doc []byte) ([]byte, error) {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return nil, fmt.Errorf("parse document: %w", err)
	}
	return json.MarshalIndent(v, "", "  ")
}

type memCommand struct{}

func (memCommand) Execute(ctx context.Context, req *commandv1.ExecuteRequest, stdout, stderr io.Writer) (int, error) {
	if req.GetVerb() != "echo" {
		fmt.Fprintf(stderr, "unknown verb %s\n", req.GetVerb())
		return 2, nil
	}
	fmt.Fprint(stdout, strings.Join(req.GetArgs(), " "))
	fmt.Fprint(stderr, "done")
	return 0, nil
}

type memService struct{ host sdk.Host }

func (s *memService) Configure(ctx context.Context, c map[string]string, h sdk.Host) error {
	s.host = h
	return nil
}

func (s *memService) run(ctx context.Context, vm string, argv ...string) (int, error) {
	if s.host == nil {
		return 0, errors.New("no host")
	}
	return s.host.Exec(ctx, vm, argv, nil, io.Discard, io.Discard)
}

func (s *memService) Supported(ctx context.Context, vm string) (bool, error) {
	code, err := s.run(ctx, vm, "which", "mysvc")
	return code == 0, err
}

func (s *memService) State(ctx context.Context, vm, svc string) (string, error) {
	code, err := s.run(ctx, vm, "mysvc", "status", svc)
	if err != nil {
		return "", err
	}
	switch code {
	case 0:
		return "active", nil
	case 3:
		return "inactive", nil
	}
	return "unknown", nil
}

func (s *memService) Start(ctx context.Context, vm, svc string) error {
	if code, err := s.run(ctx, vm, "mysvc", "start", svc); err != nil || code != 0 {
		return fmt.Errorf("start %s on %s: exit %d: %v", svc, vm, code, err)
	}
	return nil
}

func (s *memService) Stop(ctx context.Context, vm, svc string) error { return nil }

type memVMType struct{}

func (memVMType) NormalizeSpec(ctx context.Context, vm string, spec []byte) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(spec, &m); err != nil {
		return nil, sdk.Diagnostics{{Severity: sdk.SeverityError, Summary: "spec is not a JSON object", Detail: err.Error()}}
	}
	m["vm-type"] = "mem"
	return json.Marshal(m)
}
func (memVMType) AfterStart(ctx context.Context, vm string) error { return nil }
func (memVMType) StatusFields(ctx context.Context, vm string) (map[string]string, error) {
	return map[string]string{"kind": "mem"}, nil
}

type memBuilder struct{}

func (memBuilder) Build(ctx context.Context, req *builderv1.BuildRequest, log func(string)) error {
	log("checking " + req.GetDiskPath())
	if _, err := os.Stat(req.GetDiskPath()); err != nil {
		return fmt.Errorf("build %s: %w", req.GetVm(), err)
	}
	return nil
}

func TestProviderConformance(t *testing.T) {
	ProviderConformance(t, &memProvider{vms: map[string]string{}})
}

func TestProviderConformanceWithUnimplemented(t *testing.T) {
	// Every method not implemented is acceptable.
	ProviderConformance(t, sdk.UnimplementedProvider{})
}

func TestOutputConformance(t *testing.T) { OutputConformance(t, memOutput{}) }

func TestCommandConformance(t *testing.T) {
	CommandConformance(t, memCommand{},
		WithInfo(sdk.ComponentInfo{Name: "echo", Commands: []sdk.CommandSpec{{Name: "echo", MaxArgs: -1, Flags: []sdk.FlagSpec{{Name: "n", Type: "bool"}}}}}),
		WithCommandCases(CommandCase{Name: "two args", Request: &commandv1.ExecuteRequest{Verb: "echo", Args: []string{"a", "b"}}, WantStdout: "a b", WantStderr: "done"}),
	)
}

func TestServiceConformance(t *testing.T) {
	ServiceConformance(t, &memService{})
	h := &FakeHost{ExecFunc: func(vm string, argv []string, stdin []byte, stdout, stderr io.Writer) (int, error) { return 0, nil }}
	ServiceConformance(t, &memService{}, WithHost(h))
}

func TestVMTypeConformance(t *testing.T) { VMTypeConformance(t, memVMType{}) }

func TestBuilderConformance(t *testing.T) { BuilderConformance(t, memBuilder{}) }

// TestBadProviderHelper runs the suite on a broken provider; it is meant
// to fail and only runs inside TestConformanceCatchesBrokenProvider.
func TestBadProviderHelper(t *testing.T) {
	if os.Getenv("PLUGINTEST_RUN_BAD") != "1" {
		t.Skip("helper for TestConformanceCatchesBrokenProvider")
	}
	ProviderConformance(t, &badProvider{memProvider{vms: map[string]string{}}})
}

func TestConformanceCatchesBrokenProvider(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run", "^TestBadProviderHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "PLUGINTEST_RUN_BAD=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err == nil {
		t.Fatalf("the suite passed a broken provider:\n%s", out.String())
	}
	for _, want := range []string{"VMState(nil) panicked", `VMState(unknown vm) = "running"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("suite output lacks %q:\n%s", want, out.String())
		}
	}
}
