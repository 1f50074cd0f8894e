#!/usr/bin/env bash
# bootstrap.sh prints what bootstrap costs in `lago init` of 1 and of 3 VMs
# of the tiny template (wall time and peak memory), next to the original's
# way measured in the same run: one `virt-sysprep -a DISK --commands-from-file F`
# per disk, in parallel, on qcow2 overlays of the same template, F holding the
# original's four commands (selinux-relabel, hostname, root-password,
# ssh-inject). Runs with the harness's libvirtd (its network namespace); no
# guest is started. Prints "name: value unit" lines and the ratios against
# the targets (3 VMs <= 0.5x, 1 VM <= 0.7x, peak < 1 GiB).
#
# Peak memory is given two ways: GNU time's maximum RSS (of the largest
# single process, the libguestfs appliance's qemu), and the largest sum of
# the RSS of the whole process tree, sampled every 0.2 s (three parallel
# appliances add up; GNU time does not see that).
#
# env: LAGO_BENCH_BOOTSTRAP_RUNS (default 1) repetitions of each figure;
#      the median is printed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../e2e/lib.sh
source "$here/../e2e/lib.sh"
root="$(e2e_repo_root)"
lago="$root/bin/lago"
runs="${LAGO_BENCH_BOOTSTRAP_RUNS:-1}"
[ -x "$lago" ] || e2e_die "build first: make"
[ -x /usr/bin/time ] || e2e_die "GNU time missing: apt-get install time (test/e2e/deps.sh)"
command -v virt-sysprep >/dev/null || e2e_die "virt-sysprep missing: apt-get install libguestfs-tools"
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
img="$(dirname "$repo")/tiny.qcow2"

cat >"$E2E_ROOT/lago.conf" <<CONF
[lago]
lease_dir = $E2E_ROOT/leases
[init]
template_store = $E2E_ROOT/store
template_repo_path = $repo
[provider local-libvirt]
domain_type = qemu
CONF
export LAGO_CONFIG="$E2E_ROOT/lago.conf" HOME="$E2E_ROOT/home"
# lago's own defaults choose the backend and TCG; the baseline is told.
unset LIBGUESTFS_BACKEND LIBGUESTFS_BACKEND_SETTINGS
baseline_env=(LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg)

