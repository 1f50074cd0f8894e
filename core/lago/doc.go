// Package lago is the Go API of lago: what the lago command does, for Go
// programs such as test suites. It is the one front door to the engine;
// the lago command is a thin client of it.
//
// A program makes environments from init files and drives their VMs:
//
//	env, err := lago.Init(ctx, lago.InitOptions{InitFile: "LagoInitFile", Workdir: dir})
//	if err != nil { ... }
//	defer env.Destroy(context.WithoutCancel(ctx))
//	if err := env.Start(ctx, lago.StartOptions{}); err != nil { ... }
//	vm, err := env.VM("vm0")
//	out, err := vm.Output(ctx, "uname", "-r")
//
// or opens one the lago command made (lago.Load(ctx, ".lago")).
//
// The package-level Init and Load use one shared Client per program: its
// plugin processes (the libvirt provider, ...) start once and serve every
// environment, and ssh connections to the VMs are kept open between
// commands, so a command costs one ssh session. Make a Client with New
// for another configuration or to control its lifetime.
//
// Every call that does work takes a context; cancelling it stops the work
// and, for verbs that create things, removes what they made. Errors wrap
// the sentinel and typed errors of this package (ErrNoPrefix,
// ErrVMNotRunning, *HostKeyChangedError, ...), tested with errors.Is and
// errors.As. Calls on different VMs may run concurrently. For go test,
// package lagotest brings an environment up for one test in one call.
package lago
