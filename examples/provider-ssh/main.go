// Command lago-plugin-ssh is lago's example out-of-tree provider, the
// original Lago's ssh provider: machines that already exist and answer ssh.
// It creates and removes nothing; a machine is "running" when it accepts
// the configured key. It imports only lago's sdk and proto, as a third
// party's plugin would; docs/plugins/provider.md explains each call.
package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	"github.com/lago-go/lago/sdk"
)

// version is set at link time by the Makefile.
var version = "dev"

const (
	metaHost     = "ssh-host"             // VM metadata naming one machine's address
	pollInterval = 500 * time.Millisecond // how often StartVM probes a machine it waits for
)

// info is the component's describe entry. Configure accepts the settings
// of its schema only, with the Defaults given here.
var info = sdk.ComponentInfo{
	Name:        "ssh",
	Kind:        sdk.KindProvider,
	Description: "machines that already exist and answer ssh (nothing is created or removed)",
	ConfigSchema: []sdk.ConfigField{
		{Name: "host", Type: "string", Description: "the machine's address (a VM's metadata " + metaHost + " wins; without either, a VM's first NIC address)"},
		{Name: "port", Type: "int", Default: "22", Description: "ssh port"},
		{Name: "user", Type: "string", Default: "root", Description: "user to log in as"},
		{Name: "key", Type: "string", Required: true, Description: "private key file to log in with"},
		{Name: "known_hosts", Type: "string", Description: "OpenSSH known_hosts file to check host keys against (default: any key, as the original)"},
		{Name: "timeout", Type: "duration", Default: "5s", Description: "how long one reachability probe may take"},
		{Name: "start_command", Type: "string", Description: "program and arguments (split at spaces, no shell) run on the lago host to start a machine that does not answer; LAGO_VM and LAGO_SSH_ADDRESS are set"},
		{Name: "stop_command", Type: "string", Description: "likewise, run to stop a machine (default: it is left alone)"},
	},
}

func main() {
	sdk.Serve(sdk.Plugin{Name: "ssh", Version: version, Components: []sdk.Component{{Info: info, Impl: &provider{}}}})
}

// settings are the parsed settings of one provider instance.
type settings struct {
	host, user  string
	port        int
	auth        ssh.AuthMethod
	hostKey     ssh.HostKeyCallback
	timeout     time.Duration
	start, stop []string
	core        sdk.Host // lago's Host service; nil when lago offers none
}

// provider implements sdk.Provider and sdk.Configurer. lago calls it from
// many goroutines at once, so the settings are swapped under mu. The
// embedded UnimplementedProvider answers "not implemented" for snapshots,
// console, export and ShutdownVM (lago then runs poweroff over ssh).
type provider struct {
	sdk.UnimplementedProvider
	mu  sync.Mutex
	cfg *settings
}

// Configure parses the instance's settings, reporting every bad one at
// once by its attribute.
func (p *provider) Configure(_ context.Context, config map[string]string, host sdk.Host) error {
	var diags sdk.Diagnostics
	bad := func(attr, format string, a ...any) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Attribute: attr, Summary: fmt.Sprintf(format, a...)})
	}
	get := map[string]string{}
	for _, f := range info.ConfigSchema {
		get[f.Name] = f.Default
	}
	for _, k := range slices.Sorted(maps.Keys(config)) {
		if _, ok := get[k]; !ok {
			bad(k, "unknown setting of the ssh provider (known: %s)", strings.Join(slices.Sorted(maps.Keys(get)), ", "))
		} else if v := strings.TrimSpace(config[k]); v != "" {
			get[k] = v
		}
	}
	s := &settings{host: get["host"], user: get["user"], start: strings.Fields(get["start_command"]), stop: strings.Fields(get["stop_command"]), core: host}
	var err error
	if s.port, err = strconv.Atoi(get["port"]); err != nil || s.port < 1 || s.port > 65535 {
		bad("port", "want a port number from 1 to 65535, got %q", get["port"])
	}
	if s.timeout, err = time.ParseDuration(get["timeout"]); err != nil || s.timeout <= 0 {
		bad("timeout", "want a duration such as 5s, got %q", get["timeout"])
	}
	if get["key"] == "" {
		bad("key", "required: the private key file to log in with")
	} else if pem, err := os.ReadFile(get["key"]); err != nil {
		bad("key", "%v", err)
	} else if signer, err := ssh.ParsePrivateKey(pem); err != nil {
		bad("key", "%s: %v", get["key"], err)
	} else {
		s.auth = ssh.PublicKeys(signer)
	}
	s.hostKey = ssh.InsecureIgnoreHostKey() //nolint:gosec // the original's behaviour and the documented default
	if kh := get["known_hosts"]; kh == "" {
		// A warning alone is a success: lago prints it once per command.
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityWarning, Attribute: "known_hosts",
			Summary: "the ssh provider does not check host keys: set known_hosts to check them"})
	} else if s.hostKey, err = knownhosts.New(kh); err != nil {
		bad("known_hosts", "%v", err)
	}
	if !diags.HasErrors() {
		p.mu.Lock()
		p.cfg = s
		p.mu.Unlock()
	}
	if len(diags) == 0 {
		return nil
	}
	return diags // warnings alone are a success
}

// target returns the settings and the ssh address of vm.
func (p *provider) target(vm *providerv1.VM) (*settings, string, error) {
	p.mu.Lock()
	s := p.cfg
	p.mu.Unlock()
	if s == nil {
		return nil, "", errors.New("the ssh provider is not configured")
	}
	h := cmp.Or(vm.GetMetadata()[metaHost], s.host)
	for _, n := range vm.GetNics() {
		h = cmp.Or(h, n.GetIp())
	}
	if h == "" {
		return nil, "", fmt.Errorf("vm %s has no address: set host in the provider's section, metadata %s, or a NIC ip", vm.GetName(), metaHost)
	}
	return s, net.JoinHostPort(h, strconv.Itoa(s.port)), nil
}

