package env

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/spec"
	"github.com/lago-go/lago/sdk"
)

// VM and net states that mean "not running".
const (
	stateRunning = "running"
	stateDown    = "down"
	stateShutOff = "shut off"
	stateUp      = "up"
)

// isOff reports whether a VM state means the VM uses no resources.
func isOff(state string) bool { return state == stateDown || state == stateShutOff }

// StartOptions tune Start.
type StartOptions struct {
	// NoWait returns once the VMs are started, without waiting for ssh.
	NoWait bool
	// Timeout is the one overall deadline for every started VM to answer
	// ssh; 0 means Options.StartTimeout.
	Timeout time.Duration
	// Parallelism bounds concurrent StartVM calls; 0 means
	// Options.StartParallelism (whose 0 means all at once).
	Parallelism int
}

// netOn is a net on one provider instance.
type netOn struct{ net, instance string }

// usedNets lists the (net, provider) pairs the given VMs have NICs on, in
// a stable order.
func (m *Manager) usedNets(vms []*spec.VM) []netOn {
	seen := map[netOn]bool{}
	var out []netOn
	for _, vm := range vms {
		for _, nic := range vm.NICs {
			k := netOn{nic.Net, m.vmProvider(vm)}
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].instance != out[j].instance {
			return out[i].instance < out[j].instance
		}
		return out[i].net < out[j].net
	})
	return out
}

// startRun records what one Start call started, for rollback.
type startRun struct {
	m     *Manager
	e     *Environment
	provs map[string]providerHandle
	mu    sync.Mutex
	nets  []netOn
	vms   []boundVM
}

func (r *startRun) addNet(n netOn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nets = append(r.nets, n)
}

func (r *startRun) addVM(v boundVM) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.vms = append(r.vms, v)
}

// rollback stops the VMs, then the nets, this run started, on a context
// that survives the caller's cancellation.
func (r *startRun) rollback(ctx context.Context) error {
	cctx, cancel := detached(ctx)
	defer cancel()
	r.mu.Lock()
	vms := append([]boundVM(nil), r.vms...)
	nets := append([]netOn(nil), r.nets...)
	r.mu.Unlock()
	errVM := parallel(cctx, len(vms), 0, func(ctx context.Context, i int) error {
		if err := r.provs[vms[i].instance].StopVM(ctx, r.e.Ref(), vms[i].pv); err != nil {
			return fmt.Errorf("stop vm %s: %w", vms[i].spec.Name, err)
		}
		return nil
	})
	errNet := parallel(cctx, len(nets), 0, func(ctx context.Context, i int) error {
		n := r.e.Net(nets[i].net)
		if err := r.provs[nets[i].instance].StopNetwork(ctx, r.e.Ref(), toProviderNet(r.e, n)); err != nil {
			return fmt.Errorf("stop network %s: %w", n.Name, err)
		}
		return nil
	})
	return errors.Join(errVM, errNet)
}

// Start starts the named VMs of the prefix (all when vms is empty): first
// the networks they use (in parallel), then the VMs (in parallel, bounded),
// then waits until each answers ssh, all within one overall timeout.
// Running VMs and up networks are left alone. When any step fails or ctx
// ends, what this call started is stopped again.
func (m *Manager) Start(ctx context.Context, prefix string, vms []string, o StartOptions) error {
	e, sel, bound, err := m.loadBound(prefix, vms)
	if err != nil {
		return err
	}
	nets := m.usedNets(sel)
	var instances []string
	for _, b := range bound {
		instances = append(instances, b.instance)
	}
	provs, err := m.resolveAll(ctx, instances)
	if err != nil {
		return err
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = m.opts.StartTimeout
	}
	// One deadline for the whole start: networks, VMs and ssh.
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	run := &startRun{m: m, e: e, provs: provs}
	fail := func(err error) error {
		m.log().Warn("start failed; stopping what it started", "prefix", e.Path, "err", err)
		if rbErr := run.rollback(ctx); rbErr != nil {
			return errors.Join(err, fmt.Errorf("roll back start of prefix %s: %w", e.Path, rbErr))
		}
		return err
	}

	// Networks first: a VM's NICs need them.
	err = parallel(ctx, len(nets), 0, func(ctx context.Context, i int) error {
		n := nets[i]
		if e.Net(n.net) == nil {
			return fmt.Errorf("start network %s: not in the prefix's specs", n.net)
		}
		pn := toProviderNet(e, e.Net(n.net))
		p := provs[n.instance]
		if st, err := p.NetworkState(ctx, e.Ref(), pn); err == nil && st == stateUp {
			return nil
		}
		m.log().Info("starting network", "net", n.net, "provider", n.instance)
		if err := p.StartNetwork(ctx, e.Ref(), pn); err != nil {
			return fmt.Errorf("start network %s: %w", n.net, err)
		}
		run.addNet(n)
		return nil
	})
	if err != nil {
		return fail(err)
	}

	par := o.Parallelism
	if par == 0 {
		par = m.opts.StartParallelism
	}
	err = parallel(ctx, len(bound), par, func(ctx context.Context, i int) error {
		b := bound[i]
		p := provs[b.instance]
		if st, err := p.VMState(ctx, e.Ref(), b.pv); err == nil && st == stateRunning {
			return nil
		}
		if err := os.MkdirAll(e.dir().LogsDir(), 0o755); err != nil {
			return fmt.Errorf("start vm %s: create log folder: %w", b.spec.Name, err)
		}
		m.log().Info("starting vm", "vm", b.spec.Name, "provider", b.instance)
		if err := p.StartVM(ctx, e.Ref(), b.pv); err != nil {
			return fmt.Errorf("start vm %s: %w", b.spec.Name, err)
		}
		run.addVM(b)
		return nil
	})
	if err != nil {
		return fail(err)
	}
	if o.NoWait {
		return nil
	}
	if err := m.waitSSH(parent, ctx, e, bound, provs, timeout); err != nil {
		return fail(err)
	}
	if err := m.afterStart(ctx, e, bound); err != nil {
		return fail(err)
	}
	return nil
}

