// Package envtest holds in-memory fakes of the components core/env
// orchestrates, so the orchestration can be tested without libvirt.
package envtest

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	"github.com/lago-go/lago/sdk"
)

// Call is one recorded provider call.
type Call struct {
	Method string
	// Object is the VM or network name the call was about ("" otherwise).
	Object string
	UUID   string
	At     time.Time
	// Done is when the call returned.
	Done time.Time
}

func (c Call) String() string {
	if c.Object == "" {
		return c.Method
	}
	return c.Method + " " + c.Object
}

// Provider is an in-memory sdk.Provider. It keeps VM and network states
// keyed by owner uuid and name, records every call, and can be told to fail
// or to block on chosen calls. Its zero value is not usable: use
// NewProvider.
type Provider struct {
	mu        sync.Mutex
	calls     []Call
	vms       map[string]string // uuid/name -> state
	nets      map[string]string // uuid/name -> state
	snapshots map[string][]string
	owned     map[string]*providerv1.OwnedResource // kind/uuid/name
	used      []*providerv1.UsedSubnet

	// FailOn makes a call fail: the key is "Method" (every call of that
	// method) or "Method name" (only for that VM or net).
	FailOn map[string]error
	// Delay makes a call take this long (honouring ctx), with the same keys
	// as FailOn.
	Delay map[string]time.Duration
	// NotImplemented lists methods that return sdk.ErrNotImplemented.
	NotImplemented map[string]bool
	// RemoteDisks makes PrepareDisks answer like a remote provider, with
	// volume names rather than local files.
	RemoteDisks bool
	// SerialLogs is what SerialLog answers, by VM name.
	SerialLogs map[string][]byte
	// disks stand in for VMs' disks in ReadFiles, by VM name: a host
	// folder whose tree is the guest's, or a raw stream sent as is.
	diskTrees   map[string]string
	diskStreams map[string][]byte

	inflight, maxInflight map[string]int
}

// NewProvider returns an empty fake provider.
func NewProvider() *Provider {
	return &Provider{
		vms:            map[string]string{},
		nets:           map[string]string{},
		snapshots:      map[string][]string{},
		owned:          map[string]*providerv1.OwnedResource{},
		FailOn:         map[string]error{},
		Delay:          map[string]time.Duration{},
		NotImplemented: map[string]bool{},
		SerialLogs:     map[string][]byte{},
		diskTrees:      map[string]string{},
		diskStreams:    map[string][]byte{},
		inflight:       map[string]int{},
		maxInflight:    map[string]int{},
	}
}

var (
	_ sdk.Provider        = (*Provider)(nil)
	_ sdk.SerialLogReader = (*Provider)(nil)
	_ sdk.FileReader      = (*Provider)(nil)
)

// SetUsedSubnets sets what UsedSubnets reports.
func (p *Provider) SetUsedSubnets(cidrs ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.used = nil
	for _, c := range cidrs {
		p.used = append(p.used, &providerv1.UsedSubnet{Cidr: c, Reason: "fake " + c})
	}
}

// Fail sets FailOn[key] under the lock, for use while calls are running.
func (p *Provider) Fail(key string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.FailOn[key] = err
}

// SetVMState forces a VM's state, as if it changed outside lago.
func (p *Provider) SetVMState(uuid, vm, state string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.vms[uuid+"/"+vm] = state
}

// SetNetState forces a network's state.
func (p *Provider) SetNetState(uuid, net, state string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nets[uuid+"/"+net] = state
}

// VMStateOf returns the state the fake holds for a VM ("down" when unknown).
func (p *Provider) VMStateOf(uuid, vm string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.vms[uuid+"/"+vm]; ok {
		return s
	}
	return "down"
}

// NetStateOf returns the state the fake holds for a net ("down" when unknown).
func (p *Provider) NetStateOf(uuid, net string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.nets[uuid+"/"+net]; ok {
		return s
	}
	return "down"
}

// AddOwned records a resource as if the provider had created it.
func (p *Provider) AddOwned(r *providerv1.OwnedResource) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.owned[r.Kind+"/"+r.OwnerUuid+"/"+r.Name] = r
}

