#!/usr/bin/env bash
# lib.sh: shared helpers of the e2e harness (run.sh, demo.sh). Source it.
#
# The network rule: VM traffic never leaves a network namespace. The harness
# creates one (lagoe2e-<pid>), starts virtlogd and libvirtd inside it so that
# their bridges and dnsmasq live there, and runs everything that talks to a
# VM address with `ip netns exec`. A developer who already runs a libvirtd in
# a namespace (e.g. `lagodev`) gets that daemon reused and left running.
#
# Functions set and read these variables:
#   E2E_NS          the namespace VM traffic lives in
#   E2E_OWN_DAEMON  1 when this run started libvirtd (and must stop it)
#   E2E_URI         libvirt URI of the daemon (qemu:///system)
#   E2E_ROOT        the run's scratch folder; every workdir, lease and
#                   store of the run lives below it, so libvirt objects whose
#                   XML names it are this run's and nobody else's

E2E_URI="${E2E_URI:-qemu:///system}"
E2E_OWN_DAEMON=0
E2E_OWN_VIRTLOGD=0
E2E_NS=""
E2E_ROOT="${E2E_ROOT:-}"

e2e_log() { printf 'e2e: %s\n' "$*" >&2; }

e2e_die() {
	e2e_log "error: $*"
	exit 1
}

# e2e_repo_root prints the top of the checkout.
e2e_repo_root() {
	cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd
}

# e2e_require_root fails unless running as root (namespaces, libvirtd).
e2e_require_root() {
	[ "$(id -u)" -eq 0 ] || e2e_die "run as root: the harness creates a network namespace and starts libvirtd"
}

# e2e_libvirtd_pid prints the pid of the system libvirtd if one runs.
e2e_libvirtd_pid() {
	local pid
	for f in /run/libvirtd.pid /var/run/libvirtd.pid; do
		if [ -r "$f" ]; then
			pid="$(cat "$f")"
			if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
				echo "$pid"
				return 0
			fi
		fi
	done
	return 1
}

