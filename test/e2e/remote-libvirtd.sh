#!/usr/bin/env bash
# remote-libvirtd.sh runs a second libvirtd that plays a remote hypervisor:
# it lives in its own mount namespace inside the test network namespace, sees
# none of the client's files (tmpfs over the folders given, an empty
# /var/lib/libvirt, its own /run) and is reached only over
# qemu+tcp://127.0.0.1:PORT/system from inside that network namespace. A
# provider that works against it cannot be relying on a shared filesystem.
#
# usage:
#   remote-libvirtd.sh start NETNS STATE_DIR [HIDDEN_DIR...]   prints the URL
#   remote-libvirtd.sh stop NETNS STATE_DIR
#   remote-libvirtd.sh selftest NETNS    start, check, stop (a hidden file must stay hidden)
#
# STATE_DIR (outside every hidden folder) keeps the config copy, the empty
# /var/lib/libvirt, the pids and the URL. stop removes every domain and
# network of the daemon (all of them are the test's), then stops it.
set -euo pipefail

die() {
	echo "remote-libvirtd: $*" >&2
	exit 1
}

# free_port prints a TCP port nothing in NETNS listens on.
free_port() {
	local ns="$1" p
	for ((p = 16610; p < 16710; p++)); do
		if [ -z "$(ip netns exec "$ns" ss -Hltn "sport = :$p")" ]; then
			echo "$p"
			return 0
		fi
	done
	die "no free port in 16610-16709 in netns $ns"
}

start() {
	local ns="$1" state="$2"
	shift 2
	[ "$(id -u)" -eq 0 ] || die "run as root"
	ip netns pids "$ns" >/dev/null 2>&1 || die "no network namespace $ns"
	if [ -f "$state/url" ] && [ -f "$state/libvirtd.pid" ] && kill -0 "$(cat "$state/libvirtd.pid")" 2>/dev/null; then
		cat "$state/url"
		return 0
	fi
	mkdir -p "$state"
	state="$(cd "$state" && pwd)"
	local port
	port="$(free_port "$ns")"
	rm -rf "$state/etc-libvirt" "$state/var-lib-libvirt" "$state/var-cache-libvirt" "$state/log"
	cp -a /etc/libvirt "$state/etc-libvirt"
	# No autostarted networks or domains from the host's configuration.
	rm -rf "$state/etc-libvirt/qemu/networks/autostart" "$state/etc-libvirt/qemu/autostart"
	cat >>"$state/etc-libvirt/libvirtd.conf" <<EOF

# remote-libvirtd.sh: a TCP listener on loopback for the e2e remote provider
listen_tls = 0
listen_tcp = 1
listen_addr = "127.0.0.1"
tcp_port = "$port"
auth_tcp = "none"
EOF
	mkdir -p "$state/var-lib-libvirt" "$state/var-cache-libvirt" "$state/log"
	chmod 0755 "$state" "$state/var-lib-libvirt"

	local hidden=("$@")
	# shellcheck disable=SC2016 # the script is expanded by the inner bash
	ip netns exec "$ns" unshare -m --propagation private bash -c '
set -euo pipefail
state="$1"; shift
mount -t tmpfs -o mode=0755 lago-remote-run /run
mkdir -p /run/libvirt /run/lock
mount --bind "$state/etc-libvirt" /etc/libvirt
mount --bind "$state/var-lib-libvirt" /var/lib/libvirt
mount --bind "$state/var-cache-libvirt" /var/cache/libvirt
mount --bind "$state/log" /var/log/libvirt 2>/dev/null || true
for d in "$@"; do
	[ -d "$d" ] && mount -t tmpfs -o mode=0755 lago-remote-hidden "$d"
done
virtlogd -d
# under a subreaper, as lib.sh explains; the mount namespace lives on
# with it after this script returns
setsid tini -s -- libvirtd --listen </dev/null >"$state/log/libvirtd.out" 2>&1 &
for _ in $(seq 100); do
	[ -s /run/libvirtd.pid ] && [ -S /run/libvirt/libvirt-sock ] && break
	sleep 0.1
done
cp /run/libvirtd.pid "$state/libvirtd.pid"
cp /run/virtlogd.pid "$state/virtlogd.pid"
' remote-libvirtd "$state" "${hidden[@]}" || die "starting the remote libvirtd failed"

	local url="qemu+tcp://127.0.0.1:$port/system" i
	for ((i = 0; i < 100; i++)); do
		if ip netns exec "$ns" virsh -q -c "$url" uri >/dev/null 2>&1; then
			echo "$url" >"$state/url"
			echo "$url"
			return 0
		fi
		sleep 0.1
	done
	stop "$ns" "$state"
	die "remote libvirtd does not answer on $url"
}

