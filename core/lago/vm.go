package lago

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/spec"
)

// VM is one VM of an environment, as its spec on disk says (and, from
// Status, its state). The methods that act on it connect over ssh with
// the environment's key; calls on different VMs may run concurrently.
type VM struct {
	Name string
	// State is the provider's word ("running", "down", "unknown", ...);
	// empty when the VM came from Env.VM or Env.VMs, which ask no
	// provider.
	State string
	// Address is the management address (what ssh and ansible use).
	Address string
	// MgmtNet names the management network.
	MgmtNet string
	NICs    []NIC
	Distro  string
	// RootPassword is the password of root in the guest.
	RootPassword string
	// SSHUser is the user commands run as.
	SSHUser         string
	VMType          string
	Provider        string
	ServiceProvider string
	Groups          []string
	Metadata        map[string]any
	Disks           []Disk
	Artifacts       []string
	// Memory in MiB.
	Memory int
	VCPU   int
	// Snapshots are the VM's snapshots, oldest first (from Status).
	Snapshots []string
	// TypeFields are the extra status fields of the VM's vm type (from
	// Status, of a running VM whose type has any).
	TypeFields map[string]string

	env *Env
}

// NIC is one network interface of a VM.
type NIC struct {
	Net, IP, MAC string
}

// Disk is one disk of a VM.
type Disk struct {
	Name, Dev, Type, Format, Path, Size string
	// Template and TemplateVersion name the template the disk came from.
	Template, TemplateVersion string
	// Metadata is the template's metadata (distro, ...).
	Metadata map[string]any
}

// Network is one network of an environment.
type Network struct {
	Name string
	// Type is "nat" or "bridge".
	Type string
	// State is "up" or "down" (from Status; empty otherwise).
	State string
	// Gateway is the gateway address of a nat network; Subnet its CIDR.
	Gateway, Subnet string
	Management      bool
	// Hosts maps each NIC's name on this network (the VM's name for its
	// management NIC, vm-ethN...) to its address.
	Hosts map[string]string
}

func newVM(e *Env, v *spec.VM, state string) *VM {
	vm := &VM{
		Name: v.Name, State: state, MgmtNet: v.MgmtNet, Distro: v.Distro,
		RootPassword: e.c.mgr.RootPassword(v), SSHUser: v.SSHUser, VMType: v.VMType,
		Provider: v.VMProvider, ServiceProvider: v.ServiceProvider,
		Groups: append([]string(nil), v.Groups...), Metadata: v.Metadata,
		Artifacts: append([]string(nil), v.Artifacts...), Memory: v.Memory, VCPU: v.VCPU,
		env: e,
	}
	if vm.SSHUser == "" {
		vm.SSHUser = e.c.cfg.SSHUser
	}
	if vm.Provider == "" {
		vm.Provider = e.c.cfg.DefaultVMProvider
	}
	for _, n := range v.NICs {
		mac := n.MAC
		if mac == "" && n.IP != "" {
			mac = spec.MACFromIP(n.IP)
		}
		vm.NICs = append(vm.NICs, NIC{Net: n.Net, IP: n.IP, MAC: mac})
	}
	if i := v.MgmtNIC(); i >= 0 {
		vm.Address = v.NICs[i].IP
	} else if len(v.NICs) > 0 && v.MgmtNet == "" {
		vm.Address = v.NICs[0].IP
	}
	for _, d := range v.Disks {
		vm.Disks = append(vm.Disks, Disk{
			Name: d.Name, Dev: d.Dev, Type: d.Type, Format: d.Format, Path: d.Path, Size: d.Size,
			Template: d.TemplateName, TemplateVersion: d.TemplateVersion, Metadata: d.Metadata,
		})
	}
	return vm
}

func newNetwork(n *spec.Net, state string) *Network {
	nw := &Network{Name: n.Name, Type: n.Type, State: state, Gateway: n.Gw, Management: n.Management, Hosts: map[string]string{}}
	if n.Gw != "" {
		l := n.PrefixLength
		if l == 0 {
			l = 24
		}
		if i := strings.LastIndexByte(n.Gw, '.'); i > 0 {
			nw.Subnet = fmt.Sprintf("%s.0/%d", n.Gw[:i], l)
		}
	}
	for k, v := range n.Mapping {
		nw.Hosts[k] = v
	}
	return nw
}

// Addresses maps each network the VM is on to its address there.
func (v *VM) Addresses() map[string]string {
	out := make(map[string]string, len(v.NICs))
	for _, n := range v.NICs {
		if _, ok := out[n.Net]; !ok && n.IP != "" {
			out[n.Net] = n.IP
		}
	}
	return out
}

// Result is what a command printed and how it exited.
type Result struct {
	ExitCode       int
	Stdout, Stderr []byte
}

// Err is nil for exit code 0, else an *ExitError with the command's
// stderr.
func (r *Result) Err() error {
	if r.ExitCode == 0 {
		return nil
	}
	return &ExitError{Code: r.ExitCode, Stderr: r.Stderr}
}

