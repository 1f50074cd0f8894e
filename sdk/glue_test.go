package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	builderv1 "github.com/lago-go/lago/proto/lago/builder/v1"
	commandv1 "github.com/lago-go/lago/proto/lago/command/v1"
	hostv1 "github.com/lago-go/lago/proto/lago/host/v1"
	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
)

// fakeOutput prefixes the document with its name; "panic" panics, "block"
// waits for cancellation, "fail" returns a plain error.
type fakeOutput struct {
	name     string
	canceled chan struct{}
}

func (f *fakeOutput) Format(ctx context.Context, doc []byte) ([]byte, error) {
	switch string(doc) {
	case "panic":
		panic("boom")
	case "block":
		<-ctx.Done()
		close(f.canceled)
		return nil, ctx.Err()
	case "fail":
		return nil, errors.New("bad document")
	case "warn":
		return []byte("ok"), Diagnostics{{Severity: SeverityWarning, Summary: "careful"}}
	}
	return []byte(f.name + ":" + string(doc)), nil
}

type fakeProvider struct {
	UnimplementedProvider
}

func (fakeProvider) ValidateSpec(ctx context.Context, env *providerv1.EnvRef, nets []*providerv1.Network, vms []*providerv1.VM) error {
	return Diagnostics{
		{Severity: SeverityWarning, Summary: "old style"},
		{Severity: SeverityError, Summary: "bad vm", Detail: "no disks", Attribute: "domains.vm0"},
	}
}

func (fakeProvider) Console(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, in io.Reader, out io.Writer) error {
	fmt.Fprintf(out, "console of %s\n", vm.GetName())
	_, err := io.Copy(out, in)
	return err
}

type fakeCommand struct{ host Host }

func (c *fakeCommand) Configure(ctx context.Context, cfg map[string]string, h Host) error {
	if cfg["fail"] == "yes" {
		return Diagnostics{{Severity: SeverityError, Summary: "bad config", Attribute: "fail"}}
	}
	c.host = h
	return nil
}

func (c *fakeCommand) Execute(ctx context.Context, req *commandv1.ExecuteRequest, stdout, stderr io.Writer) (int, error) {
	if c.host != nil {
		env, err := c.host.Environment(ctx)
		if err != nil {
			return 0, err
		}
		fmt.Fprintf(stdout, "prefix=%s ", env.GetPrefixPath())
		var out bytes.Buffer
		code, err := c.host.Exec(ctx, "vm0", []string{"echo", "hi"}, nil, &out, io.Discard)
		if err != nil {
			return 0, err
		}
		fmt.Fprintf(stdout, "exec=%d:%s ", code, out.String())
	}
	fmt.Fprintf(stdout, "out %s", strings.Join(req.GetArgs(), ","))
	fmt.Fprint(stderr, "err")
	return 7, nil
}

type fakeBuilder struct{}

func (fakeBuilder) Build(ctx context.Context, req *builderv1.BuildRequest, log func(string)) error {
	log("step 1")
	log("step 2")
	return errors.New("virt-customize failed")
}

type fakeHost struct{ UnimplementedHostForTest }

// UnimplementedHostForTest answers ErrNotImplemented except Environment and
// Exec.
type UnimplementedHostForTest struct{}

func (UnimplementedHostForTest) CopyTo(context.Context, string, string, string) error {
	return ErrNotImplemented
}
func (UnimplementedHostForTest) CopyFrom(context.Context, string, string, string) error {
	return ErrNotImplemented
}
func (UnimplementedHostForTest) Progress(context.Context, string, float64) error { return nil }
func (UnimplementedHostForTest) Log(context.Context, string, string) error       { return nil }

func (fakeHost) Environment(ctx context.Context) (*hostv1.GetEnvironmentResponse, error) {
	return &hostv1.GetEnvironmentResponse{PrefixPath: "/p"}, nil
}

func (fakeHost) Exec(ctx context.Context, vm string, argv []string, stdin []byte, stdout, stderr io.Writer) (int, error) {
	fmt.Fprint(stdout, strings.Join(argv[1:], " "))
	return 3, nil
}

func testPlugin() (*Plugin, *fakeOutput) {
	a := &fakeOutput{name: "a", canceled: make(chan struct{})}
	return &Plugin{
		Name:    "test",
		Version: "1.0",
		Components: []Component{
			{Info: ComponentInfo{Name: "a", Kind: KindOutput}, Impl: a},
			{Info: ComponentInfo{Name: "b", Kind: KindOutput}, Impl: &fakeOutput{name: "b"}},
			{Info: ComponentInfo{Name: "prov", Kind: KindProvider, Capabilities: []string{"console"}}, Impl: fakeProvider{}},
			{Info: ComponentInfo{Name: "cmd", Kind: KindCommand, Commands: []CommandSpec{{Name: "hello", MaxArgs: -1}}}, Impl: &fakeCommand{}},
			{Info: ComponentInfo{Name: "bld", Kind: KindBuilder}, Impl: fakeBuilder{}},
		},
	}, a
}

