package env

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"

	"github.com/lago-go/lago/core/prefix"

	"github.com/lago-go/lago/sdk"
)

// LiveState is what the providers say about a prefix right now.
type LiveState struct {
	Env *Environment
	// VMs maps a VM name to its state word ("running", "down", ...).
	VMs map[string]string
	// Nets maps a net name to "up" or "down" ("up" when it is up on any
	// provider it lives on).
	Nets map[string]string
	// Snapshots maps a VM name to its snapshot names, oldest first.
	Snapshots map[string][]string
	// Fields maps a running VM's name to its vm type's status fields
	// (Status only).
	Fields map[string]map[string]string
	// Errors holds the queries that failed; their objects show "unknown".
	Errors []error
}

// Up reports whether any VM runs.
func (s *LiveState) Up() bool {
	for _, st := range s.VMs {
		if !isOff(st) && st != "unknown" {
			return true
		}
	}
	return false
}

// Status queries, all in parallel, the state of every VM and net of the
// prefix and every VM's snapshots. A failing query makes its object
// "unknown" rather than failing the whole status, which must work even
// when one provider is down.
func (m *Manager) Status(ctx context.Context, prefix string) (*LiveState, error) {
	e, err := m.Load(prefix)
	if err != nil {
		return nil, err
	}
	s, err := m.liveState(ctx, e, true)
	if err != nil {
		return nil, err
	}
	var ferrs []error
	s.Fields, ferrs = m.statusFields(ctx, e, s.VMs)
	s.Errors = append(s.Errors, ferrs...)
	return s, nil
}

func (m *Manager) liveState(ctx context.Context, e *Environment, snapshots bool) (*LiveState, error) {
	vms, err := m.bindVMs(e, e.VMs)
	if err != nil {
		return nil, err
	}
	nets := m.bindNets(e, nil)
	s := &LiveState{Env: e, VMs: map[string]string{}, Nets: map[string]string{}, Snapshots: map[string][]string{}}
	for _, n := range e.Nets {
		s.Nets[n.Name] = stateDown
	}
	var mu sync.Mutex
	addErr := func(err error) {
		mu.Lock()
		s.Errors = append(s.Errors, err)
		mu.Unlock()
	}
	var provMu sync.Mutex
	provs := map[string]providerHandle{}
	provErr := map[string]error{}
	get := func(ctx context.Context, inst string) (providerHandle, error) {
		provMu.Lock()
		defer provMu.Unlock()
		if p, ok := provs[inst]; ok {
			return p, nil
		}
		if err, ok := provErr[inst]; ok {
			return providerHandle{}, err
		}
		p, err := m.provider(ctx, inst)
		if err != nil {
			provErr[inst] = err
			return providerHandle{}, err
		}
		provs[inst] = providerHandle{p}
		return provs[inst], nil
	}
	type job func(ctx context.Context) error
	var jobs []job
	for _, b := range vms {
		jobs = append(jobs, func(ctx context.Context) error {
			st := "unknown"
			defer func() {
				mu.Lock()
				s.VMs[b.spec.Name] = st
				mu.Unlock()
			}()
			p, err := get(ctx, b.instance)
			if err != nil {
				return err
			}
			got, err := p.VMState(ctx, e.Ref(), b.pv)
			if err != nil {
				return fmt.Errorf("state of vm %s: %w", b.spec.Name, err)
			}
			st = got
			return nil
		})
		if snapshots {
			jobs = append(jobs, func(ctx context.Context) error {
				p, err := get(ctx, b.instance)
				if err != nil {
					return err
				}
				snaps, err := p.ListSnapshots(ctx, e.Ref(), b.pv)
				if errors.Is(err, sdk.ErrNotImplemented) {
					return nil
				}
				if err != nil {
					return fmt.Errorf("snapshots of vm %s: %w", b.spec.Name, err)
				}
				mu.Lock()
				s.Snapshots[b.spec.Name] = snapshotNames(snaps)
				mu.Unlock()
				return nil
			})
		}
	}
	for _, b := range nets {
		jobs = append(jobs, func(ctx context.Context) error {
			p, err := get(ctx, b.instance)
			if err != nil {
				return err
			}
			st, err := p.NetworkState(ctx, e.Ref(), b.pn)
			if err != nil {
				mu.Lock()
				if s.Nets[b.spec.Name] != stateUp {
					s.Nets[b.spec.Name] = "unknown"
				}
				mu.Unlock()
				return fmt.Errorf("state of network %s: %w", b.spec.Name, err)
			}
			if st == stateUp {
				mu.Lock()
				s.Nets[b.spec.Name] = stateUp
				mu.Unlock()
			}
			return nil
		})
	}
	_ = parallel(ctx, len(jobs), 0, func(ctx context.Context, i int) error {
		if err := jobs[i](ctx); err != nil {
			addErr(err)
		}
		return nil
	})
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("status of prefix %s: %w", e.Path, err)
	}
	return s, nil
}

func snapshotNames(snaps []*providerv1.Snapshot) []string {
	sorted := append([]*providerv1.Snapshot(nil), snaps...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].GetCreatedUnix() < sorted[j].GetCreatedUnix() })
	out := make([]string, 0, len(sorted))
	for _, s := range sorted {
		out = append(out, s.GetName())
	}
	return out
}

// StatusReport returns what `lago status` shows of the prefix, as typed
// values (prefix.Status, whose Document is what it prints), with the
// providers' live states and the queries that failed.
func (m *Manager) StatusReport(ctx context.Context, prefixPath string) (*prefix.Status, error) {
	s, err := m.Status(ctx, prefixPath)
	if err != nil {
		return nil, err
	}
	return s.Report(m.opts.DefaultRootPassword)
}

// StatusDocument returns the document `lago status` prints (see
// prefix.Status.Document) with the providers' live states.
func (m *Manager) StatusDocument(ctx context.Context, prefixPath string) (map[string]any, error) {
	st, err := m.StatusReport(ctx, prefixPath)
	if err != nil {
		return nil, err
	}
	return st.Document(), nil
}

// Report builds the typed status of s (prefix.BuildStatus, the one
// builder); defaultRootPassword is shown for VMs whose spec and template
// name no root password.
func (s *LiveState) Report(defaultRootPassword string) (*prefix.Status, error) {
	live := prefix.StateMaps{VMs: s.VMs, Nets: s.Nets, SnapshotLists: s.Snapshots, Fields: s.Fields}
	st, err := prefix.BuildStatus(s.Env.dir(), s.Env.specs(), live, prefix.StatusOptions{DefaultRootPassword: defaultRootPassword})
	if err != nil {
		return nil, err
	}
	st.Errors = append([]error(nil), s.Errors...)
	return st, nil
}

// Document renders s as the status tree.
func (s *LiveState) Document(defaultRootPassword string) (map[string]any, error) {
	st, err := s.Report(defaultRootPassword)
	if err != nil {
		return nil, err
	}
	return st.Document(), nil
}
