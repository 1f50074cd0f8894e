#!/usr/bin/env bash
# vms.sh prints lifecycle figures of lago with real guests (the tiny
# template, 1 vCPU, 256 MiB, TCG) next to the floor measured in the same
# run: the same guests created straight through libvirt and polled with ssh
# every 0.2 s. Everything runs inside the harness's network namespace and is
# removed at the end. Prints "name: value unit" lines.
#
# env: LAGO_BENCH_VM_RUNS (default 3) repetitions of each boot figure,
#      LAGO_BENCH_FAST_RUNS (default 10) of status and shell.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../e2e/lib.sh
source "$here/../e2e/lib.sh"
root="$(e2e_repo_root)"
lago="$root/bin/lago"
runs="${LAGO_BENCH_VM_RUNS:-3}"
fast="${LAGO_BENCH_FAST_RUNS:-10}"
[ -x "$lago" ] || e2e_die "build first: make"
e2e_require_root

cleanup() {
	set +e
	# the floor's guests and network (not a prefix's, so not swept)
	for ((i = 0; i < 3; i++)); do virsh -q -c "$E2E_URI" destroy "lbf$$-$i" >/dev/null 2>&1; done
	for j in 0 1; do virsh -q -c "$E2E_URI" net-destroy "lbf$$$j" >/dev/null 2>&1; done
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
# The Go API benchmark binary, built outside the namespace (module proxy).
(cd "$root/core" && go test -c -tags lagobench -o "$E2E_ROOT/lago-api.test" ./lago) || e2e_die "build the Go API benchmark"
img="$(dirname "$repo")/tiny.qcow2"

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
# median of the numbers on stdin
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }
say() { printf '%s: %s %s\n' "$1" "$2" "$3"; }
in_ns() { ip netns exec "$E2E_NS" "$@"; }

# banner_at IP: prints when (ns since the epoch) sshd at IP sent its first
# banner, polled from inside the namespace by core/ssh/cmd/bannerwait (a
# connect every 50 ms, earlier ones kept pending). It marks when the guest's
# sshd started answering, in the same boot as a lago start or a floor, so the
# time each took to notice can be told apart from the boot itself, whose
# length varies by a second from one boot to the next.
bannerwait="$E2E_ROOT/bannerwait"
(cd "$root/core" && go build -o "$bannerwait" ./ssh/cmd/bannerwait) || e2e_die "cannot build bannerwait"
banner_at() { in_ns "$bannerwait" "$1" 180s; }

