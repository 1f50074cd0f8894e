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
	ip netns exec "$E2E_NS" setsid tini -s -- libvirtd </dev/null >>/var/tmp/lago-e2e-libvirtd.log 2>&1 &
	e2e_wait_libvirt || e2e_die "libvirtd did not come up in netns $E2E_NS"
	e2e_log "started libvirtd in netns $E2E_NS"
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

# e2e_owned_objects prints "domain NAME" and "network NAME" for every libvirt
# object on E2E_URI whose XML mentions E2E_ROOT (the owner tag names the
# prefix path, the disks live below it).
e2e_owned_objects() {
	local name
	[ -n "$E2E_ROOT" ] || return 0
	while read -r name; do
		[ -n "$name" ] || continue
		if virsh -q -c "$E2E_URI" dumpxml "$name" 2>/dev/null | grep -qF "$E2E_ROOT"; then
			echo "domain $name"
		fi
	done < <(virsh -q -c "$E2E_URI" list --all --name 2>/dev/null)
	while read -r name; do
		[ -n "$name" ] || continue
		if virsh -q -c "$E2E_URI" net-dumpxml "$name" 2>/dev/null | grep -qF "$E2E_ROOT"; then
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
