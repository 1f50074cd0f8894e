#!/usr/bin/env bash
# copy.sh prints the figures of copy-to-vm, copy-from-vm, collect and
# ansible_hosts with a real tiny-template guest (TCG, dropbear), each next
# to a baseline measured in the same run on the same VM with the same key:
#   collect of 100 MB in 1000 files  vs  ssh VM tar czf - PATH | tar xzf -
#   copy-to-vm of a 200 MB file      vs  scp (and ssh VM 'cat > F' < F,
#                                        and lago shell VM 'cat > F' < F:
#                                        the floor of lago's ssh transport)
#   copy-from-vm of that file        vs  scp (and ssh VM cat F > F)
#   ansible_hosts of 3 VMs           vs  a no-op Go binary and lago status
# Targets (issue 9): collect and copy-to-vm at least 0.8x the baseline's
# throughput (baseline time / lago time); ansible_hosts under 50 ms.
# Everything that talks to the guest runs inside the harness's network
# namespace; the guest's files live on a tmpfs (the root disk of the tiny
# template has 200 MiB), so both sides measure ssh, tar and the guest's
# CPU, not the emulated disk. Prints "name: value unit" lines.
#
# Into the guest, lago is at ~0.5x of OpenSSH on the tiny guest, and so is
# `lago shell vm0 'cat > F' < F`: the gap is the ssh transport, not the
# copy code (Push adds nothing measurable over that floor). dropbear
# opens a 24 KiB receive window and extends it every 8 KiB it has written
# out; golang.org/x/crypto/ssh sends as soon as any window comes back, so
# it settles into ~8.5 KiB packets, where OpenSSH's poll loop gathers the
# extensions and sends larger ones: dropbear then makes ~3x the read and
# writev calls per byte (measured with strace against a dropbear on the
# host's loopback), which a TCG guest pays dearly for. Neither TCP_NODELAY
# off, nor 256 KiB-4 MiB writes, nor going around the ssh mux changed it;
# with `dropbear -W 2097152` the x/crypto and OpenSSH figures meet (host)
# and OpenSSH's own copy into the guest gets ~1.5x faster (guest).
#
# LAGO_BENCH_COPY_GUEST=openssh (or both) runs the 200 MB figures (to-vm
# vs scp, from-vm vs scp, the lago shell cat floor) again on the systemd
# Debian guest of test/e2e/mkservicetemplates.sh (cached; root password
# 123456), whose sshd is OpenSSH's with its 2 MiB channel window: the
# guest most users have. Those lines are prefixed "openssh_". It is not
# in the default run: the guest boots in ~1 min under TCG and its copies
# add ~6 min. There (2 runs, Dec 2026) lago copied 200 MB at ~16 MB/s
# both ways, ~1.6x scp's throughput: no window gap, and OpenSSH's client
# picks chacha20-poly1305 where x/crypto/ssh offers aes128-gcm first;
# against scp -c aes128-gcm@openssh.com (printed where the guest's sshd
# has it) lago is at ~1.1x.
#
# env: LAGO_BENCH_COPY_GUEST tiny (default) | openssh | both,
#      LAGO_BENCH_COPY_RUNS (default 3) repetitions of each copy,
#      LAGO_BENCH_FAST_RUNS (default 20) of ansible_hosts and baselines.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../e2e/lib.sh
source "$here/../e2e/lib.sh"
root="$(e2e_repo_root)"
lago="$root/bin/lago"
runs="${LAGO_BENCH_COPY_RUNS:-3}"
fast="${LAGO_BENCH_FAST_RUNS:-20}"
guests="${LAGO_BENCH_COPY_GUEST:-tiny}"
case "$guests" in
tiny | openssh) ;;
both) guests="tiny openssh" ;;
*) e2e_die "LAGO_BENCH_COPY_GUEST=$guests: want tiny, openssh or both" ;;
esac
[ -x "$lago" ] || e2e_die "build first: make"
e2e_require_root