# ---- the floor: N guests straight through libvirt, ssh polled every 0.2 s.
# They have the guest agent channel lago's domains have, so the template's
# qemu-guest-agent runs in both.
# floor N [NETS [WITH_NETS]]: NETS NAT networks (1 or 2) shaped like the
# bench's init files (with 2, every guest but the second has a NIC on the
# second net, as vm0 and vm2 of three.yaml); the guests are created at the
# same moment. The clock starts after the networks exist, or before they
# are created with WITH_NETS=1 (lago's start creates its networks too).
floor() {
	local n=$1 nets=${2:-1} with_nets=${3:-0} tag="lbf$$" w="$E2E_ROOT/floor" i j t0 left out nic oct
	mkdir -p "$w" && chmod 0755 "$w"
	for ((j = 0; j < nets; j++)); do
		{
			echo "<network><name>$tag$j</name><forward mode='nat'/><bridge name='${tag}b$j' stp='off' delay='0'/>"
			echo "<ip address='10.254.7$((8 + j)).1' netmask='255.255.255.0'><dhcp><range start='10.254.7$((8 + j)).100' end='10.254.7$((8 + j)).200'/>"
			oct=4e
			[ "$j" = 1 ] && oct=4f
			for ((i = 0; i < n; i++)); do echo "<host mac='54:52:0a:fe:$oct:1$i' ip='10.254.7$((8 + j)).1$i'/>"; done
			echo "</dhcp></ip></network>"
		} >"$w/net$j.xml"
	done
	for ((i = 0; i < n; i++)); do
		qemu-img create -q -f qcow2 -F qcow2 -b "$img" "$w/d$i.qcow2"
		nic="<interface type='network'><source network='${tag}0'/><mac address='54:52:0a:fe:4e:1$i'/><model type='virtio'/></interface>"
		if [ "$nets" = 2 ] && [ "$i" != 1 ]; then
			nic="$nic<interface type='network'><source network='${tag}1'/><mac address='54:52:0a:fe:4f:1$i'/><model type='virtio'/></interface>"
		fi
		cat >"$w/d$i.xml" <<XML
<domain type='qemu'><name>$tag-$i</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os><features><acpi/></features>
<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$w/d$i.qcow2'/><target dev='vda' bus='virtio'/></disk>
$nic
<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng></devices></domain>
XML
	done
	[ "$with_nets" = 1 ] && t0=$(now)
	for ((j = 0; j < nets; j++)); do virsh -q -c "$E2E_URI" net-create "$w/net$j.xml" >/dev/null & done
	wait
	[ "$with_nets" = 1 ] || t0=$(now)
	local bpid="" cpids=() tb
	if [ -n "${FLOOR_BANNER:-}" ]; then
		banner_at 10.254.78.10 >"$FLOOR_BANNER" &
		bpid=$!
	fi
	for ((i = 0; i < n; i++)); do
		virsh -q -c "$E2E_URI" create "$w/d$i.xml" >/dev/null &
		cpids+=($!)
	done
	wait "${cpids[@]}"
	left=$n
	declare -A up=()
	while [ "$left" -gt 0 ]; do
		for ((i = 0; i < n; i++)); do
			[ -n "${up[$i]:-}" ] && continue
			# sshd answering authentication (it refuses us: no key) is up.
			out="$(in_ns timeout 2 ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
				-o ConnectTimeout=1 -o LogLevel=ERROR -o PreferredAuthentications=publickey "root@10.254.78.1$i" true 2>&1 || true)"
			if [[ $out == *"Permission denied"* ]]; then
				up[$i]=1
				left=$((left - 1))
			fi
		done
		if [ $(($(now) - t0)) -gt 180000000000 ]; then e2e_die "floor: guests did not answer in 180 s"; fi
		[ "$left" -gt 0 ] && sleep 0.2
	done
	local t1
	t1=$(now)
	ms "$t0" "$t1"
	if [ -n "$bpid" ]; then
		wait "$bpid" || e2e_die "floor: the banner poller saw no sshd"
		# how long after sshd's first banner the floor's ssh poll noticed it
		tb="$(cat "$FLOOR_BANNER")"
		ms "$tb" "$t1" >"$FLOOR_BANNER"
	fi
	for ((i = 0; i < n; i++)); do virsh -q -c "$E2E_URI" destroy "$tag-$i" >/dev/null 2>&1 || true; done
	for ((j = 0; j < nets; j++)); do virsh -q -c "$E2E_URI" net-destroy "$tag$j" >/dev/null 2>&1 || true; done
	rm -rf "$w"
}

# ---- init files
mkdir -p "$E2E_ROOT/work"
cat >"$E2E_ROOT/one.yaml" <<'YAML'
domains:
  vm0: {memory: 256, vcpu: 1, nics: [{net: n0}], disks: [{template_name: tiny, type: template, name: root, dev: vda, format: qcow2}]}
nets:
  n0: {type: nat, management: true}
YAML
cat >"$E2E_ROOT/three.yaml" <<'YAML'
domains:
  vm0: {memory: 256, vcpu: 1, nics: [{net: n0}, {net: n1}], disks: [{template_name: tiny, type: template, name: root, dev: vda, format: qcow2}]}
  vm1: {memory: 256, vcpu: 1, nics: [{net: n0}], disks: [{template_name: tiny, type: template, name: root, dev: vda, format: qcow2}]}
  vm2: {memory: 256, vcpu: 1, nics: [{net: n0}, {net: n1}], disks: [{template_name: tiny, type: template, name: root, dev: vda, format: qcow2}]}