// Owned returns the resources the fake still holds for uuid ("" for all),
// sorted by kind and name.
func (p *Provider) Owned(uuid string) []*providerv1.OwnedResource {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*providerv1.OwnedResource
	for _, r := range p.owned {
		if uuid == "" || r.OwnerUuid == uuid {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Calls returns a copy of the recorded calls in order of arrival.
func (p *Provider) Calls() []Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Call(nil), p.calls...)
}

// CallNames returns the recorded calls as "Method object" strings.
func (p *Provider) CallNames() []string {
	var out []string
	for _, c := range p.Calls() {
		out = append(out, c.String())
	}
	return out
}

// Count returns how many times method was called (for object, when given).
func (p *Provider) Count(method, object string) int {
	n := 0
	for _, c := range p.Calls() {
		if c.Method == method && (object == "" || c.Object == object) {
			n++
		}
	}
	return n
}

// MaxConcurrent returns the largest number of simultaneous calls of method.
func (p *Provider) MaxConcurrent(method string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxInflight[method]
}

// enter records a call, applies Delay and FailOn, and returns the function
// that marks the call done.
func (p *Provider) enter(ctx context.Context, method, object, uuid string) (func(), error) {
	p.mu.Lock()
	idx := len(p.calls)
	p.calls = append(p.calls, Call{Method: method, Object: object, UUID: uuid, At: time.Now()})
	p.inflight[method]++
	if p.inflight[method] > p.maxInflight[method] {
		p.maxInflight[method] = p.inflight[method]
	}
	delay := p.Delay[method]
	if d, ok := p.Delay[method+" "+object]; ok {
		delay = d
	}
	err := p.FailOn[method]
	if e, ok := p.FailOn[method+" "+object]; ok {
		err = e
	}
	if p.NotImplemented[method] {
		err = sdk.ErrNotImplemented
	}
	p.mu.Unlock()
	done := func() {
		p.mu.Lock()
		p.inflight[method]--
		p.calls[idx].Done = time.Now()
		p.mu.Unlock()
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			done()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		done()
		return nil, err
	}
	return done, nil
}

func envUUID(env *providerv1.EnvRef) string {
	if env == nil {
		return ""
	}
	return env.Uuid
}

// ValidateSpec implements sdk.Provider.
func (p *Provider) ValidateSpec(ctx context.Context, env *providerv1.EnvRef, nets []*providerv1.Network, vms []*providerv1.VM) error {
	done, err := p.enter(ctx, "ValidateSpec", "", envUUID(env))
	if err != nil {
		return err
	}
	defer done()
	return nil
}

// UsedSubnets implements sdk.Provider.
func (p *Provider) UsedSubnets(ctx context.Context) ([]*providerv1.UsedSubnet, error) {
	done, err := p.enter(ctx, "UsedSubnets", "", "")
	if err != nil {
		return nil, err
	}
	defer done()
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*providerv1.UsedSubnet(nil), p.used...), nil
}

// PrepareDisks implements sdk.Provider; it records a volume per disk as
// an owned resource and, like a local provider, creates an empty file at
// each absolute disk path. Set RemoteDisks to answer with volume names
// instead, like a remote provider.
func (p *Provider) PrepareDisks(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) ([]*providerv1.PreparedDisk, error) {
	done, err := p.enter(ctx, "PrepareDisks", vm.GetName(), envUUID(env))
	if err != nil {
		return nil, err
	}
	defer done()
	var out []*providerv1.PreparedDisk
	for _, d := range vm.GetDisks() {
		name := vm.GetName() + "_" + d.GetName()
		p.AddOwned(&providerv1.OwnedResource{Kind: "volume", Name: name,
			OwnerPrefix: env.GetPrefixPath(), OwnerUuid: envUUID(env)})
		path := d.GetPath()
		if p.RemoteDisks {
			path = "pool/" + name
		} else if filepath.IsAbs(path) {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(path, nil, 0o644); err != nil {
				return nil, err
			}
		}
		out = append(out, &providerv1.PreparedDisk{Name: d.GetName(), Path: path, Format: d.GetFormat()})
	}
	return out, nil
}

// StartNetwork implements sdk.Provider.
func (p *Provider) StartNetwork(ctx context.Context, env *providerv1.EnvRef, net *providerv1.Network) error {
	done, err := p.enter(ctx, "StartNetwork", net.GetName(), envUUID(env))
	if err != nil {
		return err
	}
	defer done()
	p.AddOwned(&providerv1.OwnedResource{Kind: "network", Name: net.GetName(), OwnerPrefix: env.GetPrefixPath(), OwnerUuid: envUUID(env)})
	p.SetNetState(envUUID(env), net.GetName(), "up")
	return nil
}

// StopNetwork implements sdk.Provider.
func (p *Provider) StopNetwork(ctx context.Context, env *providerv1.EnvRef, net *providerv1.Network) error {
	done, err := p.enter(ctx, "StopNetwork", net.GetName(), envUUID(env))
	if err != nil {
		return err
	}
	defer done()
	p.SetNetState(envUUID(env), net.GetName(), "down")
	return nil
}

