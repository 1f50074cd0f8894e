package env

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/initfile"
	"github.com/lago-go/lago/core/spec"
	"github.com/lago-go/lago/sdk"
)

// VMTypes finds the vm-type components the plugins serve. A VM's
// `vm-type` names one; the engine calls its hooks at init (NormalizeSpec),
// after start (AfterStart) and in status (StatusFields).
type VMTypes interface {
	// Names lists the vm types the plugins serve.
	Names() ([]string, error)
	// Get starts (once) and returns the vm type called name.
	Get(ctx context.Context, name string) (sdk.VMType, error)
}

// BuiltinVMType is the vm type every VM has unless it names another: it
// has no hooks, unless a plugin serves a vm type by that name.
const BuiltinVMType = "default"

// ErrUnknownVMType is wrapped when a VM names a vm type no plugin serves.
var ErrUnknownVMType = errors.New("unknown vm type")

// vmTypeName is the vm type of vm: its spec's, else the configured
// default, else the built-in one.
func (m *Manager) vmTypeName(vm *spec.VM) string {
	if vm.VMType != "" {
		return vm.VMType
	}
	if m.opts.DefaultVMType != "" {
		return m.opts.DefaultVMType
	}
	return BuiltinVMType
}

// vmTypes resolves the vm types of vms to their components: a type with no
// component (the built-in default) maps to nil. A type no plugin serves is
// a user error naming each VM that uses it, where says where the VM comes
// from (the init file, the prefix); with cfg, the init file's, each VM's
// error names its line. No plugin starts for the built-in type
// unless a plugin serves it.
func (m *Manager) vmTypes(ctx context.Context, vms []*spec.VM, where string, cfg *initfile.Config) (map[string]sdk.VMType, error) {
	users := map[string][]string{} // type -> VMs
	var order []string
	for _, vm := range vms {
		n := m.vmTypeName(vm)
		if _, ok := users[n]; !ok {
			order = append(order, n)
		}
		users[n] = append(users[n], vm.Name)
	}
	if len(order) == 1 && order[0] == BuiltinVMType && m.deps.VMTypes == nil {
		return map[string]sdk.VMType{BuiltinVMType: nil}, nil
	}
	served := map[string]bool{}
	var names []string
	if m.deps.VMTypes != nil {
		var err error
		if names, err = m.deps.VMTypes.Names(); err != nil {
			return nil, fmt.Errorf("list vm types: %w", err)
		}
		for _, n := range names {
			served[n] = true
		}
	}
	out := map[string]sdk.VMType{}
	var unknown []string
	for _, n := range order {
		switch {
		case served[n]:
			t, err := m.deps.VMTypes.Get(ctx, n)
			if err != nil {
				return nil, fmt.Errorf("vm type %q (vm %s): %w", n, strings.Join(users[n], ", "), err)
			}
			out[n] = t
		case n == BuiltinVMType:
			out[n] = nil
		default:
			unknown = append(unknown, n)
		}
	}
	if len(unknown) == 0 {
		return out, nil
	}
	have := "no vm-type plugin is installed"
	if len(names) > 0 {
		sort.Strings(names)
		have = "plugins serve " + strings.Join(names, ", ")
	}
	if cfg == nil {
		var list []string
		for _, n := range unknown {
			list = append(list, fmt.Sprintf("vm %s: field vm-type: %q", strings.Join(users[n], ", "), n))
		}
		return nil, errs.User(fmt.Errorf("%s: %w: %s (%s; %q is built in)", where, ErrUnknownVMType, strings.Join(list, "; "), have, BuiltinVMType))
	}
	var bad []error
	for _, vm := range vms {
		n := m.vmTypeName(vm)
		if !slices.Contains(unknown, n) {
			continue
		}
		from := ""
		if vm.VMType == "" {
			from = ", the configured default_vm_type"
		}
		bad = append(bad, cfg.Errorf("domains."+vm.Name+".vm-type", fmt.Errorf("%w %q%s (%s; %q is built in)", ErrUnknownVMType, n, from, have, BuiltinVMType)))
	}
	return nil, errs.User(errors.Join(bad...))
}

