package main

import (
	"strings"
	"testing"

	commandv1 "github.com/lago-go/lago/proto/lago/command/v1"
	hostv1 "github.com/lago-go/lago/proto/lago/host/v1"
	"github.com/lago-go/lago/sdk/plugintest"
)

func req(flags map[string]string) *commandv1.ExecuteRequest {
	return &commandv1.ExecuteRequest{Verb: "hello", Flags: flags}
}

// TestConformance runs the sdk's command suite, through the real gRPC glue,
// with the cases a user of `lago hello` relies on.
func TestConformance(t *testing.T) {
	plugintest.CommandConformance(t, &hello{},
		plugintest.WithInfo(info),
		plugintest.WithHost(&plugintest.FakeHost{Env: &hostv1.GetEnvironmentResponse{PrefixPath: "/work/.lago"}}),
		plugintest.WithCommandCases(
			plugintest.CommandCase{
				Name:       "defaults",
				Request:    req(nil),
				WantStdout: "Hello, world!\n",
				WantStderr: "hello: environment /work/.lago, exiting with 0\n",
			},
			plugintest.CommandCase{
				Name:       "name, shout and exit code",
				Request:    req(map[string]string{"name": "lago", "shout": "true", "exit": "3"}),
				WantExit:   3,
				WantStdout: "HELLO, LAGO!\n",
				WantStderr: "hello: environment /work/.lago, exiting with 3\n",
			},
			plugintest.CommandCase{
				Name:       "bad int flag is a usage error",
				Request:    req(map[string]string{"exit": "three"}),
				WantExit:   2,
				WantStderr: "hello: --exit: strconv.Atoi: parsing \"three\": invalid syntax\n",
			},
		),
	)
}

// TestWithoutHost covers a lago that offers no Host.
func TestWithoutHost(t *testing.T) {
	client := plugintest.Connect(t, plugintest.Single("command", info, &hello{}))
	cmd := client.Command(info.Name)
	var out, errb strings.Builder
	code, err := cmd.Execute(t.Context(), req(map[string]string{"name": "x"}), &out, &errb)
	if err != nil || code != 0 || out.String() != "Hello, x!\n" || errb.String() != "hello: no lago environment, exiting with 0\n" {
		t.Fatalf("Execute = %d, %v, %q, %q", code, err, out.String(), errb.String())
	}
}
