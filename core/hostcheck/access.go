package hostcheck

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Identity is a user as the kernel checks it: uid and every gid.
type Identity struct {
	Name string
	UID  uint32
	GIDs []uint32
}

// LookupIdentity returns the user called name with its primary and
// supplementary groups (from the passwd and group databases, readable by
// anyone).
func LookupIdentity(name string) (Identity, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return Identity{}, err
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return Identity{}, fmt.Errorf("user %s: uid %q: %w", name, u.Uid, err)
	}
	id := Identity{Name: name, UID: uint32(uid)}
	gids, err := u.GroupIds()
	if err != nil {
		gids = []string{u.Gid}
	}
	for _, g := range append([]string{u.Gid}, gids...) {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil && !slices.Contains(id.GIDs, uint32(n)) {
			id.GIDs = append(id.GIDs, uint32(n))
		}
	}
	return id, nil
}

// QemuUsers are the users distributions run qemu as under qemu:///system
// (qemu.conf's user, which only root may read): Debian and Ubuntu's
// libvirt-qemu, then Fedora, RHEL, SUSE and Arch's qemu.
var QemuUsers = []string{"libvirt-qemu", "qemu"}

// qemuConf is libvirt's qemu driver config; only root may read it.
var qemuConf = "/etc/libvirt/qemu.conf"

var qemuConfUser = regexp.MustCompile(`(?m)^\s*user\s*=\s*"([^"]+)"`)

// QemuIdentity returns qemu's user: qemu.conf's user = "..." where this
// user may read it (root), else the first of QemuUsers that exists on
// this host. A qemu running as root needs no check (ok false).
func QemuIdentity() (Identity, bool) {
	if b, err := os.ReadFile(qemuConf); err == nil {
		if m := qemuConfUser.FindSubmatch(b); m != nil {
			n := strings.TrimPrefix(string(m[1]), "+")
			if n == "root" || n == "0" {
				return Identity{}, false
			}
			if id, err := LookupIdentity(n); err == nil {
				return id, true
			}
		}
	}
	for _, n := range QemuUsers {
		if id, err := LookupIdentity(n); err == nil {
			return id, true
		}
	}
	return Identity{}, false
}

// fileInfo is what the access check needs of a folder.
type fileInfo struct {
	mode     fs.FileMode
	uid, gid uint32
	acl      []aclEntry // nil: no extended ACL
}

// statFunc reads a folder's owner, mode and access ACL; a variable so
// tests can describe folders that only root could make.
var statFunc = statPath

func statPath(path string) (fileInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return fileInfo{}, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fileInfo{}, fmt.Errorf("%s: no owner information", path)
	}
	fi := fileInfo{mode: st.Mode(), uid: sys.Uid, gid: sys.Gid}
	buf := make([]byte, 1024)
	n, err := unix.Getxattr(path, "system.posix_acl_access", buf)
	if err == nil {
		fi.acl, err = parseACL(buf[:n])
		if err != nil {
			return fileInfo{}, fmt.Errorf("%s: %w", path, err)
		}
	}
	return fi, nil
}

// POSIX ACL tags (linux/posix_acl_xattr.h).
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
)

type aclEntry struct {
	tag  uint16
	perm uint16
	id   uint32
}

// parseACL decodes the system.posix_acl_access xattr: a 4-byte version
// (2), then 8-byte entries of tag, perm and id, little-endian.
func parseACL(b []byte) ([]aclEntry, error) {
	if len(b) < 4 || binary.LittleEndian.Uint32(b) != 2 || (len(b)-4)%8 != 0 {
		return nil, errors.New("unreadable POSIX ACL")
	}
	var out []aclEntry
	for p := b[4:]; len(p) >= 8; p = p[8:] {
		out = append(out, aclEntry{tag: binary.LittleEndian.Uint16(p), perm: binary.LittleEndian.Uint16(p[2:]), id: binary.LittleEndian.Uint32(p[4:])})
	}
	return out, nil
}

