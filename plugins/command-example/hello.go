package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	commandv1 "github.com/lago-go/lago/proto/lago/command/v1"
	"github.com/lago-go/lago/sdk"
)

// hello implements the verb. It keeps the Host lago hands it in Configure
// to ask which environment the command runs in.
type hello struct {
	host sdk.Host
}

// Configure is called once before the first Execute. host is nil when lago
// offers no callback service (for example in some tests).
func (h *hello) Configure(_ context.Context, _ map[string]string, host sdk.Host) error {
	h.host = host
	return nil
}

// Execute runs one verb. Flags arrive as strings (lago already checked
// their types against the declaration); a value that still fails to parse
// is a usage error: message on stderr, exit code 2, like any CLI. The error
// result is for failures to run at all, which lago reports as diagnostics.
func (h *hello) Execute(ctx context.Context, req *commandv1.ExecuteRequest, stdout, stderr io.Writer) (int, error) {
	if req.GetVerb() != helloSpec.Name {
		fmt.Fprintf(stderr, "command-example: unknown verb %q\n", req.GetVerb())
		return 2, nil
	}
	flags := req.GetFlags()
	name := flagOr(flags, "name", "world")
	shout, err := strconv.ParseBool(flagOr(flags, "shout", "false"))
	if err != nil {
		fmt.Fprintf(stderr, "hello: --shout: %v\n", err)
		return 2, nil
	}
	exit, err := strconv.Atoi(flagOr(flags, "exit", "0"))
	if err != nil {
		fmt.Fprintf(stderr, "hello: --exit: %v\n", err)
		return 2, nil
	}

	greeting := "Hello, " + name + "!"
	if shout {
		greeting = strings.ToUpper(greeting)
	}
	fmt.Fprintln(stdout, greeting)

	// The Host is optional: outside a prefix, or without a Host, say so on
	// stderr rather than failing.
	where := "no lago environment"
	if h.host != nil {
		if env, err := h.host.Environment(ctx); err == nil && env.GetPrefixPath() != "" {
			where = "environment " + env.GetPrefixPath()
		}
	}
	fmt.Fprintf(stderr, "hello: %s, exiting with %d\n", where, exit)
	return exit, nil
}

// flagOr returns flags[name], or def when the flag was not given.
func flagOr(flags map[string]string, name, def string) string {
	if v, ok := flags[name]; ok {
		return v
	}
	return def
}