nets:
  n0: {type: nat, management: true}
  n1: {type: nat}
YAML
# env NAME FILE: a fresh workdir holding an initialized prefix of FILE
env_dir() {
	local d="$E2E_ROOT/work/$1"
	rm -rf "$d" && mkdir -p "$d" && chmod 0755 "$d"
	(cd "$d" && "$lago" init "$2" >/dev/null 2>&1) || e2e_die "init $2 failed"
	echo "$d"
}
timed() { local t0 t1; t0=$(now); "$@" >/dev/null; t1=$(now); ms "$t0" "$t1"; }

# warm the template store once
d="$(env_dir warm "$E2E_ROOT/three.yaml")"; (cd "$d" && "$lago" destroy --yes >/dev/null)

# ---- init of 3 VMs on 2 nets (template in the store, --skip-bootstrap)
i3=()
for ((r = 0; r < fast; r++)); do
	d="$E2E_ROOT/work/init$r"; mkdir -p "$d"; chmod 0755 "$d"
	i3+=("$(cd "$d" && timed "$lago" init "$E2E_ROOT/three.yaml")")
	(cd "$d" && "$lago" destroy --yes >/dev/null)
done
say init_3vms_2nets_median "$(printf '%s\n' "${i3[@]}" | median)" ms
# The floor of that init: the three qcow2 overlays on the stored template it
# must create at the least, with qemu-img, one after another.
fi3=()
for ((r = 0; r < fast; r++)); do
	d="$E2E_ROOT/work/floorinit$r"; rm -rf "$d"; mkdir -p "$d"
	t0=$(now)
	for v in vm0 vm1 vm2; do qemu-img create -q -f qcow2 -F qcow2 -b "$img" "$d/${v}_root.qcow2" >/dev/null; done
	t1=$(now)
	fi3+=("$(ms "$t0" "$t1")")
	rm -rf "$d"
done
FI3=$(printf '%s\n' "${fi3[@]}" | median)
say floor_init_3_overlays_qemu_img_median "$FI3" ms

# ---- 1 VM: start until ssh answers, against the floor
# Each boot also has a banner poller (banner_at), so the figures include how
# long after sshd's first banner lago's start returned and the floor's poll
# noticed: those do not carry the boot's noise.
f1=(); fn1=(); s1=(); nl1=(); nf1=()
for ((r = 0; r < runs; r++)); do
	f1+=("$(floor 1)")
	fn1+=("$(FLOOR_BANNER="$E2E_ROOT/floor.banner" floor 1 1 1)")
	nf1+=("$(cat "$E2E_ROOT/floor.banner")")
	d="$(env_dir one$r "$E2E_ROOT/one.yaml")"
	ip0="$(cd "$d" && "$lago" --out-format yaml status | awk '$1 == "ip:" {print $2; exit}')"
	[ -n "$ip0" ] || e2e_die "no address for vm0 in status"
	banner_at "$ip0" >"$E2E_ROOT/lago.banner" &
	bp=$!
	t0=$(now)
	(cd "$d" && in_ns "$lago" start >/dev/null)
	t1=$(now)
	wait "$bp" || e2e_die "lago start: the banner poller saw no sshd"
	s1+=("$(ms "$t0" "$t1")")
	nl1+=("$(ms "$(cat "$E2E_ROOT/lago.banner")" "$t1")")
	(cd "$d" && "$lago" destroy --yes >/dev/null)
done
F1=$(printf '%s\n' "${f1[@]}" | median); S1=$(printf '%s\n' "${s1[@]}" | median)
say floor_1vm_ssh_median "$F1" ms
say lago_start_1vm_until_ssh_median "$S1" ms
say lago_start_1vm_minus_floor "$((S1 - F1))" ms
FN1=$(printf '%s\n' "${fn1[@]}" | median)
say floor_1vm_incl_its_net_median "$FN1" ms
say lago_start_1vm_minus_floor_incl_net "$((S1 - FN1))" ms
NL1=$(printf '%s\n' "${nl1[@]}" | median); NF1=$(printf '%s\n' "${nf1[@]}" | median)
say lago_start_1vm_returns_after_sshd_banner_median "$NL1" ms
say floor_1vm_notices_after_sshd_banner_median "$NF1" ms