// mayExecute tells whether id may search (x) a folder described by fi, as
// the kernel decides it: owner bits, else the ACL's named user entry, else
// the group class (owning group and named groups, masked), else other.
func mayExecute(fi fileInfo, id Identity) bool {
	const x = 1
	if id.UID == 0 {
		return true
	}
	perm := uint16(fi.mode.Perm())
	if fi.acl == nil {
		switch {
		case id.UID == fi.uid:
			return perm>>6&x != 0
		case slices.Contains(id.GIDs, fi.gid):
			return perm>>3&x != 0
		}
		return perm&x != 0
	}
	mask := uint16(7)
	for _, e := range fi.acl {
		if e.tag == aclMask {
			mask = e.perm
		}
	}
	if id.UID == fi.uid {
		return perm>>6&x != 0
	}
	for _, e := range fi.acl {
		if e.tag == aclUser && e.id == id.UID {
			return e.perm&mask&x != 0
		}
	}
	inGroup := false
	for _, e := range fi.acl {
		var match bool
		switch e.tag {
		case aclGroupObj:
			match = slices.Contains(id.GIDs, fi.gid)
		case aclGroup:
			match = slices.Contains(id.GIDs, e.id)
		}
		if match {
			inGroup = true
			if e.perm&mask&x != 0 {
				return true
			}
		}
	}
	if inGroup {
		return false
	}
	for _, e := range fi.acl {
		if e.tag == aclOther {
			return e.perm&x != 0
		}
	}
	return perm&x != 0
}

// ancestors returns the existing folders from / down to path (or to the
// nearest existing folder above it: the rest lago creates itself, with
// modes qemu can traverse).
func ancestors(path string) ([]string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	// qemu opens the disks by the path init resolved: a workdir linked
	// out of a closed home is reached through the link's target.
	abs = resolveExisting(abs)
	var out []string
	for d := abs; ; d = filepath.Dir(d) {
		out = append(out, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	slices.Reverse(out)
	return out, nil
}

// Reach checks that id can reach path: search permission on every
// existing folder from / down to it. The first folder that stops it is
// named, with the two fixes (o+x, or an ACL entry for id alone).
func Reach(name, path string, id Identity) Result {
	r := Result{Name: name}
	dirs, err := ancestors(path)
	if err != nil {
		r.Detail = err.Error()
		return r
	}
	for _, d := range dirs {
		fi, err := statFunc(d)
		if errors.Is(err, fs.ErrNotExist) {
			break // lago creates the rest, 0755
		}
		if err != nil {
			// Not knowing is not a failure of the host: qemu's own
			// error will say more than a guess here.
			r.OK, r.Detail = true, fmt.Sprintf("%s reaches %s as far as this user can see (%v)", id.Name, path, err)
			return r
		}
		if !fi.mode.IsDir() {
			r.Detail = fmt.Sprintf("%s is not a folder", d)
			return r
		}
		if !mayExecute(fi, id) {
			r.Detail = fmt.Sprintf("qemu runs as %s, which may not enter %s (mode %v, owner %s): it cannot open disks below it", id.Name, d, fi.mode.Perm(), userName(fi.uid))
			r.Fix = fmt.Sprintf("chmod o+x %s, or give %s alone the right: setfacl -m u:%s:x %s (or keep workdirs and the template store elsewhere)", d, id.Name, id.Name, d)
			return r
		}
	}
	r.OK, r.Detail = true, fmt.Sprintf("%s (qemu's user) may enter every folder down to %s", id.Name, path)
	return r
}

func userName(uid uint32) string {
	s := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(s); err == nil {
		return u.Username
	}
	return "uid " + s
}

func groupName(gid uint32) string {
	s := strconv.FormatUint(uint64(gid), 10)
	if g, err := user.LookupGroupId(s); err == nil {
		return g.Name
	}
	return "gid " + s
}

// resolveExisting resolves the symbolic links of the deepest existing
// folder of abs and keeps the rest of abs below it.
func resolveExisting(abs string) string {
	rest := ""
	for d := abs; ; d = filepath.Dir(d) {
		if r, err := filepath.EvalSymlinks(d); err == nil {
			return filepath.Join(r, rest)
		}
		if d == filepath.Dir(d) {
			return abs
		}
		rest = filepath.Join(filepath.Base(d), rest)
	}
}
