package plugintest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"unicode/utf8"

	builderv1 "github.com/lago-go/lago/proto/lago/builder/v1"
	commandv1 "github.com/lago-go/lago/proto/lago/command/v1"
	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	"github.com/lago-go/lago/sdk"
)

// Option tunes a conformance suite.
type Option func(*suite)

// WithConfig is the configuration passed to Configure (default empty).
func WithConfig(c map[string]string) Option { return func(s *suite) { s.config = c } }

// WithInfo is the component's describe entry (the command suite needs its
// verbs; the others default to a bare entry).
func WithInfo(info sdk.ComponentInfo) Option { return func(s *suite) { s.info = info } }

// WithHost replaces the default FakeHost given to Configure.
func WithHost(h *FakeHost) Option { return func(s *suite) { s.host = h } }

// CommandCase is one expected run of a command verb.
type CommandCase struct {
	Name       string
	Request    *commandv1.ExecuteRequest
	WantExit   int
	WantStdout string
	WantStderr string
}

// WithCommandCases adds verb runs whose exit code, stdout and stderr the
// command suite checks exactly (and separately).
func WithCommandCases(cases ...CommandCase) Option {
	return func(s *suite) { s.cases = append(s.cases, cases...) }
}

type suite struct {
	config map[string]string
	info   sdk.ComponentInfo
	host   *FakeHost
	cases  []CommandCase

	client *sdk.PluginClient
	name   string
}

// setup serves impl and runs the checks every kind shares: describe,
// configure.
func setup(t *testing.T, kind string, impl any, opts []Option) *suite {
	t.Helper()
	s := &suite{host: &FakeHost{}}
	for _, o := range opts {
		o(s)
	}
	p := Single(kind, s.info, impl)
	s.name = p.Components[0].Info.Name
	s.client = Connect(t, p)
	t.Run("describe", func(t *testing.T) {
		d, err := s.client.Describe(context.Background())
		if err != nil {
			t.Fatalf("Describe: %v", err)
		}
		if len(d.Components) != 1 || d.Components[0].Kind != kind || d.Components[0].Name != s.name {
			t.Fatalf("Describe components = %+v, want one %s named %q", d.Components, kind, s.name)
		}
		found := false
		for _, v := range d.APIVersions {
			found = found || v == sdk.APIVersion
		}
		if !found {
			t.Fatalf("Describe api versions %v lack %d", d.APIVersions, sdk.APIVersion)
		}
	})
	t.Run("configure", func(t *testing.T) {
		err := s.client.Configure(context.Background(), s.name, s.config, s.host)
		if err != nil {
			checkDomain(t, "Configure", err)
			t.Fatalf("Configure with %v failed: %v (pass the settings the component needs with WithConfig)", s.config, err)
		}
	})
	return s
}

// checkDomain fails t unless err is nil, ErrNotImplemented or diagnostics:
// anything else is a transport failure, and a "plugin panic" diagnostic is
// the glue catching a panic of the implementation.
func checkDomain(t *testing.T, method string, err error) {
	t.Helper()
	if err == nil || errors.Is(err, sdk.ErrNotImplemented) {
		return
	}
	var d sdk.Diagnostics
	if !errors.As(err, &d) {
		t.Errorf("%s returned a transport error instead of diagnostics: %v", method, err)
		return
	}
	for _, x := range d {
		if strings.HasPrefix(x.Summary, "plugin panic:") {
			t.Errorf("%s panicked: %s\n%s", method, x.Summary, x.Detail)
		} else if x.Summary == "" {
			t.Errorf("%s returned a diagnostic without summary: %+v", method, x)
		}
	}
}

// direct calls f, turning a panic into an error that checkDomain reports.
func direct(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = sdk.Diagnostics{{Severity: sdk.SeverityError, Summary: fmt.Sprintf("plugin panic: %v", v)}}
		}
	}()
	return f()
}

// sameOutcome checks that an error of the implementation survives the
// wire: both nil, or the remote error is diagnostics with the same text
// (or both not implemented).
func sameOutcome(t *testing.T, method string, local, remote error) {
	t.Helper()
	checkDomain(t, method+" (remote)", remote)
	switch {
	case local == nil && remote == nil:
	case errors.Is(local, sdk.ErrNotImplemented) && errors.Is(remote, sdk.ErrNotImplemented):
	case local == nil || remote == nil:
		t.Errorf("%s: direct call returned %v but over gRPC %v", method, local, remote)
	default:
		var ld sdk.Diagnostics
		want := local.Error()
		if errors.As(local, &ld) {
			want = ld.Error()
		}
		if remote.Error() != want {
			t.Errorf("%s: error %q became %q over gRPC", method, want, remote.Error())
		}
	}
}

