package lago

import (
	"context"
	"sort"

	"github.com/lago-go/lago/core/prefix"
)

// Status is the environment right now: the specs on disk with each VM's
// and network's state from its provider. It holds the same data as
// `lago -f json status`.
type Status struct {
	// Path is the prefix folder; UUID its uuid.
	Path, UUID string
	VMs        []*VM
	Networks   []*Network
	// Errors are the provider queries that failed; their objects show
	// State "unknown". Status itself fails only when the prefix cannot be
	// read.
	Errors []error
}

// Status asks every provider, in parallel, for the state of the
// environment's VMs, networks and snapshots. The values are those of `lago
// -f json status` (a powered-off VM is "down"), with what the specs add
// (management address, ssh user, artifacts, ...).
func (e *Env) Status(ctx context.Context) (*Status, error) {
	if err := e.c.check(); err != nil {
		return nil, err
	}
	var rep *prefix.Status
	err := e.withVMTypeHooks(func() error {
		var err error
		rep, err = e.c.mgr.StatusReport(ctx, e.path)
		return err
	})
	if err != nil {
		return nil, err
	}
	en, err := e.load()
	if err != nil {
		return nil, err
	}
	st := &Status{Path: rep.Path, UUID: rep.UUID, Errors: rep.Errors}
	for _, vs := range rep.VMs {
		v := en.VM(vs.Name)
		if v == nil {
			continue
		}
		vm := newVM(e, v, vs.State)
		vm.Distro, vm.RootPassword, vm.Snapshots = vs.Distro, vs.RootPassword, vs.Snapshots
		vm.TypeFields = vs.Fields
		st.VMs = append(st.VMs, vm)
	}
	for _, ns := range rep.Nets {
		n := en.Net(ns.Name)
		if n == nil {
			continue
		}
		nw := newNetwork(n, ns.State)
		nw.Type, nw.Gateway, nw.Subnet = ns.Type, ns.Gateway, ns.Subnet
		st.Networks = append(st.Networks, nw)
	}
	sort.Slice(st.VMs, func(i, j int) bool { return st.VMs[i].Name < st.VMs[j].Name })
	sort.Slice(st.Networks, func(i, j int) bool { return st.Networks[i].Name < st.Networks[j].Name })
	return st, nil
}

// VM returns the status of the VM called name, or nil.
func (s *Status) VM(name string) *VM {
	for _, v := range s.VMs {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// StatusDocument is the tree `lago status` prints in every output format
// (the original's layout), for programs that render it themselves.
func (e *Env) StatusDocument(ctx context.Context) (map[string]any, error) {
	if err := e.c.check(); err != nil {
		return nil, err
	}
	var doc map[string]any
	err := e.withVMTypeHooks(func() error {
		var err error
		doc, err = e.c.mgr.StatusDocument(ctx, e.path)
		return err
	})
	return doc, err
}