# e2e_wait_libvirt waits until the daemon answers on E2E_URI.
e2e_wait_libvirt() {
	local i
	for ((i = 0; i < 150; i++)); do
		if virsh -q -c "$E2E_URI" uri >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# e2e_setup_netns reuses a running libvirtd's namespace or creates a
# namespace with its own virtlogd and libvirtd.
#
# libvirtd runs in the foreground under `tini -s`, a subreaper. qemu and
# dnsmasq daemonize, so they are orphans whose exit pid 1 must reap, and
# libvirt waits for that: after SIGTERM it polls kill(pid, 0) until the
# process is gone. pid 1 on these machines reaps orphans only every ~2 s
# (systemd or sysvinit reap at once), which made every domain destroy take
# 2 s and every network stop 0.75-1.5 s. Under tini they are reaped at once,
# as on an ordinary host.
e2e_setup_netns() {
	local pid ns
	if pid="$(e2e_libvirtd_pid)"; then
		ns="$(ip netns identify "$pid" 2>/dev/null || true)"
		if [ -z "$ns" ]; then
			e2e_die "libvirtd (pid $pid) runs in the host network namespace; its VM networks would reach the host's: stop it, or start it with 'ip netns exec NS libvirtd -d'"
		fi
		E2E_NS="$ns"
		E2E_OWN_DAEMON=0
		e2e_log "reusing libvirtd pid $pid in netns $E2E_NS (left running)"
		e2e_wait_libvirt || e2e_die "libvirtd pid $pid does not answer on $E2E_URI"
		return 0
	fi
	E2E_NS="lagoe2e-$$"
	ip netns add "$E2E_NS"
	E2E_OWN_DAEMON=1
	ip netns exec "$E2E_NS" ip link set lo up
	if ! pgrep -x virtlogd >/dev/null || [ ! -S /run/libvirt/virtlogd-sock ]; then
		ip netns exec "$E2E_NS" virtlogd -d
		E2E_OWN_VIRTLOGD=1
	fi
	e2e_libvirtd_conf
	ip netns exec "$E2E_NS" setsid tini -s -- libvirtd -f "$E2E_LIBVIRTD_CONF" </dev/null >>/var/tmp/lago-e2e-libvirtd.log 2>&1 &
	e2e_wait_libvirt || e2e_die "libvirtd did not come up in netns $E2E_NS"
	e2e_log "started libvirtd in netns $E2E_NS"
}

# E2E_SOCK_GROUP is the group whose members the harness's libvirtd lets
# connect to its read-write socket, as a distribution's libvirt group does.
E2E_SOCK_GROUP="${E2E_SOCK_GROUP:-libvirt}"
# E2E_USERS are the unprivileged users the shared-host test runs lago as.
E2E_USERS=(lagoe2e-a lagoe2e-b)
E2E_LIBVIRTD_CONF=""

# e2e_libvirtd_conf writes the harness's own libvirtd.conf (the host's
# /etc/libvirt/libvirtd.conf is left alone) and sets E2E_LIBVIRTD_CONF.
# Members of E2E_SOCK_GROUP may connect read-write: this machine has no
# polkit, whose Debian default (auth_unix_rw = "polkit") refuses every
# non-root client, so access is by the socket's group and mode alone, as
# docs/SHARED-HOST.md sets a host up. qemu.conf stays the distribution's:
# qemu runs as libvirt-qemu with dynamic_ownership, so the users' homes
# must be traversable by libvirt-qemu (the tests set that up).
e2e_libvirtd_conf() {
	E2E_LIBVIRTD_CONF="$(mktemp /var/tmp/lago-e2e-libvirtd.XXXXXX.conf)"
	cat >"$E2E_LIBVIRTD_CONF" <<EOF
unix_sock_group = "$E2E_SOCK_GROUP"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
EOF
	chmod 0644 "$E2E_LIBVIRTD_CONF"
}

# e2e_make_users creates (once; later runs only check them) the
# unprivileged users of the shared-host test, members of E2E_SOCK_GROUP,
# with homes under /home. The modes of their homes are the tests' business.
e2e_make_users() {
	local u home
	getent group "$E2E_SOCK_GROUP" >/dev/null || groupadd --system "$E2E_SOCK_GROUP"
	for u in "${E2E_USERS[@]}"; do
		if ! id -u "$u" >/dev/null 2>&1; then
			useradd --create-home --shell /bin/sh --groups "$E2E_SOCK_GROUP" "$u"
			e2e_log "created user $u (group $E2E_SOCK_GROUP)"
		elif ! id -nG "$u" | tr ' ' '\n' | grep -qx "$E2E_SOCK_GROUP"; then
			usermod -a -G "$E2E_SOCK_GROUP" "$u"
		fi
		home="$(getent passwd "$u" | cut -d: -f6)"
		[ -d "$home" ] || install -d -o "$u" -g "$(id -gn "$u")" -m 0700 "$home"
	done
}

# e2e_teardown_netns stops the daemons this run started and deletes its
# namespace; a reused daemon and namespace are left alone.
e2e_teardown_netns() {
	local pid
	if [ "$E2E_OWN_DAEMON" != 1 ]; then
		return 0
	fi
	if pid="$(e2e_libvirtd_pid)"; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
	# A virtlogd that was already running is shared with others: left alone.
	if [ "$E2E_OWN_VIRTLOGD" = 1 ] && [ -r /run/virtlogd.pid ]; then
		pid="$(cat /run/virtlogd.pid)"
		kill "$pid" 2>/dev/null || true
		# Until it is reaped (late here) a next run's pgrep would see it
		# and start none, and find no virtlogd socket.
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
	if [ -n "$E2E_NS" ]; then
		ip netns delete "$E2E_NS" 2>/dev/null || true
	fi
	if [ -n "$E2E_LIBVIRTD_CONF" ]; then
		rm -f "$E2E_LIBVIRTD_CONF"
	fi
	e2e_log "removed netns $E2E_NS"
}

# e2e_in_ns runs argv inside the run's namespace.
e2e_in_ns() {
	ip netns exec "$E2E_NS" "$@"
}

# e2e_make_root creates E2E_ROOT with the folders the tests use; qemu runs as
# another user and must reach the disks below it.
e2e_make_root() {
	if [ -z "$E2E_ROOT" ]; then
		E2E_ROOT="$(mktemp -d /var/tmp/lago-e2e.XXXXXX)"
	fi
	mkdir -p "$E2E_ROOT"/{leases,store,repos,work,home}
	chmod 0755 "$E2E_ROOT" "$E2E_ROOT"/*
}

# e2e_user_dirs prints the run's folder in each test user's home
# ($HOME/<basename of E2E_ROOT>): the shared-host test's workdirs.
e2e_user_dirs() {
	local u home
	[ -n "$E2E_ROOT" ] || return 0
	for u in "${E2E_USERS[@]}"; do
		home="$(getent passwd "$u" | cut -d: -f6)" || continue
		[ -n "$home" ] && echo "$home/$(basename "$E2E_ROOT")"
	done
}

# e2e_remove_user_dirs removes the run's folders in the test users' homes.
e2e_remove_user_dirs() {
	local d
	while read -r d; do
		[ -n "$d" ] && rm -rf "$d"
	done < <(e2e_user_dirs)
}

# e2e_owned_objects prints "domain NAME" and "network NAME" for every libvirt
# object on E2E_URI whose XML mentions the run's folder's name: E2E_ROOT
# or a test user's $HOME/<that name> (the owner tag names the prefix path,
# the disks live below it; the name is random, so nobody else's match).
e2e_owned_objects() {
	local name marker
	[ -n "$E2E_ROOT" ] || return 0
	marker="/$(basename "$E2E_ROOT")"
	while read -r name; do
		[ -n "$name" ] || continue
		if virsh -q -c "$E2E_URI" dumpxml "$name" 2>/dev/null | grep -qF "$marker"; then
			echo "domain $name"
		fi
	done < <(virsh -q -c "$E2E_URI" list --all --name 2>/dev/null)
	while read -r name; do
		[ -n "$name" ] || continue
		if virsh -q -c "$E2E_URI" net-dumpxml "$name" 2>/dev/null | grep -qF "$marker"; then
			echo "network $name"
		fi
	done < <(virsh -q -c "$E2E_URI" net-list --all --name 2>/dev/null)
}

# e2e_sweep removes every libvirt object of this run (domains first, their
# snapshots' metadata with them, then networks) and prints what it removed.
e2e_sweep() {
	local kind name n=0 snap
	while read -r kind name; do
		case "$kind" in
		domain)
			virsh -q -c "$E2E_URI" destroy "$name" >/dev/null 2>&1 || true
			while read -r snap; do
				if [ -n "$snap" ]; then
					virsh -q -c "$E2E_URI" snapshot-delete "$name" "$snap" --metadata >/dev/null 2>&1 || true
				fi
			done < <(virsh -q -c "$E2E_URI" snapshot-list "$name" --name 2>/dev/null)
			virsh -q -c "$E2E_URI" undefine "$name" --nvram >/dev/null 2>&1 ||
				virsh -q -c "$E2E_URI" undefine "$name" >/dev/null 2>&1 || true
			;;
		network)
			virsh -q -c "$E2E_URI" net-destroy "$name" >/dev/null 2>&1 || true
			virsh -q -c "$E2E_URI" net-undefine "$name" >/dev/null 2>&1 || true
			;;
		esac
		e2e_log "swept leftover $kind $name"
		n=$((n + 1))
	done < <(e2e_owned_objects | sort)
	echo "$n"
}

# e2e_build_template prints the path of the tiny template's repo.metadata.
e2e_build_template() {
	"$(e2e_repo_root)/test/e2e/mktemplate.sh"
}

# e2e_build_service_templates prints the path of the repo.metadata of the
# systemd and sysvinit guests (debootstrap: needs the Debian mirror).
e2e_build_service_templates() {
	"$(e2e_repo_root)/test/e2e/mkservicetemplates.sh"
}
