package main

import (
	"context"
	"fmt"

	"github.com/lago-go/lago/cmd/lago/internal/cli"
	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/lago"
)

// runDoctor prints Client.Doctor's checks, one OK or FAIL line each, and
// exits 2 when any failed.
func runDoctor(ctx context.Context, inv *cli.Invocation) error {
	c, err := client(inv)
	if err != nil {
		return err
	}
	var o lago.DoctorOptions
	if len(inv.Args) == 1 {
		o.Workdir = inv.Args[0]
	}
	failed := 0
	for _, r := range c.Doctor(ctx, o) {
		fmt.Fprintln(inv.Stdout, r.String())
		if !r.OK {
			failed++
		}
	}
	if failed > 0 {
		return &errs.ExitError{Code: errs.ExitLago, Message: fmt.Sprintf("lago doctor: %d check(s) failed; see docs/SHARED-HOST.md", failed)}
	}
	return nil
}
