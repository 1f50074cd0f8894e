package hostcheck

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// systemSockets are the sockets a qemu:///system client connects to: the
// modular daemon's first (libvirt 7+ hosts that run virtqemud), then the
// monolithic libvirtd's.
var systemSockets = []string{
	"/run/libvirt/virtqemud-sock",
	"/var/run/libvirt/virtqemud-sock",
	"/run/libvirt/libvirt-sock",
	"/var/run/libvirt/libvirt-sock",
}

// LocalSocket returns the unix socket of a libvirt URI that names this
// host's system daemon (qemu:///system, qemu+unix:///system, with or
// without ?socket=), and false for any other URI (session, remote).
func LocalSocket(uri string) (string, bool) {
	if uri == "" {
		uri = "qemu:///system"
	}
	u, err := url.Parse(uri)
	if err != nil || u.Host != "" || u.Path != "/system" {
		return "", false
	}
	switch u.Scheme {
	case "qemu", "qemu+unix":
	default:
		return "", false
	}
	if s := u.Query().Get("socket"); s != "" {
		return s, true
	}
	for _, s := range systemSockets {
		if _, err := os.Stat(s); err == nil {
			return s, true
		}
	}
	return systemSockets[len(systemSockets)-1], true
}

// LibvirtSocket checks that this user may connect to the libvirt daemon
// of uri: a connect(2) to its unix socket, which the kernel refuses
// unless the socket's mode lets the user write it. Authentication inside
// the protocol (polkit) is not checked here: the provider's own error
// names it.
func LibvirtSocket(uri string) Result {
	r := Result{Name: "libvirt socket"}
	sock, local := LocalSocket(uri)
	if !local {
		r.OK, r.Detail = true, fmt.Sprintf("%s is not this host's system daemon: not checked", uri)
		return r
	}
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	me := currentUser()
	if err == nil {
		defer c.Close()
		method, aerr := probeAuth(c)
		switch {
		case aerr == nil && method == "sasl":
			r.OK, r.Detail = true, fmt.Sprintf("this user may connect to %s; the daemon asks SASL credentials (not checked)", sock)
		case aerr == nil:
			r.OK, r.Detail = true, fmt.Sprintf("this user may connect to %s (auth %s)", sock, method)
		case errors.Is(aerr, errAuthRefused) && method == "polkit":
			r.Detail = fmt.Sprintf("the daemon on %s asks polkit, which refuses %s (%v)", sock, me, aerr)
			r.Fix = fmt.Sprintf("install polkit (Debian's libvirt-daemon-system then lets group libvirt in; elsewhere add a polkit rule allowing org.libvirt.unix.manage to that group) and add %s to group libvirt; or, without polkit, set unix_sock_group = \"libvirt\", unix_sock_rw_perms = \"0770\" and auth_unix_rw = \"none\" in /etc/libvirt/libvirtd.conf and restart libvirtd", me)
		default:
			// Not libvirt's protocol or a daemon too old: the
			// provider's own error will tell.
			r.OK, r.Detail = true, fmt.Sprintf("this user may connect to %s (authentication not checked: %v)", sock, aerr)
		}
		return r
	}
	switch {
	case errors.Is(err, syscall.EACCES), errors.Is(err, fs.ErrPermission):
		group := socketGroup(sock)
		r.Detail = fmt.Sprintf("permission denied on %s (%s)", sock, describeSocket(sock))
		switch {
		case group == "":
			r.Fix = fmt.Sprintf("set unix_sock_group and unix_sock_rw_perms = \"0770\" in /etc/libvirt/libvirtd.conf (or virtqemud.conf), restart the daemon, and add %s to that group", me)
		case inGroupDB(me, group) && !inSession(group):
			r.Fix = fmt.Sprintf("%s is in group %s, but this login session is not: log in again (or run `newgrp %s`)", me, group, group)
		default:
			r.Fix = fmt.Sprintf("add %s to group %s (as root: usermod -a -G %s %s, then log in again), or set unix_sock_group and unix_sock_rw_perms in /etc/libvirt/libvirtd.conf", me, group, group, me)
		}
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		r.Detail = fmt.Sprintf("no libvirt daemon listens on %s", sock)
		r.Fix = "start it (systemctl start libvirtd, or virtqemud on a modular host), or point [lago] libvirt_url at a running one"
	default:
		r.Detail = fmt.Sprintf("cannot connect to %s: %v", sock, err)
	}
	return r
}

func describeSocket(sock string) string {
	st, err := os.Stat(sock)
	if err != nil {
		return err.Error()
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return "mode " + st.Mode().Perm().String()
	}
	g := strconv.FormatUint(uint64(sys.Gid), 10)
	if gr, err := user.LookupGroupId(g); err == nil {
		g = gr.Name
	}
	return fmt.Sprintf("mode %v, group %s", st.Mode().Perm(), g)
}

// socketGroup is the name of the socket's group, when only its group may
// write it (otherwise joining the group does not help).
func socketGroup(sock string) string {
	st, err := os.Stat(sock)
	if err != nil {
		return ""
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || sys.Gid == 0 || st.Mode().Perm()&0o020 == 0 {
		return ""
	}
	if gr, err := user.LookupGroupId(strconv.FormatUint(uint64(sys.Gid), 10)); err == nil {
		return gr.Name
	}
	return ""
}

// currentUser is this process's user name (its uid when it has none).
func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}

// inGroupDB tells whether the group database lists name in group.
func inGroupDB(name, group string) bool {
	g, err := user.LookupGroup(group)
	if err != nil {
		return false
	}
	u, err := user.Lookup(name)
	if err != nil {
		return false
	}
	ids, err := u.GroupIds()
	if err != nil {
		return false
	}
	for _, id := range ids {
		if id == g.Gid {
			return true
		}
	}
	return false
}

// inSession tells whether this process holds group (a user added to a
// group keeps the old list until they log in again).
func inSession(group string) bool {
	g, err := user.LookupGroup(group)
	if err != nil {
		return false
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return false
	}
	if os.Getegid() == gid {
		return true
	}
	gids, err := unix.Getgroups()
	if err != nil {
		return false
	}
	for _, x := range gids {
		if x == gid {
			return true
		}
	}
	return false
}

// userOrGroupHint is "GROUP (a group every lago user of the host is in)".
func userOrGroupHint() string {
	if g, err := user.LookupGroup("libvirt"); err == nil {
		return g.Name
	}
	return "GROUP"
}