cleanup() {
	set +e
	if [ -n "${E2E_ROOT:-}" ]; then
		for w in "$E2E_ROOT"/work/*; do
			[ -d "$w/.lago" ] && (cd "$w" && "$lago" destroy --yes >/dev/null 2>&1)
		done
		e2e_sweep >/dev/null
		rm -rf "$E2E_ROOT"
	fi
	e2e_teardown_netns
}
trap cleanup EXIT
e2e_setup_netns
e2e_make_root
repo="$(e2e_build_template)"
svc_repo=""
if [[ " $guests " == *" openssh "* ]]; then
	svc_repo="$(e2e_build_service_templates)" || e2e_die "the systemd guest did not build (test/e2e/mkservicetemplates.sh)"
fi

cat >"$E2E_ROOT/lago.conf" <<CONF
[lago]
lease_dir = $E2E_ROOT/leases
[init]
template_store = $E2E_ROOT/store
template_repo_path = $repo
skip_bootstrap = True
[provider local-libvirt]
domain_type = qemu
CONF
export LAGO_CONFIG="$E2E_ROOT/lago.conf" HOME="$E2E_ROOT/home"

now() { date +%s%N; }
ms() { echo $((($2 - $1) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }
# pfx names the guest in the figures of the OpenSSH one.
pfx=""
say() { printf '%s%s: %s %s\n' "$pfx" "$1" "$2" "$3"; }
in_ns() { ip netns exec "$E2E_NS" "$@"; }
timed() { local t0 t1; t0=$(now); "$@" >/dev/null; t1=$(now); ms "$t0" "$t1"; }
# ratio A B: A/B with two decimals
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
# verdict R MIN: yes when R >= MIN
atleast() { awk -v r="$1" -v m="$2" 'BEGIN {print (r >= m) ? "yes" : "no"}'; }
# mbps BYTES MS
mbps() { awk -v b="$1" -v t="$2" 'BEGIN {printf "%.1f", b / 1e6 / (t / 1000)}'; }

# ---- the data: 1000 files of 100 kB (log-like: base64 text, which gzip
# shrinks to ~75%) and one 200 MB file of random bytes
data="$E2E_ROOT/data"
mkdir -p "$data/logs"
head -c $((1000 * 74000)) /dev/urandom | base64 -w 76 | split -a 3 -d -b 100000 - "$data/logs/f"
nfiles=$(find "$data/logs" -type f | wc -l)
dbytes=$(du -sb "$data/logs" | cut -f1)
head -c 200000000 /dev/urandom >"$data/big"
bbytes=200000000

# boot_vm NAME TEMPLATE REPO boots vm0 from TEMPLATE of REPO in
# work/NAME: 1 GiB of memory, a 900 MiB tmpfs at /mnt/b (the 200 MB file
# and its second copy fit; neither guest's root disk has room), the prefix
# key in root's authorized_keys for the OpenSSH baselines.
boot_vm() {
	mkdir -p "$E2E_ROOT/work/$1" && chmod 0755 "$E2E_ROOT/work/$1"
	cat >"$E2E_ROOT/$1.yaml" <<-YAML
	domains:
	  vm0:
	    memory: 1024
	    vcpu: 1
	    nics: [{net: n0}]
	    disks: [{template_name: $2, type: template, name: root, dev: vda, format: qcow2}]
	    artifacts: [/mnt/b/logs]
	nets:
	  n0: {type: nat, management: true}
	YAML
	cd "$E2E_ROOT/work/$1"
	"$lago" init --template-repo-path "$3" "$E2E_ROOT/$1.yaml" >/dev/null 2>&1 || e2e_die "init of $2 failed"
	in_ns "$lago" start >/dev/null
	ip0="$("$lago" --out-format yaml status | awk '$1 == "ip:" {print $2; exit}')"
	[ -n "$ip0" ] || e2e_die "no address for vm0 in status"
	key="$PWD/.lago/current/id_rsa"
	[ -r "$key" ] || key="$PWD/.lago/default/id_rsa"
	[ -r "$key" ] || e2e_die "no prefix key in .lago"
	in_ns "$lago" shell vm0 'mkdir -p /root/.ssh /mnt/b && chmod 700 /root/.ssh && mount -t tmpfs -o size=900m tmpfs /mnt/b' >/dev/null
	in_ns "$lago" copy-to-vm vm0 "$key.pub" /root/.ssh/authorized_keys >/dev/null
	# The OpenSSH baselines, one fresh connection each, as lago's first
	# command is (later ones go through its kept connection).
	sshopts=(-i "$key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)
	in_ns ssh "${sshopts[@]}" "root@$ip0" true || e2e_die "OpenSSH cannot log in to vm0 with the prefix key"
	# OpenSSH and dropbear pick a cipher each; say which, since it sets the
	# copy's speed on a TCG guest.
	cipher="$(in_ns ssh -v "${sshopts[@]}" "root@$ip0" true 2>&1 | awk '/kex: client->server cipher:/ {print $5; exit}')"
	say openssh_cipher "${cipher:-unknown}" ""
	# Room for the file and its second copy (200 MB each) on the tmpfs.
	room="$(in_ns ssh "${sshopts[@]}" "root@$ip0" df -k /mnt/b | awk 'NR == 2 {print $4}')"
	[ "${room:-0}" -ge 450000 ] || e2e_die "vm0 ($2): only ${room:-?} KiB free on /mnt/b"
}
guest() { in_ns "$lago" shell vm0 "$@" >/dev/null; }

# folder_and_collect: the 1000 files into the guest, then collect.
folder_and_collect() {
	# ---- the 1000 files into the guest (folder copy; extra figure)
	t_lf="$(timed in_ns "$lago" copy-to-vm vm0 "$data/logs" /mnt/b/logs)"
	guest 'rm -rf /mnt/b/logs2'
	t_bf="$(timed in_ns bash -c 'tar -C "$1" -cf - logs | ssh "${@:3}" "root@$2" "mkdir -p /mnt/b/logs2 && tar -C /mnt/b/logs2 -xf -"' sh "$data" "$ip0" "${sshopts[@]}")"
	guest 'rm -rf /mnt/b/logs2'
	[ "$(in_ns ssh "${sshopts[@]}" "root@$ip0" 'find /mnt/b/logs -type f | wc -l')" = "$nfiles" ] || e2e_die "copy-to-vm of the folder lost files"
	say files "$nfiles files, $dbytes" bytes
	say copy_to_vm_folder "$t_lf" ms
	say baseline_tar_cf_ssh_tar_xf_folder "$t_bf" ms
	say copy_to_vm_folder_vs_baseline_throughput "$(ratio "$t_bf" "$t_lf")" x

	# ---- collect vs ssh tar czf | tar xzf
	lc=(); bc=()
	for ((r = 0; r < runs; r++)); do
		rm -rf "$E2E_ROOT/out" "$E2E_ROOT/base"
		lc+=("$(timed in_ns "$lago" collect --output "$E2E_ROOT/out")")
		mkdir -p "$E2E_ROOT/base"
		bc+=("$(timed in_ns bash -c 'ssh "${@:3}" "root@$1" tar -C / -czf - mnt/b/logs | tar -C "$2" -xzf -' sh "$ip0" "$E2E_ROOT/base" "${sshopts[@]}")")
	done
	got=$(find "$E2E_ROOT/out/vm0" -type f | wc -l)
	[ "$got" = "$nfiles" ] || e2e_die "collect wrote $got files, want $nfiles"
	LC=$(printf '%s\n' "${lc[@]}" | median); BC=$(printf '%s\n' "${bc[@]}" | median)
	say collect_100MB_1000_files_median "$LC ms, $(mbps "$dbytes" "$LC")" MB/s
	say baseline_ssh_tar_czf_tar_xzf_median "$BC ms, $(mbps "$dbytes" "$BC")" MB/s
	RC=$(ratio "$BC" "$LC")
	say collect_vs_baseline_throughput "$RC" "x (target >= 0.8): $(atleast "$RC" 0.8)"
	guest 'rm -rf /mnt/b/logs'

}

# big_copy: the 200 MB file both ways vs scp, ssh cat and lago shell cat.
big_copy() {
	# ---- one 200 MB file both ways vs scp and ssh cat
	# OpenSSH's client prefers chacha20-poly1305, x/crypto/ssh offers
	# aes128-gcm first (which the guest's qemu runs with emulated AES-NI):
	# where the guest's sshd has it, scp with lago's cipher is a baseline
	# too, so the ratio says how much of it is the cipher.
	gcm=(-c aes128-gcm@openssh.com)
	in_ns ssh "${sshopts[@]}" "${gcm[@]}" "root@$ip0" true 2>/dev/null || gcm=()
	lt=(); st=(); ct=(); gt=(); lf=(); sf=(); cf=(); sgt=(); sgf=()
	for ((r = 0; r < runs; r++)); do
		if [ ${#gcm[@]} -gt 0 ]; then
			sgt+=("$(timed in_ns scp -q "${sshopts[@]}" "${gcm[@]}" "$data/big" "root@$ip0:/mnt/b/big")")
			sgf+=("$(timed in_ns scp -q "${sshopts[@]}" "${gcm[@]}" "root@$ip0:/mnt/b/big" "$E2E_ROOT/big.back4")")
			guest 'rm -f /mnt/b/big'
			rm -f "$E2E_ROOT/big.back4"
		fi
		lt+=("$(timed in_ns "$lago" copy-to-vm vm0 "$data/big" /mnt/b/big)")
		guest 'rm -f /mnt/b/big2'
		st+=("$(timed in_ns scp -q "${sshopts[@]}" "$data/big" "root@$ip0:/mnt/b/big2")")
		guest 'rm -f /mnt/b/big2'
		ct+=("$(timed in_ns bash -c 'ssh "${@:3}" "root@$1" "cat > /mnt/b/big2" < "$2"' sh "$ip0" "$data/big" "${sshopts[@]}")")
		guest 'rm -f /mnt/b/big2'
		# lago's own ssh transport (golang.org/x/crypto/ssh) with no copy
		# code: the floor copy-to-vm can reach.
		gt+=("$(timed in_ns bash -c '"$1" shell vm0 "cat > /mnt/b/big2" < "$2"' sh "$lago" "$data/big")")
		guest 'rm -f /mnt/b/big2'
		rm -f "$E2E_ROOT/big.back"*
		lf+=("$(timed in_ns "$lago" copy-from-vm vm0 /mnt/b/big "$E2E_ROOT/big.back")")
		sf+=("$(timed in_ns scp -q "${sshopts[@]}" "root@$ip0:/mnt/b/big" "$E2E_ROOT/big.back2")")
		cf+=("$(timed in_ns bash -c 'ssh "${@:3}" "root@$1" cat /mnt/b/big > "$2"' sh "$ip0" "$E2E_ROOT/big.back3" "${sshopts[@]}")")
		cmp -s "$data/big" "$E2E_ROOT/big.back" || e2e_die "copy-from-vm: the 200 MB file differs"
		guest 'rm -f /mnt/b/big'
	done
	LT=$(printf '%s\n' "${lt[@]}" | median); ST=$(printf '%s\n' "${st[@]}" | median); CT=$(printf '%s\n' "${ct[@]}" | median)
	LF=$(printf '%s\n' "${lf[@]}" | median); SF=$(printf '%s\n' "${sf[@]}" | median); CF=$(printf '%s\n' "${cf[@]}" | median)
	say copy_to_vm_200MB_median "$LT ms, $(mbps "$bbytes" "$LT")" MB/s
	say baseline_scp_to_vm_median "$ST ms, $(mbps "$bbytes" "$ST")" MB/s
	say baseline_ssh_cat_to_vm_median "$CT ms, $(mbps "$bbytes" "$CT")" MB/s
	RT=$(ratio "$ST" "$LT")
	say copy_to_vm_vs_scp_throughput "$RT" "x (target >= 0.8): $(atleast "$RT" 0.8)"
	say copy_to_vm_vs_ssh_cat_throughput "$(ratio "$CT" "$LT")" x
	GT=$(printf '%s\n' "${gt[@]}" | median)
	say floor_lago_shell_cat_to_vm_median "$GT ms, $(mbps "$bbytes" "$GT")" "MB/s (x/crypto/ssh, no copy code)"
	say copy_to_vm_vs_lago_shell_cat_throughput "$(ratio "$GT" "$LT")" x
	say lago_shell_cat_vs_ssh_cat_throughput "$(ratio "$CT" "$GT")" "x (the transport's own share of the gap)"
	say copy_from_vm_200MB_median "$LF ms, $(mbps "$bbytes" "$LF")" MB/s
	say baseline_scp_from_vm_median "$SF ms, $(mbps "$bbytes" "$SF")" MB/s
	say baseline_ssh_cat_from_vm_median "$CF ms, $(mbps "$bbytes" "$CF")" MB/s
	RF=$(ratio "$SF" "$LF")
	say copy_from_vm_vs_scp_throughput "$RF" "x (no target; 0.8 as to-vm): $(atleast "$RF" 0.8)"
	say copy_from_vm_vs_ssh_cat_throughput "$(ratio "$CF" "$LF")" x
	if [ ${#gcm[@]} -gt 0 ]; then
		SGT=$(printf '%s\n' "${sgt[@]}" | median); SGF=$(printf '%s\n' "${sgf[@]}" | median)
		say baseline_scp_aes128gcm_to_vm_median "$SGT ms, $(mbps "$bbytes" "$SGT")" "MB/s (lago's cipher)"
		say copy_to_vm_vs_scp_aes128gcm_throughput "$(ratio "$SGT" "$LT")" x
		say baseline_scp_aes128gcm_from_vm_median "$SGF ms, $(mbps "$bbytes" "$SGF")" "MB/s (lago's cipher)"
		say copy_from_vm_vs_scp_aes128gcm_throughput "$(ratio "$SGF" "$LF")" x
	fi
	say copy_to_vm_time_over_copy_from_vm_time "$(ratio "$LT" "$LF")" x
}

for g in $guests; do
	case "$g" in
	tiny)
		pfx=""
		boot_vm copy tiny "$repo"
		folder_and_collect
		big_copy
		;;
	openssh)
		pfx="openssh_"
		boot_vm copy-openssh systemd "$svc_repo"
		big_copy
		;;
	esac
	"$lago" destroy --yes >/dev/null
	cd "$root"
done
pfx=""
[[ " $guests " == *" tiny "* ]] || exit 0

# ---- ansible_hosts of 3 VMs (initialized, not started: no guest contact)
mkdir -p "$E2E_ROOT/work/inv" && chmod 0755 "$E2E_ROOT/work/inv"
cat >"$E2E_ROOT/three.yaml" <<'YAML'
domains:
  vm0: {memory: 256, vcpu: 1, groups: [web, vm-group], nics: [{net: n0}], disks: [{template_name: tiny, type: template, name: root, dev: vda, format: qcow2}]}
  vm1: {memory: 256, vcpu: 1, groups: web, nics: [{net: n0}], disks: [{template_name: tiny, type: template, name: root, dev: vda, format: qcow2}]}
  vm2: {memory: 256, vcpu: 1, nics: [{net: n0}], disks: [{template_name: tiny, type: template, name: root, dev: vda, format: qcow2}]}
nets:
  n0: {type: nat, management: true}
YAML
cd "$E2E_ROOT/work/inv"
"$lago" init "$E2E_ROOT/three.yaml" >/dev/null 2>&1 || e2e_die "init of three VMs failed"
"$lago" ansible_hosts | grep -q '^\[vm-type=default\]$' || e2e_die "ansible_hosts printed no vm-type=default group"
hello="$E2E_ROOT/hello"
mkdir -p "$hello/src"
printf 'package main\n\nfunc main() {}\n' >"$hello/src/main.go"
printf 'module hello\n\ngo 1.22\n' >"$hello/src/go.mod"
(cd "$hello/src" && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$hello/bin" .) || e2e_die "build the no-op Go binary"
ah=(); ho=(); sv=()
for ((r = 0; r < fast; r++)); do
	ah+=("$(timed "$lago" ansible_hosts)")
	ho+=("$(timed "$hello/bin")")
	sv+=("$(timed "$lago" status)")
done
AH=$(printf '%s\n' "${ah[@]}" | median)
say ansible_hosts_3vms_median "$AH" "ms (target < 50): $([ "$AH" -lt 50 ] && echo yes || echo no)"
say baseline_noop_go_binary_median "$(printf '%s\n' "${ho[@]}" | median)" ms
say baseline_lago_status_3vms_stopped_median "$(printf '%s\n' "${sv[@]}" | median)" ms
"$lago" destroy --yes >/dev/null
cd "$root"