// errUnreachable marks a probe that found nothing answering.
var errUnreachable = errors.New("nothing answers")

// probe logs into addr and out again: nil when the machine accepts the
// key, errUnreachable (wrapped) when nothing answers, another error when
// something answers but the login fails. lago's cancellation wins, so that
// it reaches lago as such.
func (s *settings) probe(ctx context.Context, addr string) error {
	pctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(pctx, "tcp", addr)
	if err != nil {
		return cmp.Or(ctx.Err(), fmt.Errorf("%w on %s: %v", errUnreachable, addr, err))
	}
	defer context.AfterFunc(pctx, func() { conn.Close() })() // a handshake that hangs ends with pctx
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{User: s.user, Auth: []ssh.AuthMethod{s.auth}, HostKeyCallback: s.hostKey})
	if err != nil {
		conn.Close()
		return cmp.Or(ctx.Err(), fmt.Errorf("%s answers, but ssh as %s fails: %w", addr, s.user, err))
	}
	return ssh.NewClient(c, chans, reqs).Close()
}

// run runs a start or stop command on this host, with argv as given.
func run(ctx context.Context, what string, argv []string, vm, addr string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "LAGO_VM="+vm, "LAGO_SSH_ADDRESS="+addr)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("vm %s: %s %s: %w: %s", vm, what, strings.Join(argv, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// VMState is "running" when the machine accepts the key and "down" when
// nothing answers. A machine that answers but refuses the login is an
// error, which lago shows, rather than a state that would hide it.
func (p *provider) VMState(ctx context.Context, _ *providerv1.EnvRef, vm *providerv1.VM) (string, error) {
	s, addr, err := p.target(vm)
	if err != nil {
		return "", err
	}
	switch err := s.probe(ctx, addr); {
	case err == nil:
		return "running", nil
	case errors.Is(err, errUnreachable):
		return "down", nil
	default:
		return "", fmt.Errorf("state of vm %s: %w", vm.GetName(), err)
	}
}

// StartVM is called for a machine that is not running. Without a
// start_command it can only look again; with one it runs it and waits
// until the machine answers or ctx (lago's start timeout) ends.
func (p *provider) StartVM(ctx context.Context, _ *providerv1.EnvRef, vm *providerv1.VM) error {
	s, addr, err := p.target(vm)
	if err != nil {
		return err
	}
	if len(s.start) == 0 {
		if err := s.probe(ctx, addr); err != nil {
			return fmt.Errorf("vm %s: %w (without start_command the ssh provider starts nothing: start the machine yourself)", vm.GetName(), err)
		}
		return nil
	}
	if err := run(ctx, "start_command", s.start, vm.GetName(), addr); err != nil {
		return err
	}
	if s.core != nil {
		_ = s.core.Progress(ctx, fmt.Sprintf("waiting for %s to answer ssh on %s", vm.GetName(), addr), -1)
	}
	for {
		err := s.probe(ctx, addr)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("vm %s did not answer ssh after start_command (%v): %w", vm.GetName(), err, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// StopVM runs stop_command, or leaves the machine alone: it was there
// before lago and stays after it.
func (p *provider) StopVM(ctx context.Context, _ *providerv1.EnvRef, vm *providerv1.VM) error {
	s, addr, err := p.target(vm)
	if err != nil {
		return err
	}
	if len(s.stop) == 0 {
		sdk.Logger().Info("leaving the machine alone: no stop_command", "vm", vm.GetName(), "address", addr)
		return nil
	}
	return run(ctx, "stop_command", s.stop, vm.GetName(), addr)
}

// ValidateSpec refuses what the provider cannot honour at init, before
// anything is made: a VM with disks (the machine has its own) or without
// an address.
func (p *provider) ValidateSpec(_ context.Context, _ *providerv1.EnvRef, _ []*providerv1.Network, vms []*providerv1.VM) error {
	var diags sdk.Diagnostics
	for _, vm := range vms {
		if len(vm.GetDisks()) > 0 {
			diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Attribute: "domains." + vm.GetName() + ".disks",
				Summary: "the ssh provider uses machines that exist already, with their own disks: remove the disks"})
		}
		if _, _, err := p.target(vm); err != nil {
			diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Attribute: "domains." + vm.GetName(), Summary: err.Error()})
		}
	}
	return diags.Err()
}

// No network runs and nothing is created here: the rest has nothing to do.

func (*provider) UsedSubnets(context.Context) ([]*providerv1.UsedSubnet, error) { return nil, nil }
func (*provider) PrepareDisks(context.Context, *providerv1.EnvRef, *providerv1.VM) ([]*providerv1.PreparedDisk, error) {
	return nil, nil
}
func (*provider) StartNetwork(context.Context, *providerv1.EnvRef, *providerv1.Network) error {
	return nil
}
func (*provider) StopNetwork(context.Context, *providerv1.EnvRef, *providerv1.Network) error {
	return nil
}
func (*provider) NetworkState(context.Context, *providerv1.EnvRef, *providerv1.Network) (string, error) {
	return "down", nil
}
func (*provider) ListOwned(context.Context) ([]*providerv1.OwnedResource, error) { return nil, nil }
func (*provider) RemoveOwned(context.Context, *providerv1.EnvRef, []*providerv1.OwnedResource) error {
	return nil
}
