// Command testplugin is a lago plugin used by the pluginhost tests. It
// records every invocation in $LAGO_TEST_COUNT_FILE so the tests can prove
// when a process was (not) started.
package main

import (
	"context"

	"fmt"
	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	"io"
	"os"
	"strings"
	"time"

	commandv1 "github.com/lago-go/lago/proto/lago/command/v1"
	"github.com/lago-go/lago/sdk"
)

func main() {
	if f := os.Getenv("LAGO_TEST_COUNT_FILE"); f != "" {
		mode := "serve"
		if len(os.Args) > 1 {
			mode = os.Args[1]
		}
		if fh, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintln(fh, mode)
			fh.Close()
		}
	}
	if os.Getenv("LAGO_TEST_FAIL_SERVE") == "1" && (len(os.Args) < 2 || os.Args[1] != "describe") {
		fmt.Fprintln(os.Stderr, "cannot read /etc/testplugin.conf: permission denied")
		os.Exit(1)
	}
	sdk.Serve(sdk.Plugin{
		Name:    "testplugin",
		Version: "0.1",
		Components: []sdk.Component{
			{Info: sdk.ComponentInfo{Name: "upper", Kind: sdk.KindOutput}, Impl: upper{}},
			{Info: sdk.ComponentInfo{Name: "greeter", Kind: sdk.KindCommand, Commands: []sdk.CommandSpec{{Name: "greet", MaxArgs: -1}}}, Impl: &greeter{}},
			{Info: sdk.ComponentInfo{Name: "echo", Kind: sdk.KindProvider}, Impl: &echoProvider{}},
		},
	})
}

// upper upper-cases the document; "crash" exits mid-call after a line on
// stderr, "sleep" blocks until cancelled.
type upper struct{}

func (upper) Format(ctx context.Context, doc []byte) ([]byte, error) {
	sdk.Logger().Info("formatting", "bytes", len(doc))
	switch string(doc) {
	case "crash":
		// An unrecovered panic outside the RPC handler kills the process;
		// the runtime writes the trace straight to file descriptor 2.
		go func() { panic("dying now: disk on fire") }()
		<-ctx.Done()
	case "exit":
		os.Exit(3)
	case "sleep":
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Minute):
		}
	}
	return []byte(strings.ToUpper(string(doc))), nil
}

type greeter struct {
	config map[string]string
	host   sdk.Host
}

func (g *greeter) Configure(ctx context.Context, config map[string]string, host sdk.Host) error {
	g.config, g.host = config, host
	return nil
}

func (g *greeter) Execute(ctx context.Context, req *commandv1.ExecuteRequest, stdout, stderr io.Writer) (int, error) {
	prefix := "-"
	if g.host != nil {
		env, err := g.host.Environment(ctx)
		if err != nil {
			return 1, err
		}
		prefix = env.GetPrefixPath()
	}
	fmt.Fprintf(stdout, "hello %s from %s", strings.Join(req.GetArgs(), " "), prefix)
	fmt.Fprint(stderr, "to stderr")
	return 4, nil
}

// echoProvider answers VMState with its "name" setting, so tests can tell
// which configuration a call reached. Named "warn", it also logs a warning
// and returns it, as the libvirt provider does for domain_type auto.
type echoProvider struct {
	sdk.UnimplementedProvider
	name string
}

func (e *echoProvider) Configure(_ context.Context, config map[string]string, _ sdk.Host) error {
	e.name = config["name"]
	return nil
}

func (e *echoProvider) VMState(context.Context, *providerv1.EnvRef, *providerv1.VM) (string, error) {
	if e.name == "warn" {
		const summary, detail = "domain_type auto: using qemu (TCG emulation, slow) instead of kvm", "no kvm here"
		sdk.Logger().Warn(summary, "detail", detail)
		return e.name, sdk.Diagnostics{{Severity: sdk.SeverityWarning, Attribute: "domain_type", Summary: summary, Detail: detail}}
	}
	return e.name, nil
}
