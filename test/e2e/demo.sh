#!/usr/bin/env bash
# demo.sh: the README's first command. On a Debian 12 machine, as root, it
# installs what lago needs, builds it, creates a network namespace with its
# own libvirtd (or reuses a running one's), builds the tiny template, brings
# up examples/demo/LagoInitFile (2 VMs on one network), runs `hostname -f` in
# each VM through `lago shell`, shows `lago status`, and tears it all down.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
repo="$(e2e_repo_root)"
cd "$repo"
e2e_require_root
export PATH="/usr/local/go/bin:$PATH"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

lago_demo() {
	# VM traffic (ssh from start and shell) stays inside the namespace.
	(cd "$E2E_ROOT/work/demo" && e2e_in_ns env LAGO_CONFIG="$E2E_ROOT/lago.conf" "$repo/bin/lago" "$@")
}

finish() {
	local rc=$?
	set +e
	if [ -n "$E2E_ROOT" ] && [ -d "$E2E_ROOT/work/demo/.lago" ]; then
		step "lago destroy --yes"
		lago_demo destroy --yes
	fi
	if [ -n "$E2E_ROOT" ]; then
		e2e_sweep >/dev/null
		rm -rf "$E2E_ROOT"
	fi
	e2e_teardown_netns
	if [ "$rc" -eq 0 ]; then step "demo done"; else step "demo failed (exit $rc)"; fi
	exit "$rc"
}

step "installing packages (scripts/deps.sh)"
bash "$repo/scripts/deps.sh"

step "building lago (make build)"
make build

step "building the tiny template"
template_repo="$(e2e_build_template)"
echo "$template_repo"

trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "network namespace and libvirtd"
e2e_setup_netns
e2e_make_root
mkdir -p "$E2E_ROOT/work/demo"
chmod 0755 "$E2E_ROOT/work/demo"
# Scratch leases and store; guests under TCG (KVM is not usable everywhere).
cat >"$E2E_ROOT/lago.conf" <<CONF
[lago]
lease_dir = $E2E_ROOT/leases

[init]
template_store = $E2E_ROOT/store
template_repos = $E2E_ROOT/repos

[provider local-libvirt]
plugin = libvirt
domain_type = qemu
CONF
cp "$repo/examples/demo/LagoInitFile" "$E2E_ROOT/work/demo/LagoInitFile"

step "lago init"
lago_demo init --template-repo-path "$template_repo" --skip-bootstrap

step "lago start"
time lago_demo start

for vm in vm0 vm1; do
	step "lago shell $vm hostname -f"
	lago_demo shell "$vm" hostname -f
done

step "lago shell vm0 ping -c1 vm1"
lago_demo shell vm0 ping -c1 vm1

step "lago status"
lago_demo status