# ---- 1 VM: what start does before the guest boots (start --no-wait)
# against the same libvirt objects (lago's definitions, left by stop)
# started through virsh: network, then domain. With the two "after banner"
# figures above this gives lago's overhead over the floor incl. its network
# without the boot's noise.
d="$(env_dir nw1 "$E2E_ROOT/one.yaml")"
cd "$d"
in_ns "$lago" start --no-wait >/dev/null
"$lago" stop >/dev/null
uuid="$(cat .lago/default/uuid)"
net1="$(virsh -q -c "$E2E_URI" net-list --all --name | grep "^${uuid:0:4}-")"
dom1="$(virsh -q -c "$E2E_URI" list --all --name | grep "^${uuid:0:8}-")"
virsh_start1() { virsh -q -c "$E2E_URI" net-start "$net1" >/dev/null && virsh -q -c "$E2E_URI" start "$dom1" >/dev/null; }
fw1=(); sw1=()
for ((r = 0; r < runs; r++)); do
	fw1+=("$(timed virsh_start1)")
	"$lago" stop >/dev/null
	sw1+=("$(timed "$lago" start --no-wait)")
	"$lago" stop >/dev/null
done
"$lago" destroy --yes >/dev/null
cd "$root"
FW1=$(printf '%s\n' "${fw1[@]}" | median); SW1=$(printf '%s\n' "${sw1[@]}" | median)
say floor_start_no_wait_1vm_virsh_median "$FW1" ms
say start_no_wait_1vm_median "$SW1" ms
say lago_1vm_overhead_over_floor_incl_net_without_boot_noise "$((SW1 - FW1 + NL1 - NF1))" ms

# ---- 3 VMs: all at once and staggered (one StartVM at a time)
f3=(); fn3=(); a3=(); g3=()
for ((r = 0; r < runs; r++)); do
	f3+=("$(floor 3 2)")
	fn3+=("$(floor 3 2 1)")
	d="$(env_dir all$r "$E2E_ROOT/three.yaml")"
	a3+=("$(cd "$d" && in_ns bash -c "$(declare -f now ms timed); timed $lago start --parallelism 0")")
	(cd "$d" && "$lago" destroy --yes >/dev/null)
	d="$(env_dir stag$r "$E2E_ROOT/three.yaml")"
	g3+=("$(cd "$d" && in_ns bash -c "$(declare -f now ms timed); timed $lago start --parallelism 1")")
	(cd "$d" && "$lago" destroy --yes >/dev/null)
done
say floor_3vms_all_at_once_median "$(printf '%s\n' "${f3[@]}" | median)" ms
say floor_3vms_all_at_once_incl_2nets_median "$(printf '%s\n' "${fn3[@]}" | median)" ms
say lago_start_3vms_all_at_once_median "$(printf '%s\n' "${a3[@]}" | median)" ms
say lago_start_3vms_one_at_a_time_median "$(printf '%s\n' "${g3[@]}" | median)" ms

# ---- 3 running VMs: status, shell, stop, start --no-wait, destroy
d="$(env_dir run "$E2E_ROOT/three.yaml")"
cd "$d"
in_ns "$lago" start >/dev/null
shell_true() { in_ns env "$@" bash -c "$(declare -f now ms timed); timed $lago shell vm0 true"; }
# The first shell connects itself and then starts vm0's ssh mux
# (ssh_persist); the next ones go through the mux's kept connection.
# ssh_persist = 0 (LAGO_SSH_PERSIST=0) connects afresh every time.
sh1="$(shell_true)"
sleep 1
st=(); stn=(); sh=(); shd=()
for ((r = 0; r < fast; r++)); do
	st+=("$(timed "$lago" status)")
	# without the front-end starting the provider plugin (prestart)
	stn+=("$(LAGO_PRESTART=0 timed "$lago" status)")
	sh+=("$(shell_true)")
	shd+=("$(shell_true LAGO_SSH_PERSIST=0)")
