package env

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

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
// it owns (running VMs included), its subnet leases, and the folder. A
// path that is a symlink loses only the link: the environment behind it
// (VMs, leases, files) is left alone, as the original does. It works on
// half-made prefixes, such as one left by an init killed at any moment,
// and on one a killed destroy left. When a provider fails, the prefix is
// kept, so destroy can be run again.
func (m *Manager) Destroy(ctx context.Context, path string) error {
	if link, err := isSymlink(path); err != nil {
		return fmt.Errorf("destroy prefix %s: %w", path, err)
	} else if link {
		return m.unlinkOnly(path)
	}
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

// isSymlink reports whether path itself (not a folder above it) is a
// symbolic link; a missing path is not.
func isSymlink(path string) (bool, error) {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return st.Mode()&fs.ModeSymlink != 0, nil
}

// unlinkOnly removes the symlink path, which a destroy was given as a
// workdir or prefix, and nothing behind it: people keep workdirs on another
// disk behind a link, and destroying through the link must not destroy
// what it points at (the original unlinks and returns too). The warning
// says where the environment still is.
func (m *Manager) unlinkOnly(path string) error {
	target, _ := os.Readlink(path)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove link %s: %w", path, err)
	}
	m.log().Warn("removed only the symbolic link; what it points at is untouched (destroy it through its real path to remove it)", "link", path, "target", target)
	return nil
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

// Orphan is a provider object whose owner prefix is gone, or one lago
// keeps although it could not find its owner (Kept says why).
type Orphan struct {
	// Instance is the provider instance holding it.
	Instance string
	Kind     string
	Name     string
	// OwnerPrefix and OwnerUUID are the owner the object is tagged with.
	OwnerPrefix string
	OwnerUUID   string
	// OwnerHost and OwnerUID are the host name and uid of the lago that
	// created it ("" and nil for tags of older versions).
	OwnerHost string
	OwnerUID  *uint32
	State     string
	// Kept, when not empty, says why the object is not removed and what to
	// do instead: it belongs to another host or user, or its owner prefix
	// cannot be checked. RemoveOrphans skips such objects.
	Kept string
}

// String describes the object and its owner tag for cleanup's output.
func (o Orphan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s on %s (owner %s, uuid %s", o.Kind, o.Name, o.Instance, o.OwnerPrefix, o.OwnerUUID)
	if o.OwnerHost != "" {
		fmt.Fprintf(&b, ", host %s", o.OwnerHost)
	}
	if o.OwnerUID != nil {
		fmt.Fprintf(&b, ", uid %d", *o.OwnerUID)
	}
	if o.State != "" {
		fmt.Fprintf(&b, ", %s", o.State)
	}
	b.WriteString(")")
	return b.String()
}

// Orphans lists, on every configured provider instance, the objects whose
// owner prefix no longer exists (its uuid file is missing or holds another
// uuid), such as leaks of a crash or of a prefix removed by hand. Objects
// whose owner is not conclusively gone are listed too, with Kept set:
// those of another host or uid (their prefixes are not visible here), and
// those whose prefix cannot be read (another user's 0700 home). Live
// owners' objects are not listed.
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
	me := self()
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
			orphan, kept := judgeOwner(r.GetOwnerPrefix(), r.GetOwnerUuid(), r.GetOwnerHost(), r.OwnerUid, me)
			if !orphan && kept == "" {
				continue
			}
			out = append(out, Orphan{Instance: inst, Kind: r.Kind, Name: r.Name,
				OwnerPrefix: r.OwnerPrefix, OwnerUUID: r.OwnerUuid, OwnerHost: r.OwnerHost, OwnerUID: r.OwnerUid,
				State: r.State, Kept: kept})
		}
	}
	return out, nil
}

// identity is who runs lago: the host name and uid that new owner tags
// record (the provider plugins run on this host as this user).
type identity struct {
	host string
	uid  int
}

// self returns this process's identity; a variable so tests can pretend
// to be another host or user.
var self = func() identity {
	h, _ := os.Hostname()
	return identity{host: h, uid: os.Getuid()}
}

// readOwnerUUID reads an owner's uuid file; a variable so tests can
// produce errors (EACCES, EIO) that root, which reads everything, never
// gets.
var readOwnerUUID = os.ReadFile