func dial(t *testing.T, p *Plugin) *PluginClient {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, PluginSet(p))
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(PluginSetKey)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(*PluginClient)
}

func TestOutputDispatchAndErrors(t *testing.T) {
	p, _ := testPlugin()
	pc := dial(t, p)
	ctx := context.Background()
	tests := []struct {
		comp, doc string
		want      string
		wantErr   string
		wantWarn  string
	}{
		{comp: "a", doc: "x", want: "a:x"},
		{comp: "b", doc: "x", want: "b:x"},
		{comp: "a", doc: "fail", wantErr: "bad document"},
		{comp: "a", doc: "panic", wantErr: "plugin panic: boom"},
		{comp: "a", doc: "x", want: "a:x"}, // still alive after the panic
		{comp: "a", doc: "warn", want: "ok", wantWarn: "careful"},
		{comp: "nope", doc: "x", wantErr: `no output component "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.comp+"/"+tt.doc, func(t *testing.T) {
			var warns []string
			o := pc.Output(tt.comp, WithWarningHandler(func(d Diagnostic) { warns = append(warns, d.Summary) }))
			got, err := o.Format(ctx, []byte(tt.doc))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("Format = %q, %v; want %q", got, err, tt.want)
			}
			if tt.wantWarn != "" && (len(warns) != 1 || warns[0] != tt.wantWarn) {
				t.Fatalf("warnings = %v, want [%s]", warns, tt.wantWarn)
			}
		})
	}
}

func TestPanicIsDiagnostic(t *testing.T) {
	p, _ := testPlugin()
	_, err := dial(t, p).Output("a").Format(context.Background(), []byte("panic"))
	var d Diagnostics
	if !errors.As(err, &d) || len(d) != 1 || !strings.Contains(d[0].Detail, "goroutine") {
		t.Fatalf("err = %#v, want one diagnostic with a stack", err)
	}
}

func TestCancellationPropagates(t *testing.T) {
	p, a := testPlugin()
	o := dial(t, p).Output("a")
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err := o.Format(ctx, []byte("block"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	select {
	case <-a.canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("plugin side never saw the cancellation")
	}
}

func TestProviderDiagnosticsAndNotImplemented(t *testing.T) {
	p, _ := testPlugin()
	var mu sync.Mutex
	var warns Diagnostics
	prov := dial(t, p).Provider("prov", WithWarningHandler(func(d Diagnostic) { mu.Lock(); warns = append(warns, d); mu.Unlock() }))
	err := prov.ValidateSpec(context.Background(), &providerv1.EnvRef{}, nil, nil)
	var d Diagnostics
	if !errors.As(err, &d) {
		t.Fatalf("err = %v, want Diagnostics", err)
	}
	want := Diagnostic{Severity: SeverityError, Summary: "bad vm", Detail: "no disks", Attribute: "domains.vm0"}
	if len(d) != 2 || d[1] != want {
		t.Fatalf("diagnostics = %#v", d)
	}
	if len(warns) != 1 || warns[0].Summary != "old style" {
		t.Fatalf("warnings = %#v", warns)
	}
	if err := prov.StartVM(context.Background(), nil, nil); !errors.Is(err, ErrNotImplemented) {
		t.Fatalf("StartVM err = %v, want ErrNotImplemented", err)
	}
	if _, err := prov.VMState(context.Background(), nil, nil); !errors.Is(err, ErrNotImplemented) {
		t.Fatalf("VMState err = %v, want ErrNotImplemented", err)
	}
}

func TestProviderConsole(t *testing.T) {
	p, _ := testPlugin()
	prov := dial(t, p).Provider("prov")
	var out bytes.Buffer
	err := prov.Console(context.Background(), nil, &providerv1.VM{Name: "vm0"}, strings.NewReader("typed\n"), &out)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "console of vm0\ntyped\n" {
		t.Fatalf("console output = %q", got)
	}
}

func TestCommandWithHost(t *testing.T) {
	tests := []struct {
		name string
		host Host
		want string
	}{
		{"no host", nil, "out x,y"},
		{"host", fakeHost{}, "prefix=/p exec=3:hi out x,y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := testPlugin()
			pc := dial(t, p)
			if err := pc.Configure(context.Background(), "cmd", nil, tt.host); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			code, err := pc.Command("cmd").Execute(context.Background(), &commandv1.ExecuteRequest{Verb: "hello", Args: []string{"x", "y"}}, &out, &errb)
			if err != nil || code != 7 || out.String() != tt.want || errb.String() != "err" {
				t.Fatalf("Execute = %d, %v, stdout %q, stderr %q", code, err, out.String(), errb.String())
			}
		})
	}
}

func TestConfigureDiagnostics(t *testing.T) {
	p, _ := testPlugin()
	err := dial(t, p).Configure(context.Background(), "cmd", map[string]string{"fail": "yes"}, nil)
	var d Diagnostics
	if !errors.As(err, &d) || d[0].Attribute != "fail" {
		t.Fatalf("err = %v", err)
	}
}

func TestBuilderStreamsLogAndError(t *testing.T) {
	p, _ := testPlugin()
	var lines []string
	err := dial(t, p).Builder("bld").Build(context.Background(), &builderv1.BuildRequest{}, func(l string) { lines = append(lines, l) })
	if err == nil || !strings.Contains(err.Error(), "virt-customize failed") {
		t.Fatalf("err = %v", err)
	}
	if strings.Join(lines, "|") != "step 1|step 2" {
		t.Fatalf("lines = %q", lines)
	}
}

func TestDescribe(t *testing.T) {
	p, _ := testPlugin()
	var out, errb bytes.Buffer
	if code := serve(*p, []string{"describe"}, &out, &errb); code != 0 {
		t.Fatalf("serve describe = %d, stderr %s", code, errb.String())
	}
	var d Description
	if err := json.Unmarshal(out.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	if d.Name != "test" || len(d.Components) != 5 || d.APIVersions[0] != APIVersion || d.Components[3].Commands[0].Name != "hello" {
		t.Fatalf("describe = %+v", d)
	}
	got, err := dial(t, p).Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.Components[2].Capabilities[0] != "console" || got.Components[3].Commands[0].MaxArgs != -1 {
		t.Fatalf("Describe RPC = %+v", got)
	}
}

func TestServeRejectsKindMismatch(t *testing.T) {
	p := Plugin{Name: "bad", Components: []Component{{Info: ComponentInfo{Name: "x", Kind: KindProvider}, Impl: &fakeOutput{}}}}
	var out, errb bytes.Buffer
	if code := serve(p, []string{"describe"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "does not implement") {
		t.Fatalf("code %d stderr %q", code, errb.String())
	}
}

// warnHost answers with warnings only: the plugin must see success.
type warnHost struct{ fakeHost }

func (warnHost) Environment(ctx context.Context) (*hostv1.GetEnvironmentResponse, error) {
	return &hostv1.GetEnvironmentResponse{PrefixPath: "/w"}, Diagnostics{{Severity: SeverityWarning, Summary: "stale"}}
}

func (warnHost) Exec(ctx context.Context, vm string, argv []string, stdin []byte, stdout, stderr io.Writer) (int, error) {
	return 5, Diagnostics{{Severity: SeverityWarning, Summary: "slow"}}
}

func TestHostWarningsOnlyAreSuccess(t *testing.T) {
	// Serve the host over a plain in-process gRPC connection.
	conn, _ := plugin.TestGRPCConn(t, func(s *grpc.Server) { hostv1.RegisterHostServer(s, NewHostServer(warnHost{})) })
	h := NewHostClient(conn)
	env, err := h.Environment(context.Background())
	if err != nil || env.GetPrefixPath() != "/w" {
		t.Fatalf("Environment = %v, %v", env, err)
	}
	code, err := h.Exec(context.Background(), "vm", []string{"true"}, nil, io.Discard, io.Discard)
	if err != nil || code != 5 {
		t.Fatalf("Exec = %d, %v", code, err)
	}
}

// logProvider implements the optional SerialLogReader; it answers more
// than asked for, which the server trims.
type logProvider struct{ UnimplementedProvider }

func (logProvider) SerialLog(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, maxBytes int64) ([]byte, error) {
	if vm.GetName() == "broken" {
		return nil, errors.New("console log unreadable")
	}
	return []byte("boot\nlogin: " + vm.GetName()), nil
}

func TestProviderSerialLog(t *testing.T) {
	p := &Plugin{Name: "logs", Components: []Component{
		{Info: ComponentInfo{Name: "with", Kind: KindProvider}, Impl: logProvider{}},
		{Info: ComponentInfo{Name: "without", Kind: KindProvider}, Impl: fakeProvider{}},
	}}
	c := dial(t, p)
	for _, tc := range []struct {
		component, vm string
		max           int64
		want, err     string
	}{
		{component: "with", vm: "vm0", want: "boot\nlogin: vm0"},
		{component: "with", vm: "vm0", max: 7, want: "in: vm0"},
		{component: "with", vm: "broken", err: "console log unreadable"},
		{component: "without", vm: "vm0", err: ErrNotImplemented.Error()},
	} {
		t.Run(fmt.Sprintf("%s/%s/%d", tc.component, tc.vm, tc.max), func(t *testing.T) {
			prov, ok := c.Provider(tc.component).(SerialLogReader)
			if !ok {
				t.Fatal("the provider client does not offer SerialLog")
			}
			got, err := prov.SerialLog(context.Background(), &providerv1.EnvRef{}, &providerv1.VM{Name: tc.vm}, tc.max)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("SerialLog err = %v, want %q", err, tc.err)
				}
				if tc.err == ErrNotImplemented.Error() && !errors.Is(err, ErrNotImplemented) {
					t.Fatalf("SerialLog err = %v, want ErrNotImplemented", err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("SerialLog = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