// normalizeVMs runs each VM's vm type's NormalizeSpec on its spec (init,
// before the specs are stored) and takes the spec it answers. A type may
// complete the spec (artifacts, metadata, defaults) but not rename the VM
// or change its type: the name keys the prefix's files and the type
// decides which hooks run later.
func (m *Manager) normalizeVMs(ctx context.Context, types map[string]sdk.VMType, vms []spec.VM) error {
	for i := range vms {
		vm := &vms[i]
		name := m.vmTypeName(vm)
		t := types[name]
		if t == nil {
			continue
		}
		in, err := json.Marshal(vm)
		if err != nil {
			return fmt.Errorf("vm %s: encode spec for vm type %q: %w", vm.Name, name, err)
		}
		out, err := t.NormalizeSpec(ctx, vm.Name, in)
		if errors.Is(err, sdk.ErrNotImplemented) {
			continue
		}
		if err != nil {
			return fmt.Errorf("vm %s: vm type %q: normalize spec: %w", vm.Name, name, err)
		}
		var got spec.VM
		if err := json.Unmarshal(out, &got); err != nil {
			return fmt.Errorf("vm %s: vm type %q answered a spec that is not valid: %w", vm.Name, name, err)
		}
		if got.Name != vm.Name || got.VMType != vm.VMType {
			return fmt.Errorf("vm %s: vm type %q changed the VM's name or vm-type (to %q, %q): a vm type may only complete the spec",
				vm.Name, name, got.Name, got.VMType)
		}
		*vm = got
		m.log().Info("vm type normalized the spec", "vm", vm.Name, "vm-type", name)
	}
	return nil
}

// afterStart runs the AfterStart hook of each VM's vm type, in parallel,
// within ctx (the start's deadline): start returns only once every type
// says its VM is ready. VMs lago waited for no ssh on (a management NIC
// on a bridge net) are left out: a hook could not reach them either.
func (m *Manager) afterStart(ctx context.Context, e *Environment, bound []boundVM) error {
	var vms []boundVM
	var specs []*spec.VM
	for _, b := range bound {
		var na *NoAddressError
		if _, err := m.sshTarget(e, b.spec); errors.As(err, &na) {
			continue
		}
		vms = append(vms, b)
		specs = append(specs, b.spec)
	}
	if len(vms) == 0 {
		return nil
	}
	types, err := m.vmTypes(ctx, specs, "prefix "+e.Path, nil)
	if err != nil {
		return err
	}
	return parallel(ctx, len(vms), 0, func(ctx context.Context, i int) error {
		vm := vms[i].spec
		name := m.vmTypeName(vm)
		t := types[name]
		if t == nil {
			return nil
		}
		begin := time.Now()
		err := t.AfterStart(ctx, vm.Name)
		if errors.Is(err, sdk.ErrNotImplemented) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("vm %s: vm type %q after start: %w", vm.Name, name, err)
		}
		m.log().Info("vm type ready", "vm", vm.Name, "vm-type", name, "after", time.Since(begin).Round(time.Millisecond))
		return nil
	})
}

// statusFields asks each running VM's vm type for its extra status
// fields, in parallel. A failing type is recorded in errors and its VM
// shows no fields: status must work when a plugin does not.
func (m *Manager) statusFields(ctx context.Context, e *Environment, states map[string]string) (map[string]map[string]string, []error) {
	var running []*spec.VM
	for _, vm := range e.VMs {
		if states[vm.Name] == stateRunning {
			running = append(running, vm)
		}
	}
	if len(running) == 0 {
		return nil, nil
	}
	types, err := m.vmTypes(ctx, running, "prefix "+e.Path, nil)
	if err != nil {
		return nil, []error{err}
	}
	var mu sync.Mutex
	out := map[string]map[string]string{}
	var errList []error
	_ = parallel(ctx, len(running), 0, func(ctx context.Context, i int) error {
		vm := running[i]
		name := m.vmTypeName(vm)
		t := types[name]
		if t == nil {
			return nil
		}
		f, err := t.StatusFields(ctx, vm.Name)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case errors.Is(err, sdk.ErrNotImplemented):
		case err != nil:
			errList = append(errList, fmt.Errorf("vm %s: vm type %q status fields: %w", vm.Name, name, err))
		case len(f) > 0:
			out[vm.Name] = f
		}
		return nil
	})
	return out, errList
}

// specPtrs points at each of vms.
func specPtrs(vms []spec.VM) []*spec.VM {
	out := make([]*spec.VM, len(vms))
	for i := range vms {
		out[i] = &vms[i]
	}
	return out
}

// HasVMTypeHooks reports whether any VM of the prefix has a vm type a
// plugin serves, so whose hooks a verb will call. The Go API uses it to
// point the plugins' calls back into the core at this prefix only when a
// hook may make them (that pointing serializes such verbs).
func (m *Manager) HasVMTypeHooks(prefixPath string) (bool, error) {
	if m.deps.VMTypes == nil {
		return false, nil
	}
	e, err := m.Load(prefixPath)
	if err != nil {
		return false, err
	}
	names, err := m.deps.VMTypes.Names()
	if err != nil {
		return false, fmt.Errorf("list vm types: %w", err)
	}
	for _, vm := range e.VMs {
		for _, n := range names {
			if n == m.vmTypeName(vm) {
				return true, nil
			}
		}
	}
	return false, nil
}
