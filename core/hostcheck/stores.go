package hostcheck

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Writable checks that this user may create and remove files in dir, the
// store that config key (e.g. "[lago] lease_dir") names: the folder, or,
// when it is missing, the nearest existing folder above it, where lago
// would create it.
func Writable(name, dir, key string) Result {
	r := Result{Name: name}
	me := currentUser()
	group := userOrGroupHint()
	target := dir
	for {
		_, err := os.Stat(target)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			r.Detail = fmt.Sprintf("cannot check %s: %v", target, err)
			r.Fix = fmt.Sprintf("make %s reachable by %s, or set %s to a folder it can write", target, me, key)
			return r
		}
		up := filepath.Dir(target)
		if up == target {
			break
		}
		target = up
	}
	err := unix.Access(target, unix.W_OK|unix.X_OK)
	switch {
	case err == nil && target == dir:
		r.OK, r.Detail = true, fmt.Sprintf("%s may write %s", me, dir)
	case err == nil:
		r.OK, r.Detail = true, fmt.Sprintf("%s does not exist yet; %s may create it in %s", dir, me, target)
	case target == dir:
		r.Detail = fmt.Sprintf("%s may not write %s (%s)", me, dir, describe(dir))
		r.Fix = fmt.Sprintf("as root, once: chgrp %s %s && chmod 2775 %s, and add every lago user to group %s; or set %s to a folder %s can write", group, dir, dir, group, key, me)
	default:
		r.Detail = fmt.Sprintf("%s does not exist and %s may not create it in %s (%s)", dir, me, target, describe(target))
		r.Fix = fmt.Sprintf("as root, once: install -d -m 2775 -g %s %s, and add every lago user to group %s; or set %s to a folder %s can write", group, dir, group, key, me)
	}
	return r
}

// Shared checks that dir can be shared by the host's lago users: group
// writable, setgid (so what one user creates keeps the folder's group),
// and not sticky (a sticky folder lets nobody remove another user's stale
// lease or killed download). A missing folder is fine: lago creates it
// with those modes.
func Shared(name, dir string) Result {
	r := Result{Name: name}
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		r.OK, r.Detail = true, fmt.Sprintf("%s does not exist yet; lago creates it 2775 (group of its parent's creator)", dir)
		return r
	}
	if err != nil {
		r.Detail = fmt.Sprintf("cannot check %s: %v", dir, err)
		return r
	}
	m := st.Mode()
	group := userOrGroupHint()
	switch {
	case m.Perm()&0o070 != 0o070:
		r.Detail = fmt.Sprintf("%s is not writable by its group (%s): other users cannot lease or download", dir, describe(dir))
		r.Fix = fmt.Sprintf("as root: chgrp %s %s && chmod 2775 %s", group, dir, dir)
	case m&fs.ModeSticky != 0:
		r.Detail = fmt.Sprintf("%s is sticky (%s): no user can replace another's stale lease or remove a killed download", dir, describe(dir))
		r.Fix = "as root: chmod -t " + dir
	case m&fs.ModeSetgid == 0:
		r.Detail = fmt.Sprintf("%s is not setgid (%s): files take their creator's group, not the folder's", dir, describe(dir))
		r.Fix = "as root: chmod g+s " + dir
	default:
		r.OK, r.Detail = true, fmt.Sprintf("%s is group-writable and setgid (%s)", dir, describe(dir))
	}
	return r
}

// describe is "mode drwxrwsr-x, owner uid 0, group libvirt".
func describe(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return err.Error()
	}
	s := "mode " + st.Mode().String()
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		s += fmt.Sprintf(", owner %s, group %s", userName(sys.Uid), groupName(sys.Gid))
	}
	return s
}

// KernelReadable checks that libguestfs's direct backend, run as this
// user, can read a host kernel for its appliance (Ubuntu installs
// /boot/vmlinuz-* 0600). It matters to bootstrap and build steps only.
func KernelReadable() Result {
	r := Result{Name: "host kernel for libguestfs"}
	if p := os.Getenv("LIBGUESTFS_PATH"); p != "" {
		r.OK, r.Detail = true, "LIBGUESTFS_PATH="+p+" (a fixed appliance): not checked"
		return r
	}
	kernels, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(kernels) == 0 {
		r.OK, r.Detail = true, "no /boot/vmlinuz-*: libguestfs uses its packaged appliance"
		return r
	}
	var unreadable []string
	for _, k := range kernels {
		if unix.Access(k, unix.R_OK) != nil {
			unreadable = append(unreadable, k)
		}
	}
	if len(unreadable) == len(kernels) {
		r.Detail = fmt.Sprintf("%s may not read any of %v: bootstrap and build steps (libguestfs) fail", currentUser(), kernels)
		r.Fix = "as root: chmod 0644 /boot/vmlinuz-* (on Ubuntu also: dpkg-statoverride --update --add root root 0644 /boot/vmlinuz-$(uname -r))"
		return r
	}
	r.OK, r.Detail = true, fmt.Sprintf("%d of %d kernels in /boot readable", len(kernels)-len(unreadable), len(kernels))
	return r
}