stop() {
	local ns="$1" state="$2" url name pid
	if [ -f "$state/url" ]; then
		url="$(cat "$state/url")"
		while read -r name; do
			[ -n "$name" ] || continue
			ip netns exec "$ns" virsh -q -c "$url" destroy "$name" >/dev/null 2>&1 || true
			ip netns exec "$ns" virsh -q -c "$url" undefine "$name" --snapshots-metadata >/dev/null 2>&1 ||
				ip netns exec "$ns" virsh -q -c "$url" undefine "$name" >/dev/null 2>&1 || true
		done < <(ip netns exec "$ns" virsh -q -c "$url" list --all --name 2>/dev/null)
		while read -r name; do
			[ -n "$name" ] || continue
			ip netns exec "$ns" virsh -q -c "$url" net-destroy "$name" >/dev/null 2>&1 || true
			ip netns exec "$ns" virsh -q -c "$url" net-undefine "$name" >/dev/null 2>&1 || true
		done < <(ip netns exec "$ns" virsh -q -c "$url" net-list --all --name 2>/dev/null)
	fi
	for f in libvirtd.pid virtlogd.pid; do
		if [ -f "$state/$f" ]; then
			pid="$(cat "$state/$f")"
			kill "$pid" 2>/dev/null || true
			for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -9 "$pid" 2>/dev/null || true
		fi
	done
	rm -rf "$state"
}

# selftest proves the daemon answers over TCP and cannot see a hidden file.
selftest() {
	local ns="$1" state hidden url seen
	state="$(mktemp -d /var/tmp/lago-remote-state.XXXXXX)"
	hidden="$(mktemp -d /var/tmp/lago-remote-hidden.XXXXXX)"
	chmod 0755 "$hidden"
	echo secret >"$hidden/client-file"
	# shellcheck disable=SC2064 # expand now: the paths are fixed
	trap "stop '$ns' '$state'; rm -rf '$hidden'" EXIT
	url="$(start "$ns" "$state" "$hidden")"
	echo "url: $url"
	ip netns exec "$ns" virsh -q -c "$url" uri
	# A dir pool on the hidden folder sees the remote's empty tmpfs, not the client file.
	ip netns exec "$ns" virsh -q -c "$url" pool-create-as probe dir --target "$hidden" >/dev/null
	seen="$(ip netns exec "$ns" virsh -q -c "$url" vol-list probe | awk '{print $1}')"
	ip netns exec "$ns" virsh -q -c "$url" pool-destroy probe >/dev/null
	if [ -n "$seen" ]; then
		die "remote libvirtd sees the client's files: $seen"
	fi
	if virsh -q -c "$url" uri >/dev/null 2>&1; then
		die "remote libvirtd answers from the host network namespace"
	fi
	echo "selftest ok: reachable over tcp in $ns only, client files hidden"
}

cmd="${1:-}"
case "$cmd" in
start)
	[ $# -ge 3 ] || die "usage: $0 start NETNS STATE_DIR [HIDDEN_DIR...]"
	shift
	start "$@"
	;;
stop)
	[ $# -eq 3 ] || die "usage: $0 stop NETNS STATE_DIR"
	stop "$2" "$3"
	;;
selftest)
	[ $# -eq 2 ] || die "usage: $0 selftest NETNS"
	selftest "$2"
	;;
*) die "usage: $0 {start|stop|selftest} ..." ;;
esac
