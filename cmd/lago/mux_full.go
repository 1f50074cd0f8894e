//go:build !lagolight

package main

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/lago-go/lago/core/env"
)

// hiddenMain runs the engine's internal entry points, which are not verbs:
// `__ssh-mux` is the ssh connection keeper that SSHClient starts (see
// core/env/mux.go). It reads its request on stdin and has no flags.
func hiddenMain(args []string, stdin io.Reader, stderr io.Writer) (int, bool) {
	if len(args) == 0 || args[0] != env.MuxVerb {
		return 0, false
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	if err := env.ServeMuxRequest(ctx, stdin); err != nil {
		fmt.Fprintf(stderr, "lago %s: %v\n", env.MuxVerb, err)
		return 1, true
	}
	return 0, true
}