// judgeOwner decides about an object tagged with owner prefix path and
// uuid, created by host and uid (empty and nil in tags of older versions):
// neither orphan nor kept means its owner is alive; orphan means the owner
// is conclusively gone and the object may be removed; kept says why it
// must stay although its owner was not found alive. Only "does not exist"
// (or another uuid in its place) proves an owner gone: an unreadable
// prefix may be another user's live environment, and a prefix of another
// host is not visible here at all.
func judgeOwner(path, uuid, host string, uid *uint32, me identity) (orphan bool, kept string) {
	if path == "" || uuid == "" {
		return false, "no owner tag names its prefix (a volume whose environment has no domain or network left): remove it by hand if it is a leftover"
	}
	gone, err := ownerGone(path, uuid)
	if err == nil && !gone {
		return false, ""
	}
	if host != "" && host != me.host {
		return false, fmt.Sprintf("made by lago on host %s, whose prefixes are not visible here: run lago cleanup --orphans there", host)
	}
	if uid != nil && int64(*uid) != int64(me.uid) {
		return false, fmt.Sprintf("made by %s, whose prefixes this user may not see: run lago cleanup --orphans as that user", userName(*uid))
	}
	if err != nil {
		return false, fmt.Sprintf("cannot check its owner prefix: %v; kept as alive", err)
	}
	if host == "" || uid == nil {
		if why := legacyOwnerElsewhere(path, me.uid); why != "" {
			return false, why
		}
	}
	return true, ""
}

// ownerGone reports whether the prefix at path conclusively no longer
// holds uuid: its uuid file does not exist (nor does a folder on its path),
// or it holds another uuid. Any other error says nothing about the prefix
// (EACCES for another user's 0700 home, EIO) and is returned: the caller
// must treat the owner as alive.
func ownerGone(path, uuid string) (bool, error) {
	b, err := readOwnerUUID(filepath.Join(path, fileUUID))
	switch {
	case err == nil:
		return strings.TrimSpace(string(b)) != uuid, nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return true, nil
	}
	return false, fmt.Errorf("read owner uuid: %w", err)
}

// legacyOwnerElsewhere decides about an object tagged by an older lago,
// whose tag records no host or uid: its prefix path may name a folder of
// another machine (a client of a shared remote libvirtd) or of another
// user, whose absence here proves nothing. It is trusted as this user's on
// this host only when the nearest existing folder on the path belongs to
// this user; otherwise the reason to keep it is returned.
func legacyOwnerElsewhere(path string, uid int) string {
	if !filepath.IsAbs(path) {
		return fmt.Sprintf("tagged by an older lago with the relative prefix path %q: remove it by hand if it is a leftover", path)
	}
	for dir := filepath.Clean(path); ; dir = filepath.Dir(dir) {
		st, err := os.Stat(dir)
		if err == nil {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok && int64(sys.Uid) == int64(uid) {
				return ""
			}
			return fmt.Sprintf("tagged by an older lago that did not record its host and user, and %s, the nearest folder of its prefix path here, is not this user's: run lago cleanup --orphans where and as whom it was made, or remove it by hand", dir)
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return fmt.Sprintf("tagged by an older lago that did not record its host and user, and %s cannot be checked: %v", dir, err)
		}
		if dir == filepath.Dir(dir) {
			return "tagged by an older lago that did not record its host and user: remove it by hand if it is a leftover"
		}
	}
}

// userName describes uid for a hint: "user NAME (uid N)" or "uid N".
func userName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil {
		return fmt.Sprintf("user %s (uid %s)", u.Username, id)
	}
	return "uid " + id
}

// RemoveOrphans removes the given orphans (from Orphans), grouped by
// provider instance and owner. Kept objects are skipped, and every owner is
// judged again first: it may have come back since the list was made.
func (m *Manager) RemoveOrphans(ctx context.Context, orphans []Orphan) error {
	type group struct{ inst, prefix, uuid string }
	groups := map[group][]Orphan{}
	var order []group
	for _, o := range orphans {
		if o.Kept != "" {
			continue
		}
		g := group{o.Instance, o.OwnerPrefix, o.OwnerUUID}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], o)
	}
	me := self()
	var errs []error
	for _, g := range order {
		var res []*providerv1.OwnedResource
		for _, o := range groups[g] {
			if orphan, _ := judgeOwner(o.OwnerPrefix, o.OwnerUUID, o.OwnerHost, o.OwnerUID, me); !orphan {
				// The owner came back (or the list was stale): never
				// remove a live prefix's objects.
				continue
			}
			res = append(res, &providerv1.OwnedResource{Kind: o.Kind, Name: o.Name, OwnerPrefix: o.OwnerPrefix, OwnerUuid: o.OwnerUUID,
				OwnerHost: o.OwnerHost, OwnerUid: o.OwnerUID, State: o.State})
		}
		if len(res) == 0 {
			continue
		}
		p, err := m.provider(ctx, g.inst)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := p.RemoveOwned(ctx, &providerv1.EnvRef{PrefixPath: g.prefix, Uuid: g.uuid}, res); err != nil {
			errs = append(errs, fmt.Errorf("remove orphans of %s on provider %q: %w", g.prefix, g.inst, err))
		}
	}
	return errors.Join(errs...)
}
