//go:build e2e

// The examples run against real VMs: test/e2e/run.sh runs them with
// `-tags e2e` inside its network namespace, where TestMain (main_e2e_test.go)
// has written a lago.conf (LAGO_CONFIG), a LagoInitFile of one VM in the
// current folder and brought that environment up in ./.lago.

package lago_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/lago-go/lago/core/lago"
)

// An environment from an init file, started, used and destroyed.
func Example() {
	ctx := context.Background()
	env, err := lago.Init(ctx, lago.InitOptions{InitFile: "LagoInitFile", Workdir: "example-workdir"})
	if err != nil {
		log.Fatal(err)
	}
	defer env.Destroy(context.WithoutCancel(ctx))
	if err := env.Start(ctx, lago.StartOptions{}); err != nil {
		log.Fatal(err)
	}
	vm, err := env.VM("vm0")
	if err != nil {
		log.Fatal(err)
	}
	out, err := vm.Output(ctx, "uname", "-s")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(out))
	// Output: Linux
}

// Load opens the environment the lago command (or another program) made
// in the current folder.
func ExampleLoad() {
	ctx := context.Background()
	env, err := lago.Load(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	st, err := env.Status(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, vm := range st.VMs {
		fmt.Println(vm.Name, vm.State, vm.Address != "")
	}
	for _, n := range st.Networks {
		fmt.Println(n.Name, n.Type, n.State)
	}
	// Output:
	// vm0 running true
	// lago nat up
}

// A command line for the guest's shell: pipes and exit codes as with ssh.
func ExampleVM_RunShell() {
	ctx := context.Background()
	env, err := lago.Load(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	vm, err := env.VM("vm0")
	if err != nil {
		log.Fatal(err)
	}
	r, err := vm.RunShell(ctx, "echo hello | tr a-z A-Z; exit 3")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(r.Stdout))
	fmt.Println("exit code", r.ExitCode)
	// Output:
	// HELLO
	// exit code 3
}

// Typed errors: a command on a stopped VM.
func ExampleNotRunningError() {
	ctx := context.Background()
	env, err := lago.Load(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	if err := env.Stop(ctx, "vm0"); err != nil {
		log.Fatal(err)
	}
	vm, _ := env.VM("vm0")
	_, err = vm.Run(ctx, "true")
	var nr *lago.NotRunningError
	if errors.As(err, &nr) {
		fmt.Println(nr.VM, "is not running")
	}
	fmt.Println(errors.Is(err, lago.ErrVMNotRunning))
	if err := env.Start(ctx, lago.StartOptions{}); err != nil {
		log.Fatal(err)
	}
	// Output:
	// vm0 is not running
	// true
}