// ExitError is a command that ran and exited non-zero.
type ExitError struct {
	Code   int
	Stderr []byte
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("exit status %d", e.Code)
	if s := strings.TrimSpace(string(e.Stderr)); s != "" {
		if len(s) > 500 {
			s = "..." + s[len(s)-500:]
		}
		msg += ": " + s
	}
	return msg
}

// Run runs argv in the VM (each word reaches the command unchanged) and
// returns its output. err is set only when it could not run (the VM is
// off: ErrVMNotRunning; unreachable; a changed host key); a command that
// fails is a Result with a non-zero ExitCode.
func (v *VM) Run(ctx context.Context, argv ...string) (*Result, error) {
	if len(argv) == 0 {
		return nil, errs.Userf("run on vm %s: empty command", v.Name)
	}
	var out, stderr bytes.Buffer
	code, err := v.Exec(ctx, argv, nil, &out, &stderr)
	if err != nil {
		return nil, err
	}
	return &Result{ExitCode: code, Stdout: out.Bytes(), Stderr: stderr.Bytes()}, nil
}

// Output runs argv and returns its stdout; a non-zero exit is an
// *ExitError. It suits the common `out, err := vm.Output(ctx, "cmd")`.
func (v *VM) Output(ctx context.Context, argv ...string) ([]byte, error) {
	r, err := v.Run(ctx, argv...)
	if err != nil {
		return nil, err
	}
	return r.Stdout, r.Err()
}

// RunShell runs a command line the guest's shell parses (pipes,
// redirections, `exit N`), as `lago shell VM 'line'` does.
func (v *VM) RunShell(ctx context.Context, line string) (*Result, error) {
	if strings.TrimSpace(line) == "" {
		return nil, errs.Userf("run on vm %s: empty command line", v.Name)
	}
	var out, stderr bytes.Buffer
	code, err := v.env.ExecShell(ctx, v.Name, line, nil, &out, &stderr)
	if err != nil {
		return nil, err
	}
	return &Result{ExitCode: code, Stdout: out.Bytes(), Stderr: stderr.Bytes()}, nil
}

// Exec runs argv with the given streams (any may be nil) and returns its
// exit code; err as for Run.
func (v *VM) Exec(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	return v.env.Exec(ctx, v.Name, argv, stdin, stdout, stderr)
}

// Exec runs argv in the VM vm (a name or a unique suffix of one) with the
// given streams and returns its exit code; an empty argv opens an
// interactive shell. err is set only when it could not run.
func (e *Env) Exec(ctx context.Context, vm string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if err := e.c.check(); err != nil {
		return -1, err
	}
	return e.c.mgr.Shell(ctx, e.path, vm, argv, stdin, stdout, stderr)
}

// ExecShell runs a command line the guest's shell parses, with the given
// streams, as `lago shell VM CMD...` does; "" opens an interactive shell.
func (e *Env) ExecShell(ctx context.Context, vm, line string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if err := e.c.check(); err != nil {
		return -1, err
	}
	return e.c.mgr.ShellCommandLine(ctx, e.path, vm, line, stdin, stdout, stderr)
}

// RunScript runs the local script at path in the VM, fed on stdin to the
// interpreter its #! line names (bash or sh; sh without one), with args
// as its positional parameters, as deploy does.
func (v *VM) RunScript(ctx context.Context, path string, args ...string) (*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errs.User(fmt.Errorf("script for vm %s: %w", v.Name, err))
	}
	defer f.Close()
	br := bufio.NewReader(f)
	interp := "sh"
	if first, _ := br.Peek(64); bytes.HasPrefix(first, []byte("#!")) && bytes.Contains(bytes.SplitN(first, []byte("\n"), 2)[0], []byte("bash")) {
		interp = "bash"
	}
	argv := append([]string{interp, "-s", "--"}, args...)
	var out, stderr bytes.Buffer
	code, err := v.Exec(ctx, argv, br, &out, &stderr)
	if err != nil {
		return nil, err
	}
	return &Result{ExitCode: code, Stdout: out.Bytes(), Stderr: stderr.Bytes()}, nil
}

// Shell opens an interactive login shell with the given terminal streams
// (a pty when stdin is a terminal) and returns its exit code.
func (v *VM) Shell(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	return v.Exec(ctx, nil, stdin, stdout, stderr)
}

// WaitSSH waits until the VM accepts an ssh login, or ctx ends.
func (v *VM) WaitSSH(ctx context.Context) error {
	if err := v.env.c.check(); err != nil {
		return err
	}
	return v.env.c.mgr.WaitSSH(ctx, v.env.path, v.Name)
}

// Refresh asks the provider for the VM's state now and returns it.
func (v *VM) Refresh(ctx context.Context) (string, error) {
	st, err := v.env.Status(ctx)
	if err != nil {
		return "", err
	}
	for _, x := range st.VMs {
		if x.Name == v.Name {
			v.State, v.Snapshots = x.State, x.Snapshots
			return x.State, nil
		}
	}
	return "", fmt.Errorf("%w: %s", ErrNoSuchVM, v.Name)
}