say() { printf '%s: %s %s\n' "$1" "$2" "$3"; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

# init files of 1 and 3 VMs on one network
for n in 1 3; do
	{
		echo "domains:"
		for ((i = 0; i < n; i++)); do
			echo "  vm$i: {memory: 256, vcpu: 1, nics: [{net: n0}], disks: [{template_name: tiny, type: template, name: root, dev: vda, format: qcow2}]}"
		done
		echo "nets:"
		echo "  n0: {type: nat, management: true}"
	} >"$E2E_ROOT/init$n.yaml"
done

# measure OUT CMD...: runs CMD under GNU time and a sampler of the process
# tree's RSS; writes "wall_ms maxrss_kib treesum_kib" to OUT.
measure() {
	local out="$1" tv="$E2E_ROOT/time.$$" peak="$E2E_ROOT/peak.$$" pid t0 t1
	shift
	t0=$(date +%s%N)
	/usr/bin/time -v -o "$tv" "$@" >"$E2E_ROOT/cmd.log" 2>&1 &
	pid=$!
	echo 0 >"$peak"
	(
		max=0
		while kill -0 "$pid" 2>/dev/null; do
			# sum the RSS of pid and every descendant
			s=$(ps -e -o pid=,ppid=,rss= | awk -v root="$pid" '
				{ parent[$1] = $2; rss[$1] = $3 }
				END {
					for (p in rss) {
						q = p
						while (q != "" && q != 0 && q != 1) { if (q == root) { sum += rss[p]; break } ; q = parent[q] }
					}
					print sum + 0
				}')
			[ "$s" -gt "$max" ] && max=$s && echo "$max" >"$peak"
			sleep 0.2
		done
	) &
	local sampler=$!
	if ! wait "$pid"; then
		kill "$sampler" 2>/dev/null
		tail -n 20 "$E2E_ROOT/cmd.log" >&2
		e2e_die "measured command failed: $*"
	fi
	t1=$(date +%s%N)
	wait "$sampler" 2>/dev/null || true
	echo "$(((t1 - t0) / 1000000)) $(awk -F': ' '/Maximum resident set size/ {print $2}' "$tv") $(cat "$peak")" >"$out"
}

# the baseline: N virt-sysprep in parallel, each on its own overlay
cat >"$E2E_ROOT/sysprep-par.sh" <<'SH'
#!/usr/bin/env bash
# sysprep-par.sh DIR N KEY: N virt-sysprep runs in parallel on DIR/dI.qcow2.
set -euo pipefail
dir="$1" n="$2" key="$3"
pids=()
for ((i = 0; i < n; i++)); do
	printf 'selinux-relabel\nhostname vm%d\nroot-password file:%s\nssh-inject root:file:%s\n' "$i" "$dir/pw" "$key" >"$dir/cmds$i"
	virt-sysprep --format qcow2 -a "$dir/d$i.qcow2" --commands-from-file "$dir/cmds$i" >"$dir/log$i" 2>&1 &
	pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
exit $rc
SH
chmod 0755 "$E2E_ROOT/sysprep-par.sh"

# the template in the store, libguestfs' appliance built and lago's KVM
# probe answered (kept per host boot) before timing
warm="$E2E_ROOT/work/warm"
mkdir -p "$warm" && chmod 0755 "$warm"
(cd "$warm" && "$lago" init "$E2E_ROOT/init1.yaml" >/dev/null 2>&1 && "$lago" destroy --yes >/dev/null 2>&1) ||
	e2e_die "warm-up init failed"
env "${baseline_env[@]}" guestfish -a /dev/null run </dev/null >/dev/null 2>&1 || e2e_die "guestfish cannot start its appliance"

key="$E2E_ROOT/key"
ssh-keygen -q -t ed25519 -N '' -f "$key"
for n in 1 3; do
	lw=() lr=() lt=() bw=() br=() bt=()
	for ((r = 0; r < runs; r++)); do
		d="$E2E_ROOT/work/lago$n-$r"
		mkdir -p "$d" && chmod 0755 "$d"
		(cd "$d" && measure "$E2E_ROOT/m" "$lago" init "$E2E_ROOT/init$n.yaml")
		read -r w m s <"$E2E_ROOT/m"
		lw+=("$w") lr+=("$m") lt+=("$s")
		(cd "$d" && "$lago" destroy --yes >/dev/null)

		b="$E2E_ROOT/work/sysprep$n-$r"
		mkdir -p "$b"
		printf '123456' >"$b/pw"
		for ((i = 0; i < n; i++)); do qemu-img create -q -f qcow2 -F qcow2 -b "$img" "$b/d$i.qcow2"; done
		measure "$E2E_ROOT/m" env "${baseline_env[@]}" "$E2E_ROOT/sysprep-par.sh" "$b" "$n" "$key.pub"
		read -r w m s <"$E2E_ROOT/m"
		bw+=("$w") br+=("$m") bt+=("$s")
		rm -rf "$b"
	done
	LW=$(printf '%s\n' "${lw[@]}" | median) LR=$(printf '%s\n' "${lr[@]}" | median) LT=$(printf '%s\n' "${lt[@]}" | median)
	BW=$(printf '%s\n' "${bw[@]}" | median) BR=$(printf '%s\n' "${br[@]}" | median) BT=$(printf '%s\n' "${bt[@]}" | median)
	say "init_bootstrap_${n}vm_wall" "$LW" ms
	say "init_bootstrap_${n}vm_maxrss" "$((LR / 1024))" MiB
	say "init_bootstrap_${n}vm_tree_rss_peak" "$((LT / 1024))" MiB
	say "virt_sysprep_${n}x_parallel_wall" "$BW" ms
	say "virt_sysprep_${n}x_parallel_maxrss" "$((BR / 1024))" MiB
	say "virt_sysprep_${n}x_parallel_tree_rss_peak" "$((BT / 1024))" MiB
	target=0.7
	[ "$n" = 3 ] && target=0.5
	say "init_bootstrap_${n}vm_vs_virt_sysprep_ratio" "$(ratio "$LW" "$BW")" "x (target <= $target)"
	say "init_bootstrap_${n}vm_tree_rss_peak_vs_1GiB" "$(ratio "$LT" 1048576)" "x (target < 1)"
done