// waitSSH waits until every VM answers ssh or wctx (the start's overall
// deadline) ends. A VM that does not answer is named with the tail of its
// serial console; ctx is the caller's, to tell Ctrl-C from the deadline.
func (m *Manager) waitSSH(ctx, wctx context.Context, e *Environment, vms []boundVM, provs map[string]providerHandle, timeout time.Duration) error {
	if len(vms) == 0 {
		return nil
	}
	// A VM whose management NIC is on a bridge net has no address lago
	// knows: waiting would only run out the timeout.
	reachable := vms[:0:0]
	for _, b := range vms {
		var na *NoAddressError
		if _, err := m.sshTarget(e, b.spec); errors.As(err, &na) {
			m.log().Warn("not waiting for ssh: the VM's management NIC is on a bridge net, which gets its address from outside lago, and lago knows none",
				"vm", na.VM, "net", na.Net)
			continue
		}
		reachable = append(reachable, b)
	}
	vms = reachable
	if len(vms) == 0 {
		return nil
	}
	if m.deps.SSH == nil {
		return errors.New("wait for ssh: no ssh client configured")
	}
	return parallel(wctx, len(vms), 0, func(wctx context.Context, i int) error {
		vm := vms[i].spec
		t, err := m.sshTarget(e, vm)
		if err != nil {
			return err
		}
		begin := time.Now()
		// A guest that powered off or panicked never answers: notice it
		// instead of waiting out the whole timeout.
		bctx, stop := context.WithCancelCause(wctx)
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			m.watchBoot(bctx, stop, e, vms[i], provs[vms[i].instance])
		}()
		err = m.deps.SSH.WaitReady(bctx, t)
		stop(nil)
		<-watched
		if err == nil {
			m.log().Info("vm answers ssh", "vm", vm.Name, "after", time.Since(begin).Round(time.Millisecond))
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("wait for ssh on vm %s: %w", vm.Name, ctx.Err())
		}
		var bf *bootFailure
		if errors.As(context.Cause(bctx), &bf) {
			return fmt.Errorf("vm %s %s after %s, so it will not answer ssh%s", vm.Name, bf.what,
				time.Since(begin).Round(time.Second), m.serialTail(ctx, e, vms[i], provs[vms[i].instance]))
		}
		msg := fmt.Sprintf("vm %s did not answer ssh on %s within %s", vm.Name, t.Host, timeout)
		if wctx.Err() == nil {
			msg = fmt.Sprintf("vm %s: ssh on %s failed", vm.Name, t.Host)
		}
		return fmt.Errorf("%s: %w%s", msg, err, m.serialTail(ctx, e, vms[i], provs[vms[i].instance]))
	})
}

// bootFailure is why watchBoot gave up on a VM.
type bootFailure struct{ what string }

func (b *bootFailure) Error() string { return b.what }

// kernelPanic is what Linux prints on its console when it panics.
const kernelPanic = "Kernel panic - not syncing"

// watchBoot checks every BootWatchInterval, until ctx ends, whether vm has
// stopped (its provider says so) or its kernel panicked (what its serial
// log gained since the watch began says so: the log keeps earlier boots),
// and then cancels ctx with a bootFailure.
func (m *Manager) watchBoot(ctx context.Context, stop context.CancelCauseFunc, e *Environment, vm boundVM, p providerHandle) {
	if p.Provider == nil {
		return
	}
	before := m.serialLog(ctx, e, vm, p)
	t := time.NewTicker(m.opts.BootWatchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if st, err := p.VMState(ctx, e.Ref(), vm.pv); err == nil && (isOff(st) || st == "crashed") {
			stop(&bootFailure{what: "stopped (" + st + ")"})
			return
		}
		if log := m.serialLog(ctx, e, vm, p); bytes.Contains(appended(before, log), []byte(kernelPanic)) {
			stop(&bootFailure{what: "hit a kernel panic"})
			return
		}
	}
}

