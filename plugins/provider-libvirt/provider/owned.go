package provider

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	"github.com/lago-go/lago/sdk"
)

// Resource kinds in OwnedResource.
const (
	KindDomain  = "domain"
	KindNetwork = "network"
	KindVolume  = "volume"
)

// ListOwned returns every domain and network that carries our owner tag,
// and, in remote mode, every disk volume in the storage pool named after
// an environment (lago-<uuid>-...). Shared template volumes belong to no
// environment and are not listed.
func (p *Provider) ListOwned(ctx context.Context) ([]*providerv1.OwnedResource, error) {
	c, cfg, _, warns, err := p.connect(ctx)
	if err != nil {
		return nil, err
	}
	out, err := listOwned(c, cfg)
	if err != nil {
		return nil, withWarnings(warns, err)
	}
	return out, withWarnings(warns, nil)
}

func listOwned(c Conn, cfg settings) ([]*providerv1.OwnedResource, error) {
	var out []*providerv1.OwnedResource
	doms, err := c.ListDomains()
	if err != nil {
		return nil, errorDiag("cannot list libvirt domains", err)
	}
	// Volumes carry no tag: they get the owner of a domain or network of
	// their environment, or none.
	owners := map[string]ownerTag{}
	for _, d := range doms {
		o, ok := ownerOfDomain(d.XML)
		if !ok {
			continue
		}
		owners[o.UUID] = o
		out = append(out, ownedResource(KindDomain, d.Name, o, stateWord(d.State)))
	}
	nets, err := c.ListNetworks()
	if err != nil {
		return nil, errorDiag("cannot list libvirt networks", err)
	}
	for _, n := range nets {
		o, ok := ownerOfNetwork(n.XML)
		if !ok {
			continue
		}
		owners[o.UUID] = o
		st := "down"
		if n.Active {
			st = "up"
		}
		out = append(out, ownedResource(KindNetwork, n.Name, o, st))
	}
	if cfg.Remote {
		vols, err := c.ListVolumes(cfg.Pool)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, errorDiag("cannot list volumes of storage pool "+cfg.Pool, err)
		}
		for _, v := range vols {
			uuid, ok := volumeOwner(v)
			if !ok {
				continue
			}
			o, ok := owners[uuid]
			if !ok {
				o = ownerTag{UUID: uuid}
			}
			out = append(out, ownedResource(KindVolume, v, o, ""))
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// ownedResource describes an object tagged with o.
func ownedResource(kind, name string, o ownerTag, state string) *providerv1.OwnedResource {
	return &providerv1.OwnedResource{Kind: kind, Name: name, OwnerPrefix: o.Prefix, OwnerUuid: o.UUID,
		OwnerHost: o.Host, OwnerUid: o.uid(), State: state}
}

// volumeOwner parses lago-<uuid>-<rest>; template volumes are nobody's.
func volumeOwner(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, "lago-")
	if !ok || strings.HasPrefix(rest, "template-") {
		return "", false
	}
	uuid, _, ok := strings.Cut(rest, "-")
	if !ok || uuid == "" {
		return "", false
	}
	return uuid, true
}

// RemoveOwned removes every object whose owner uuid is env's (or only the
// listed resources of that owner): domains are destroyed and undefined with
// their snapshot metadata and nvram, networks destroyed and undefined,
// remote disk volumes deleted. It needs nothing from the prefix folder, and
// what is already gone is skipped.
func (p *Provider) RemoveOwned(ctx context.Context, env *providerv1.EnvRef, resources []*providerv1.OwnedResource) error {
	c, cfg, _, warns, err := p.connect(ctx)
	if err != nil {
		return err
	}
	if env.GetUuid() == "" {
		return withWarnings(warns, errorDiag("remove owned resources: the environment has no uuid", nil))
	}
	owned, err := listOwned(c, cfg)
	if err != nil {
		return withWarnings(warns, err)
	}
	want := map[string]bool{}
	for _, r := range resources {
		want[r.GetKind()+"/"+r.GetName()] = true
	}
	var (
		diags sdk.Diagnostics
		mu    sync.Mutex
	)
	fail := func(r *providerv1.OwnedResource, what string, err error) {
		mu.Lock()
		defer mu.Unlock()
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError,
			Summary: fmt.Sprintf("cannot %s %s %s", what, r.GetKind(), r.GetName()), Detail: err.Error()})
	}
	gone := func(err error) bool { return err == nil || errors.Is(err, ErrNotFound) }
	// Domains and networks go all in parallel (qemu takes about 2 s to exit
	// after a destroy, and a 3-VM environment must not pay that 3 times;
	// libvirt tears down a network under running domains), then volumes,
	// which a running domain still holds.
	for _, kinds := range [][]string{{KindDomain, KindNetwork}, {KindVolume}} {
		var wg sync.WaitGroup
		for _, r := range owned {
			if !slices.Contains(kinds, r.GetKind()) || r.GetOwnerUuid() != env.GetUuid() {
				continue
			}
			if len(want) > 0 && !want[r.GetKind()+"/"+r.GetName()] {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				removeOwned(c, cfg, r, fail, gone)
			}()
		}
		wg.Wait()
	}
	if len(diags) > 0 {
		return withWarnings(warns, diags)
	}
	return withWarnings(warns, nil)
}

// removeOwned removes one owned object; removing what is gone is not an
// error.
func removeOwned(c Conn, cfg settings, r *providerv1.OwnedResource, fail func(*providerv1.OwnedResource, string, error), gone func(error) bool) {
	switch r.GetKind() {
	case KindDomain:
		if st, err := c.DomainState(r.GetName()); err == nil && isActive(st) {
			if err := c.DestroyDomain(r.GetName()); !gone(err) {
				fail(r, "stop", err)
				return
			}
		}
		if err := c.UndefineDomain(r.GetName()); !gone(err) {
			fail(r, "undefine", err)
		}
	case KindNetwork:
		if r.GetState() == "up" {
			if err := c.DestroyNetwork(r.GetName()); !gone(err) && !isNotActive(c, r.GetName()) {
				fail(r, "stop", err)
				return
			}
		}
		if err := c.UndefineNetwork(r.GetName()); !gone(err) {
			fail(r, "undefine", err)
		}
	case KindVolume:
		if err := c.DeleteVolume(cfg.Pool, r.GetName()); !gone(err) {
			fail(r, "delete", err)
		}
	}
}