// NetworkState implements sdk.Provider.
func (p *Provider) NetworkState(ctx context.Context, env *providerv1.EnvRef, net *providerv1.Network) (string, error) {
	done, err := p.enter(ctx, "NetworkState", net.GetName(), envUUID(env))
	if err != nil {
		return "", err
	}
	defer done()
	return p.NetStateOf(envUUID(env), net.GetName()), nil
}

// StartVM implements sdk.Provider.
func (p *Provider) StartVM(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) error {
	done, err := p.enter(ctx, "StartVM", vm.GetName(), envUUID(env))
	if err != nil {
		return err
	}
	defer done()
	for _, n := range vm.GetNics() {
		if p.NetStateOf(envUUID(env), n.GetNet()) != "up" {
			return fmt.Errorf("fake: network %s of vm %s is not up", n.GetNet(), vm.GetName())
		}
	}
	p.AddOwned(&providerv1.OwnedResource{Kind: "domain", Name: vm.GetName(), OwnerPrefix: env.GetPrefixPath(), OwnerUuid: envUUID(env)})
	p.SetVMState(envUUID(env), vm.GetName(), "running")
	return nil
}

// StopVM implements sdk.Provider.
func (p *Provider) StopVM(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) error {
	done, err := p.enter(ctx, "StopVM", vm.GetName(), envUUID(env))
	if err != nil {
		return err
	}
	defer done()
	p.SetVMState(envUUID(env), vm.GetName(), "down")
	return nil
}

// ShutdownVM implements sdk.Provider.
func (p *Provider) ShutdownVM(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, reboot bool, timeout time.Duration) error {
	done, err := p.enter(ctx, "ShutdownVM", vm.GetName(), envUUID(env))
	if err != nil {
		return err
	}
	defer done()
	if !reboot {
		p.SetVMState(envUUID(env), vm.GetName(), "shut off")
	}
	return nil
}

// VMState implements sdk.Provider.
func (p *Provider) VMState(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) (string, error) {
	done, err := p.enter(ctx, "VMState", vm.GetName(), envUUID(env))
	if err != nil {
		return "", err
	}
	defer done()
	return p.VMStateOf(envUUID(env), vm.GetName()), nil
}

// Snapshot implements sdk.Provider.
func (p *Provider) Snapshot(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, name string) error {
	done, err := p.enter(ctx, "Snapshot", vm.GetName(), envUUID(env))
	if err != nil {
		return err
	}
	defer done()
	p.mu.Lock()
	defer p.mu.Unlock()
	k := envUUID(env) + "/" + vm.GetName()
	p.snapshots[k] = append(p.snapshots[k], name)
	return nil
}

// Revert implements sdk.Provider.
func (p *Provider) Revert(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, name string) error {
	done, err := p.enter(ctx, "Revert", vm.GetName(), envUUID(env))
	if err != nil {
		return err
	}
	defer done()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.snapshots[envUUID(env)+"/"+vm.GetName()] {
		if s == name {
			return nil
		}
	}
	return fmt.Errorf("fake: vm %s has no snapshot %q", vm.GetName(), name)
}

// ListSnapshots implements sdk.Provider.
func (p *Provider) ListSnapshots(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM) ([]*providerv1.Snapshot, error) {
	done, err := p.enter(ctx, "ListSnapshots", vm.GetName(), envUUID(env))
	if err != nil {
		return nil, err
	}
	defer done()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*providerv1.Snapshot
	for _, s := range p.snapshots[envUUID(env)+"/"+vm.GetName()] {
		out = append(out, &providerv1.Snapshot{Name: s})
	}
	return out, nil
}

// SetSerialLog sets what SerialLog answers for vm, safely while calls run.
func (p *Provider) SetSerialLog(vm string, log []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.SerialLogs[vm] = log
}

// SerialLog implements sdk.SerialLogReader from SerialLogs.
func (p *Provider) SerialLog(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, maxBytes int64) ([]byte, error) {
	done, err := p.enter(ctx, "SerialLog", vm.GetName(), envUUID(env))
	if err != nil {
		return nil, err
	}
	defer done()
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.SerialLogs[vm.GetName()]
	if maxBytes > 0 && int64(len(b)) > maxBytes {
		b = b[int64(len(b))-maxBytes:]
	}
	return b, nil
}