// appended returns what a log gained between two reads of its tail, before
// and now (tails of at most the same size of an append-only log). When now
// no longer holds the end of before, the log grew by more than a tail and
// all of now is new.
func appended(before, now []byte) []byte {
	if bytes.HasPrefix(now, before) {
		return now[len(before):]
	}
	const mark = 256
	end := before
	if len(end) > mark {
		end = end[len(end)-mark:]
	}
	if i := bytes.LastIndex(now, end); len(end) > 0 && i >= 0 {
		return now[i+len(end):]
	}
	return now
}

// serialLog returns the end of vm's serial console log: the prefix's file,
// or when that is missing or empty (a remote hypervisor cannot write it)
// what its provider reads, with where it came from.
func (m *Manager) serialLog(ctx context.Context, e *Environment, vm boundVM, p providerHandle) []byte {
	b, _, _, _ := m.readSerialLog(ctx, e, vm, p)
	return b
}

// readSerialLog is serialLog with where the log came from, why the
// prefix's file could not be read, and why the provider could not read it
// (nil when it has no SerialLog).
func (m *Manager) readSerialLog(ctx context.Context, e *Environment, vm boundVM, p providerHandle) (log []byte, from string, fileErr, provErr error) {
	path := e.SerialLogPath(vm.spec.Name)
	b, err := sdk.ReadFileTail(path, sdk.DefaultSerialLogBytes)
	if len(bytes.TrimSpace(b)) == 0 && p.Provider != nil {
		if sl, ok := p.Provider.(sdk.SerialLogReader); ok {
			cctx, cancel := context.WithTimeout(ctx, serialLogTimeout)
			rb, rerr := sl.SerialLog(cctx, e.Ref(), vm.pv, sdk.DefaultSerialLogBytes)
			cancel()
			if rerr == nil && len(bytes.TrimSpace(rb)) > 0 {
				return rb, "read through provider " + vm.instance, nil, nil
			}
			if !errors.Is(rerr, sdk.ErrNotImplemented) {
				provErr = rerr
			}
		}
	}
	return b, path, err, provErr
}

// serialTail formats the last lines of a VM's serial console for an error
// message, or says why there are none. The log is the prefix's file; when
// that is missing or empty (a remote hypervisor cannot write it) the VM's
// provider is asked for it.
func (m *Manager) serialTail(ctx context.Context, e *Environment, vm boundVM, p providerHandle) string {
	b, path, err, provErr := m.readSerialLog(ctx, e, vm, p)
	if provErr != nil {
		m.log().Warn("cannot read the serial log through the provider", "vm", vm.spec.Name, "provider", vm.instance, "err", provErr)
	}
	if err != nil {
		return fmt.Sprintf("\n(no serial console log: %v)", err)
	}
	b = bytes.TrimRight(b, "\r\n")
	lines := strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	if len(lines) > serialTailLines {
		lines = lines[len(lines)-serialTailLines:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return fmt.Sprintf("\n(serial console log %s is empty)", path)
	}
	return fmt.Sprintf("\nlast lines of the serial console (%s):\n    %s", path, strings.Join(lines, "\n    "))
}

// NoAddressError is why lago cannot ssh to a VM whose management NIC is on
// a bridge net: lago gives bridge NICs no address (the network outside
// does, by DHCP if at all; status shows ip N/A) and knows none. Start does
// not wait for such a VM; shell, deploy and the other ssh verbs fail with
// this explanation.
type NoAddressError struct {
	VM string
	// Net is the bridge net of the VM's management NIC.
	Net string
}

func (e *NoAddressError) Error() string {
	return fmt.Sprintf("vm %s has no address lago knows, so lago cannot ssh to it: its management NIC is on bridge net %s, "+
		"which gets its addresses from the network outside lago (lago assigns none); use lago console %s, or give the VM a nat net as management net",
		e.VM, e.Net, e.VM)
}

// sshTarget says how to reach a VM: its management NIC's IP, the prefix's
// key, then the VM's ssh password, else its root password (see
// rootPassword), else the configured ssh_password.
func (m *Manager) sshTarget(e *Environment, vm *spec.VM) (SSHTarget, error) {
	i := vm.MgmtNIC()
	if i < 0 && len(vm.NICs) > 0 && vm.MgmtNet == "" {
		i = 0
	}
	if i >= 0 && vm.NICs[i].IP == "" {
		if n := e.Net(vm.NICs[i].Net); n != nil && n.Type == spec.NetBridge {
			return SSHTarget{}, errs.User(&NoAddressError{VM: vm.Name, Net: n.Name})
		}
	}
	if i < 0 || vm.NICs[i].IP == "" {
		return SSHTarget{}, userErrorf("vm %s has no management NIC with an IP address", vm.Name)
	}
	t := SSHTarget{
		VM:       vm.Name,
		Host:     vm.NICs[i].IP,
		Port:     22,
		User:     vm.SSHUser,
		KeyFile:  e.KeyPath(),
		Password: vm.SSHPassword,
		// Each prefix has its own known_hosts: its guests reuse
		// addresses that other prefixes' guests had.
		KnownHostsFile: e.KnownHostsPath(),
		UUID:           e.UUID,
	}
	if t.User == "" {
		t.User = m.opts.SSHUser
	}
	if t.Password == "" {
		t.Password = rootPassword(vm, m.opts.SSHPassword)
	}
	return t, nil
}