// checkCancel makes a call with an already cancelled context.
func checkCancel(t *testing.T, method string, call func(ctx context.Context) error) {
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := call(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("%s with a cancelled context = %v, want context.Canceled", method, err)
		}
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ProviderConformance checks a Provider through the real gRPC glue. It only
// calls methods that must be harmless on objects the provider does not
// know: it never starts or stops anything.
func ProviderConformance(t *testing.T, impl sdk.Provider, opts ...Option) {
	s := setup(t, sdk.KindProvider, impl, opts)
	remote := s.client.Provider(s.name)
	ctx := context.Background()
	env := &providerv1.EnvRef{PrefixPath: "/nonexistent/lago-plugintest-" + randomHex(4), Uuid: randomHex(16)}
	vm := &providerv1.VM{Name: "plugintest-unknown-vm", MemoryMib: 64, Vcpu: 1}
	netw := &providerv1.Network{Name: "plugintest-unknown-net", Type: "nat", Gateway: "192.0.2.1", PrefixLength: 24}

	t.Run("RemoveOwned of an unknown env is not an error", func(t *testing.T) {
		err := remote.RemoveOwned(ctx, env, nil)
		if err != nil && !errors.Is(err, sdk.ErrNotImplemented) {
			checkDomain(t, "RemoveOwned", err)
			t.Fatalf("RemoveOwned(unknown env) = %v, want nil", err)
		}
	})
	t.Run("VMState of an unknown VM", func(t *testing.T) {
		st, err := remote.VMState(ctx, env, vm)
		checkDomain(t, "VMState", err)
		if err == nil && st != "down" {
			t.Fatalf("VMState(unknown vm) = %q, want \"down\" or a diagnostic", st)
		}
	})
	t.Run("NetworkState of an unknown network", func(t *testing.T) {
		st, err := remote.NetworkState(ctx, env, netw)
		checkDomain(t, "NetworkState", err)
		if err == nil && st != "down" {
			t.Fatalf("NetworkState(unknown net) = %q, want \"down\" or a diagnostic", st)
		}
	})
	t.Run("ListOwned", func(t *testing.T) {
		res, err := remote.ListOwned(ctx)
		checkDomain(t, "ListOwned", err)
		for _, r := range res {
			if r.GetOwnerUuid() == env.GetUuid() {
				t.Errorf("ListOwned reports %+v for an env that never existed", r)
			}
		}
	})
	t.Run("UsedSubnets", func(t *testing.T) {
		subs, err := remote.UsedSubnets(ctx)
		checkDomain(t, "UsedSubnets", err)
		for _, sn := range subs {
			if _, _, perr := net.ParseCIDR(sn.GetCidr()); perr != nil {
				t.Errorf("UsedSubnets gave %q: %v", sn.GetCidr(), perr)
			}
		}
	})
	t.Run("diagnostics round-trip", func(t *testing.T) {
		bad := &providerv1.VM{} // no name, no disks
		local := direct(func() error { return impl.ValidateSpec(ctx, env, nil, []*providerv1.VM{bad}) })
		sameOutcome(t, "ValidateSpec", local, remote.ValidateSpec(ctx, env, nil, []*providerv1.VM{bad}))
		local = direct(func() error { _, err := impl.ListSnapshots(ctx, env, vm); return err })
		_, rerr := remote.ListSnapshots(ctx, env, vm)
		sameOutcome(t, "ListSnapshots", local, rerr)
	})
	t.Run("nil inputs do not panic", func(t *testing.T) {
		_, err := remote.VMState(ctx, nil, nil)
		checkDomain(t, "VMState(nil)", err)
		_, err = remote.NetworkState(ctx, nil, nil)
		checkDomain(t, "NetworkState(nil)", err)
		checkDomain(t, "ValidateSpec(nil)", remote.ValidateSpec(ctx, nil, nil, nil))
		_, err = remote.ListSnapshots(ctx, nil, nil)
		checkDomain(t, "ListSnapshots(nil)", err)
	})
	checkCancel(t, "VMState", func(ctx context.Context) error { _, err := remote.VMState(ctx, env, vm); return err })
}

// sampleDocs are documents an output format must render.
var sampleDocs = []string{
	`{}`,
	`[]`,
	`{"Prefix": {"Base directory": "/home/u/.lago/default", "Networks": {"n0": {"gateway": "192.0.2.1", "management": true, "status": "down"}}, "UUID": "fe689d3c39d011e5b22b54ee755a00ca", "VMs": {"vm0": {"NICs": {"eth0": {"ip": "192.0.2.2", "network": "n0"}}, "distro": "cirros", "metadata": {}, "root password": "123456", "snapshots": "", "status": "down"}}}}`,
	`{"unicode": "café ✓ 🚀", "escapes": "tab\there \"quoted\" back\\slash", "numbers": [0, -1, 1.5, 1e21], "null": null, "nested": [[], {}, [{"a": [1]}]]}`,
}

// OutputConformance checks an OutputFormat: it renders sample documents to
// valid UTF-8, the same over gRPC as directly and the same twice, and
// refuses a document that is not JSON with a diagnostic.
func OutputConformance(t *testing.T, impl sdk.OutputFormat, opts ...Option) {
	s := setup(t, sdk.KindOutput, impl, opts)
	remote := s.client.Output(s.name)
	ctx := context.Background()
	for i, doc := range sampleDocs {
		t.Run(fmt.Sprintf("sample %d", i), func(t *testing.T) {
			out, err := remote.Format(ctx, []byte(doc))
			if err != nil {
				checkDomain(t, "Format", err)
				t.Fatalf("Format(%s) = %v", doc, err)
			}
			if !utf8.Valid(out) {
				t.Fatalf("Format(%s) is not valid UTF-8: %q", doc, out)
			}
			var local []byte
			lerr := direct(func() (e error) { local, e = impl.Format(ctx, []byte(doc)); return e })
			if lerr != nil || string(local) != string(out) {
				t.Fatalf("direct Format differs from the gRPC one: %q, %v vs %q", local, lerr, out)
			}
			again, err := remote.Format(ctx, []byte(doc))
			if err != nil || string(again) != string(out) {
				t.Fatalf("Format is not deterministic: %q then %q (%v)", out, again, err)
			}
		})
	}
	t.Run("invalid document is a diagnostic", func(t *testing.T) {
		_, err := remote.Format(ctx, []byte(`{"a":`))
		var d sdk.Diagnostics
		if !errors.As(err, &d) {
			t.Fatalf("Format(invalid JSON) = %v, want diagnostics", err)
		}
		checkDomain(t, "Format", err)
		local := direct(func() error { _, e := impl.Format(ctx, []byte(`{"a":`)); return e })
		sameOutcome(t, "Format(invalid)", local, err)
	})
	checkCancel(t, "Format", func(ctx context.Context) error { _, err := remote.Format(ctx, []byte(`{}`)); return err })
}

var flagTypes = map[string]bool{"string": true, "bool": true, "int": true, "string-slice": true}

// CommandConformance checks a Command: its declared verbs and flags are
// well formed (pass the component's Info with WithInfo), an unknown verb
// fails cleanly, and every WithCommandCases run gives exactly the expected
// exit code, stdout and stderr, kept apart.
func CommandConformance(t *testing.T, impl sdk.Command, opts ...Option) {
	s := setup(t, sdk.KindCommand, impl, opts)
	remote := s.client.Command(s.name)
	ctx := context.Background()
	t.Run("declared verbs", func(t *testing.T) {
		if len(s.info.Commands) == 0 {
			t.Fatal("the component declares no verb (pass its ComponentInfo with WithInfo)")
		}
		seen := map[string]bool{}
		for _, c := range s.info.Commands {
			if c.Name == "" || strings.ContainsAny(c.Name, " \t") || seen[c.Name] {
				t.Errorf("bad or duplicate verb name %q", c.Name)
			}
			seen[c.Name] = true
			if c.MaxArgs >= 0 && c.MaxArgs < c.MinArgs {
				t.Errorf("verb %s: max_args %d < min_args %d", c.Name, c.MaxArgs, c.MinArgs)
			}
			flags := map[string]bool{}
			for _, f := range c.Flags {
				if !flagTypes[f.Type] {
					t.Errorf("verb %s flag %s: unknown type %q", c.Name, f.Name, f.Type)
				}
				if f.Name == "" || flags[f.Name] {
					t.Errorf("verb %s: bad or duplicate flag %q", c.Name, f.Name)
				}
				flags[f.Name] = true
			}
		}
	})
	t.Run("unknown verb fails cleanly", func(t *testing.T) {
		code, err := remote.Execute(ctx, &commandv1.ExecuteRequest{Verb: "plugintest-no-such-verb"}, nil, nil)
		checkDomain(t, "Execute", err)
		if err == nil && code == 0 {
			t.Fatal("an unknown verb succeeded")
		}
	})
	for _, c := range s.cases {
		t.Run("case "+c.Name, func(t *testing.T) {
			var out, errb strings.Builder
			code, err := remote.Execute(ctx, c.Request, &out, &errb)
			if err != nil {
				checkDomain(t, "Execute", err)
				t.Fatalf("Execute: %v", err)
			}
			if code != c.WantExit {
				t.Errorf("exit code %d, want %d", code, c.WantExit)
			}
			if out.String() != c.WantStdout {
				t.Errorf("stdout %q, want %q", out.String(), c.WantStdout)
			}
			if errb.String() != c.WantStderr {
				t.Errorf("stderr %q, want %q", errb.String(), c.WantStderr)
			}
		})
	}
	if len(s.cases) > 0 {
		checkCancel(t, "Execute", func(ctx context.Context) error {
			_, err := remote.Execute(ctx, s.cases[0].Request, nil, nil)
			return err
		})
	}
}

var serviceStates = map[string]bool{"active": true, "inactive": true, "missing": true, "unknown": true}

// ServiceConformance checks a ServiceManager against a FakeHost guest
// where every command is missing (exit 127, unless WithHost gives another):
// answers are a known state or a diagnostic, never a panic or a transport
// error, and the manager acts through the Host.
func ServiceConformance(t *testing.T, impl sdk.ServiceManager, opts ...Option) {
	s := setup(t, sdk.KindService, impl, opts)
	remote := s.client.Service(s.name)
	ctx := context.Background()
	t.Run("guest without the init system", func(t *testing.T) {
		_, err := remote.Supported(ctx, "vm0")
		checkDomain(t, "Supported", err)
		st, err := remote.State(ctx, "vm0", "sshd")
		checkDomain(t, "State", err)
		if err == nil && !serviceStates[st] {
			t.Fatalf("State = %q, want one of active, inactive, missing, unknown", st)
		}
	})
	t.Run("host is used", func(t *testing.T) {
		if len(s.host.Calls()) == 0 {
			t.Fatal("the service manager never called the Host (it must act through Host.Exec)")
		}
	})
	t.Run("diagnostics round-trip", func(t *testing.T) {
		local := direct(func() error { return impl.Start(ctx, "vm0", "plugintest-no-such-service") })
		sameOutcome(t, "Start", local, remote.Start(ctx, "vm0", "plugintest-no-such-service"))
	})
	checkCancel(t, "State", func(ctx context.Context) error { _, err := remote.State(ctx, "vm0", "sshd"); return err })
}

// VMTypeConformance checks a VMType: NormalizeSpec answers JSON or a
// diagnostic, StatusFields of an unknown VM does not fail at transport
// level.
func VMTypeConformance(t *testing.T, impl sdk.VMType, opts ...Option) {
	s := setup(t, sdk.KindVMType, impl, opts)
	remote := s.client.VMType(s.name)
	ctx := context.Background()
	t.Run("NormalizeSpec", func(t *testing.T) {
		out, err := remote.NormalizeSpec(ctx, "vm0", []byte(`{"name": "vm0", "memory": 512}`))
		checkDomain(t, "NormalizeSpec", err)
		if err == nil && !json.Valid(out) {
			t.Fatalf("NormalizeSpec returned invalid JSON %q", out)
		}
	})
	t.Run("StatusFields of an unknown VM", func(t *testing.T) {
		_, err := remote.StatusFields(ctx, "plugintest-unknown-vm")
		checkDomain(t, "StatusFields", err)
	})
	t.Run("diagnostics round-trip", func(t *testing.T) {
		local := direct(func() error { _, e := impl.NormalizeSpec(ctx, "vm0", []byte(`not json`)); return e })
		_, rerr := remote.NormalizeSpec(ctx, "vm0", []byte(`not json`))
		sameOutcome(t, "NormalizeSpec", local, rerr)
	})
	checkCancel(t, "StatusFields", func(ctx context.Context) error { _, err := remote.StatusFields(ctx, "vm0"); return err })
}

// BuilderConformance checks a Builder: building a disk that does not exist
// fails with a diagnostic (not a panic or a transport error) and log lines
// are valid UTF-8.
func BuilderConformance(t *testing.T, impl sdk.Builder, opts ...Option) {
	s := setup(t, sdk.KindBuilder, impl, opts)
	remote := s.client.Builder(s.name)
	ctx := context.Background()
	req := &builderv1.BuildRequest{Vm: "vm0", DiskPath: "/nonexistent/lago-plugintest/disk.qcow2", DiskFormat: "qcow2"}
	t.Run("missing disk", func(t *testing.T) {
		var lines []string
		err := remote.Build(ctx, req, func(l string) { lines = append(lines, l) })
		checkDomain(t, "Build", err)
		if err == nil {
			t.Fatal("Build of a missing disk succeeded")
		}
		for _, l := range lines {
			if !utf8.ValidString(l) {
				t.Errorf("log line is not UTF-8: %q", l)
			}
		}
	})
	t.Run("diagnostics round-trip", func(t *testing.T) {
		local := direct(func() error { return impl.Build(ctx, req, func(string) {}) })
		sameOutcome(t, "Build", local, remote.Build(ctx, req, nil))
	})
	checkCancel(t, "Build", func(ctx context.Context) error { return remote.Build(ctx, req, nil) })
}
