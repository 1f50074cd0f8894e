package env

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"

	"github.com/lago-go/lago/core/prefix"
)

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// destroyInstances lists the provider instances that may own objects of
// e: required ones (named by its specs, or extra) and, for a half-made
// prefix, every other configured instance as a precaution.
func (m *Manager) destroyInstances(e *Environment, extra []string) (required, precaution []string) {
	seen := map[string]bool{}
	add := func(list *[]string, s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			*list = append(*list, s)
		}
	}
	for _, s := range m.providersOf(e) {
		add(&required, s)
	}
	for _, s := range extra {
		add(&required, s)
	}
	if !e.Complete || !e.Initialized {
		add(&precaution, m.opts.DefaultProvider)
		for _, s := range m.opts.ProviderInstances {
			add(&precaution, s)
		}
	}
	sort.Strings(required)
	sort.Strings(precaution)
	return required, precaution
}

// Destroy removes the prefix at path completely: every provider object
// it owns (running VMs included), its subnet leases, and the folder (a
// symlink is unlinked, its target left alone). It works on half-made
// prefixes, such as one left by an init killed at any moment. When a
// provider fails, the prefix is kept, so destroy can be run again.
func (m *Manager) Destroy(ctx context.Context, path string) error {
	e, err := m.destroyable(path)
	if err != nil {
		return err
	}
	if err := m.teardown(ctx, e); err != nil {
		return fmt.Errorf("destroy prefix %s: %w", e.Path, err)
	}
	if err := prefix.Remove(&prefix.Prefix{Path: path}); err != nil {
		return fmt.Errorf("destroy prefix %s: %w", e.Path, err)
	}
	return nil
}

// destroyable loads a prefix for Destroy, refusing folders that do not
// look like one.
func (m *Manager) destroyable(path string) (*Environment, error) {
	e, err := loadLenient(path)
	if err != nil {
		return nil, err
	}
	if !looksLikePrefix(e) {
		return nil, userErrorf("destroy %s: it holds neither a uuid nor an initialized marker; refusing to delete what may not be a prefix", e.Path)
	}
	e.givenPath = path
	return e, nil
}