// Console implements sdk.Provider.
func (p *Provider) Console(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, in io.Reader, out io.Writer) error {
	done, err := p.enter(ctx, "Console", vm.GetName(), envUUID(env))
	if err != nil {
		return err
	}
	defer done()
	_, err = io.Copy(out, strings.NewReader("console of "+vm.GetName()+"\n"))
	return err
}

// Export implements sdk.Provider.
func (p *Provider) Export(ctx context.Context, req *providerv1.ExportRequest) ([]string, error) {
	done, err := p.enter(ctx, "Export", req.GetVm().GetName(), envUUID(req.GetEnv()))
	if err != nil {
		return nil, err
	}
	defer done()
	return nil, nil
}

// ListOwned implements sdk.Provider.
func (p *Provider) ListOwned(ctx context.Context) ([]*providerv1.OwnedResource, error) {
	done, err := p.enter(ctx, "ListOwned", "", "")
	if err != nil {
		return nil, err
	}
	defer done()
	return p.Owned(""), nil
}

// RemoveOwned implements sdk.Provider.
func (p *Provider) RemoveOwned(ctx context.Context, env *providerv1.EnvRef, resources []*providerv1.OwnedResource) error {
	done, err := p.enter(ctx, "RemoveOwned", "", envUUID(env))
	if err != nil {
		return err
	}
	defer done()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(resources) > 0 {
		for _, r := range resources {
			delete(p.owned, r.Kind+"/"+r.OwnerUuid+"/"+r.Name)
		}
		return nil
	}
	for k, r := range p.owned {
		if r.OwnerUuid == envUUID(env) {
			delete(p.owned, k)
		}
	}
	for k := range p.vms {
		if strings.HasPrefix(k, envUUID(env)+"/") {
			delete(p.vms, k)
		}
	}
	for k := range p.nets {
		if strings.HasPrefix(k, envUUID(env)+"/") {
			delete(p.nets, k)
		}
	}
	return nil
}

// SetDiskTree makes the host folder dir stand in for vm's disks in
// ReadFiles: guest path /a/b is dir/a/b.
func (p *Provider) SetDiskTree(vm, dir string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.diskTrees[vm] = dir
}

// SetDiskStream makes ReadFiles send stream as is for vm (a hostile
// disk), reporting missing as missing.
func (p *Provider) SetDiskStream(vm string, stream []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.diskStreams[vm] = stream
}

// ReadFiles implements sdk.FileReader like a provider reading disks: a VM
// whose state is "running" is refused; the paths come from the folder of
// SetDiskTree (a final symbolic link followed inside it), or the stream
// of SetDiskStream is sent instead.
func (p *Provider) ReadFiles(ctx context.Context, env *providerv1.EnvRef, vm *providerv1.VM, paths []string, maxBytes int64, w io.Writer) ([]string, error) {
	done, err := p.enter(ctx, "ReadFiles", vm.GetName(), envUUID(env))
	if err != nil {
		return nil, err
	}
	defer done()
	if p.VMStateOf(envUUID(env), vm.GetName()) == "running" {
		return nil, fmt.Errorf("fake: vm %s is running: its disks are in use", vm.GetName())
	}
	p.mu.Lock()
	root, stream, raw := p.diskTrees[vm.GetName()], p.diskStreams[vm.GetName()], p.diskStreams[vm.GetName()] != nil
	p.mu.Unlock()
	if raw {
		_, err := w.Write(stream)
		return nil, err
	}
	if root == "" {
		return nil, fmt.Errorf("fake: vm %s has no disks", vm.GetName())
	}
	tw := tar.NewWriter(w)
	var missing []string
	for _, gp := range paths {
		src := filepath.Join(root, gp)
		if l, err := os.Readlink(src); err == nil {
			if !path.IsAbs(l) {
				l = path.Join(path.Dir(gp), l)
			}
			src = filepath.Join(root, l)
		}
		if _, err := os.Stat(src); err != nil {
			missing = append(missing, gp)
			continue
		}
		member := path.Clean(gp)[1:]
		err := filepath.WalkDir(src, func(f string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, f)
			name := path.Join(member, filepath.ToSlash(rel))
			fi, err := d.Info()
			if err != nil {
				return err
			}
			link := ""
			if fi.Mode()&fs.ModeSymlink != 0 {
				if link, err = os.Readlink(f); err != nil {
					return err
				}
			}
			hdr, err := tar.FileInfoHeader(fi, link)
			if err != nil {
				return err
			}
			hdr.Name = name
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if fi.Mode().IsRegular() {
				b, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				_, err = tw.Write(b)
				return err
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return missing, tw.Close()
}