done
# The Go API: Load + run `true` per call, in one program (one plugin host,
# kept ssh connections), next to `lago shell vm0 true` above.
apiout="$(in_ns "$E2E_ROOT/lago-api.test" -test.run '^$' -test.bench 'LoadRunTrue|SessionFloor' -test.benchtime "${fast}x")"
api="$(awk '/^BenchmarkLoadRunTrue/ {for (i = 1; i <= NF; i++) if ($(i+1) == "median-ms") print $i}' <<<"$apiout")"
apifloor="$(awk '/^BenchmarkSessionFloor/ {for (i = 1; i <= NF; i++) if ($(i+1) == "median-ms") print $i}' <<<"$apiout")"
[ -n "$api" ] && [ -n "$apifloor" ] || e2e_die "the Go API benchmark printed no median: $apiout"
say status_3vms_running_median "$(printf '%s\n' "${st[@]}" | median)" ms
say status_3vms_running_no_prestart_median "$(printf '%s\n' "${stn[@]}" | median)" ms
say shell_true_first_connect "$sh1" ms
say shell_true_kept_connection_median "$(printf '%s\n' "${sh[@]}" | median)" ms
say shell_true_ssh_persist_0_median "$(printf '%s\n' "${shd[@]}" | median)" ms
SHK=$(printf '%s\n' "${sh[@]}" | median)
say floor_true_on_one_kept_ssh_connection_median "$apifloor" ms
say go_api_load_run_true_median "$api" ms
say go_api_vs_lago_shell_true_ratio "$(awk -v a="$api" -v b="$SHK" 'BEGIN {printf "%.2f", a / b}')" "x (target <= 0.5)"
# After a revert libvirt restarts qemu with new taps: the first shell shows
# how soon the VM is reachable again (3-4 s while the bridges ran STP).
in_ns "$lago" snapshot bench >/dev/null
in_ns "$lago" revert bench >/dev/null
say shell_true_right_after_revert "$(shell_true)" ms
say stop_3vms_running "$(timed "$lago" stop)" ms
# The floor of start --no-wait: the same libvirt objects (lago's own
# definitions, left by stop) started straight through virsh, the two
# networks at once, then the three domains at once.
uuid="$(cat .lago/default/uuid)"
mapfile -t fnets < <(virsh -q -c "$E2E_URI" net-list --all --name | grep "^${uuid:0:4}-")
mapfile -t fdoms < <(virsh -q -c "$E2E_URI" list --all --name | grep "^${uuid:0:8}-")
[ "${#fnets[@]}" = 2 ] && [ "${#fdoms[@]}" = 3 ] || e2e_die "no-wait floor: found nets ${fnets[*]} and domains ${fdoms[*]}"
virsh_starts() {
	local o
	for o in "${fnets[@]}"; do virsh -q -c "$E2E_URI" net-start "$o" >/dev/null & done
	wait
	for o in "${fdoms[@]}"; do virsh -q -c "$E2E_URI" start "$o" >/dev/null & done
	wait
}
fnw=(); snw=()
for ((r = 0; r < runs; r++)); do
	fnw+=("$(timed virsh_starts)")
	"$lago" stop >/dev/null
	snw+=("$(timed "$lago" start --no-wait)")
	"$lago" stop >/dev/null
done
say floor_start_no_wait_3vms_virsh_median "$(printf '%s\n' "${fnw[@]}" | median)" ms
say start_no_wait_3vms_median "$(printf '%s\n' "${snw[@]}" | median)" ms
in_ns "$lago" start >/dev/null
say destroy_yes_3vms_running "$(timed "$lago" destroy --yes)" ms
cd "$root"