// teardown removes what e owns outside its folder: provider objects (on
// the instances e's specs name, the extra ones, and for a half-made prefix
// every configured one), then leases.
func (m *Manager) teardown(ctx context.Context, e *Environment, extra ...string) error {
	if e.UUID != "" {
		m.releaseSSH(ctx, e, nil)
		// Without a uuid nothing can have been created or leased: init
		// writes the uuid before it leases or asks a provider anything.
		required, precaution := m.destroyInstances(e, extra)
		instances := append(append([]string(nil), required...), precaution...)
		err := parallel(ctx, len(instances), 0, func(ctx context.Context, i int) error {
			err := m.removeOwned(ctx, e, instances[i])
			if err != nil && i >= len(required) {
				// An instance the prefix may never have used: a leak
				// there shows up in Orphans once the prefix is gone.
				m.log().Warn("could not clean up a provider instance the half-made prefix may have used", "instance", instances[i], "err", err)
				return nil
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	if m.deps.Leaser != nil {
		// Leases name the uuid file by the path init used; release under
		// the path as given too, in case it went through a symlink.
		holders := []string{e.UUIDPath()}
		if e.givenPath != "" {
			if abs, err := filepath.Abs(filepath.Join(e.givenPath, fileUUID)); err == nil && abs != holders[0] {
				holders = append(holders, abs)
			}
		}
		for _, h := range holders {
			if _, err := m.deps.Leaser.ReleaseAll(ctx, h); err != nil {
				return fmt.Errorf("release subnet leases: %w", err)
			}
		}
	}
	return nil
}

func (m *Manager) removeOwned(ctx context.Context, e *Environment, instance string) error {
	p, err := m.provider(ctx, instance)
	if err != nil {
		return err
	}
	if err := p.RemoveOwned(ctx, e.Ref(), nil); err != nil {
		return fmt.Errorf("remove objects on provider %q: %w", instance, err)
	}
	return nil
}

// looksLikePrefix reports whether e's folder is safe to delete as a
// prefix: it holds a uuid or the initialized marker, or nothing at all. A
// wrong path must never delete unrelated files.
func looksLikePrefix(e *Environment) bool {
	if e.UUID != "" || e.Initialized {
		return true
	}
	if _, err := os.Lstat(e.UUIDPath()); err == nil {
		return true
	}
	entries, err := os.ReadDir(e.Path)
	if err != nil {
		return false
	}
	// A kill while the uuid was being written leaves only its temporary
	// file: that folder is ours, and the temporary file can go.
	for _, ent := range entries {
		if !strings.HasPrefix(ent.Name(), "."+fileUUID+".tmp") {
			return false
		}
	}
	for _, ent := range entries {
		_ = os.Remove(filepath.Join(e.Path, ent.Name()))
	}
	return true
}

// removePath unlinks a symlink, or removes a folder tree.
func removePath(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove link %s: %w", path, err)
		}
		return nil
	}
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// Orphan is a provider object whose owner prefix is gone.
type Orphan struct {
	// Instance is the provider instance holding it.
	Instance string
	Kind     string
	Name     string
	// OwnerPrefix and OwnerUUID are the owner the object is tagged with.
	OwnerPrefix string
	OwnerUUID   string
	State       string
}

// Orphans lists, on every configured provider instance, the objects whose
// owner prefix no longer exists (its uuid file is missing or holds another
// uuid), such as leaks of a crash or of a prefix removed by hand.
func (m *Manager) Orphans(ctx context.Context) ([]Orphan, error) {
	var instances []string
	seen := map[string]bool{}
	for _, s := range append([]string{m.opts.DefaultProvider}, m.opts.ProviderInstances...) {
		if s != "" && !seen[s] {
			seen[s] = true
			instances = append(instances, s)
		}
	}
	sort.Strings(instances)
	var out []Orphan
	for _, inst := range instances {
		p, err := m.provider(ctx, inst)
		if err != nil {
			return nil, err
		}
		owned, err := p.ListOwned(ctx)
		if err != nil {
			return nil, fmt.Errorf("list objects on provider %q: %w", inst, err)
		}
		for _, r := range owned {
			if ownerAlive(r.OwnerPrefix, r.OwnerUuid) {
				continue
			}
			out = append(out, Orphan{Instance: inst, Kind: r.Kind, Name: r.Name,
				OwnerPrefix: r.OwnerPrefix, OwnerUUID: r.OwnerUuid, State: r.State})
		}
	}
	return out, nil
}

// ownerAlive reports whether the prefix at path still holds uuid.
func ownerAlive(path, uuid string) bool {
	if path == "" || uuid == "" {
		return false
	}
	b, err := os.ReadFile(filepath.Join(path, fileUUID))
	if err != nil {
		return false
	}
	return strings.TrimSpace(string(b)) == uuid
}

// RemoveOrphans removes the given orphans (from Orphans), grouped by
// provider instance and owner.
func (m *Manager) RemoveOrphans(ctx context.Context, orphans []Orphan) error {
	type group struct{ inst, prefix, uuid string }
	groups := map[group][]Orphan{}
	var order []group
	for _, o := range orphans {
		g := group{o.Instance, o.OwnerPrefix, o.OwnerUUID}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], o)
	}
	var errs []error
	for _, g := range order {
		if ownerAlive(g.prefix, g.uuid) {
			// The owner came back (or the list was stale): never remove
			// a live prefix's objects.
			continue
		}
		p, err := m.provider(ctx, g.inst)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var res []*providerv1.OwnedResource
		for _, o := range groups[g] {
			res = append(res, &providerv1.OwnedResource{Kind: o.Kind, Name: o.Name, OwnerPrefix: o.OwnerPrefix, OwnerUuid: o.OwnerUUID, State: o.State})
		}
		if err := p.RemoveOwned(ctx, &providerv1.EnvRef{PrefixPath: g.prefix, Uuid: g.uuid}, res); err != nil {
			errs = append(errs, fmt.Errorf("remove orphans of %s on provider %q: %w", g.prefix, g.inst, err))
		}
	}
	return errors.Join(errs...)
}
