#!/usr/bin/env bash
# run.sh is the end-to-end suite (`make e2e`, CI): the built bin/lago and its
# plugins against a real libvirtd, real TCG guests and real ssh, all VM
# traffic inside a network namespace. It
#   1. builds lago (unless E2E_SKIP_BUILD=1) and the tiny template (cached);
#   2. creates a netns with its own libvirtd, or reuses a running libvirtd's
#      netns (developer mode; that daemon is left running);
#   3. starts a "remote" libvirtd (remote-libvirtd.sh) for the remote tests;
#   4. runs provider-libvirt's integration tests and the core/e2e Go tests
#      inside the namespace, with every path pointing into a scratch folder
#      (leases, template store, workdirs: never /var/lib/lago);
#   5. removes every domain and network the run created, the leases, the
#      scratch folder, the remote daemon and the namespace, also on failure.
# The exit code is the tests' result. Extra arguments go to the core/e2e test
# binary, e.g. `run.sh -run TestOneVM`. E2E_ONLY=core|provider|api limits the run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
# shellcheck source-path=SCRIPTDIR source=judge.sh
. "$here/judge.sh"
repo="$(e2e_repo_root)"
cd "$repo"
e2e_require_root
export PATH="/usr/local/go/bin:$PATH"

started=$(date +%s)
log_dir="${E2E_LOG_DIR:-/var/tmp/lago-e2e-logs/$(date +%Y%m%d-%H%M%S)-$$}"
mkdir -p "$log_dir"
remote_state=""
declare -A result=()
status=0

finish() {
	local rc=$? swept=0
	set +e
	if [ -n "$remote_state" ] && [ -n "$E2E_NS" ]; then
		"$here/remote-libvirtd.sh" stop "$E2E_NS" "$remote_state" >/dev/null 2>&1
	fi
	if [ -n "$E2E_ROOT" ]; then
		swept="$(e2e_sweep)"
		rm -rf "$E2E_ROOT"
		e2e_remove_user_dirs
	fi
	e2e_teardown_netns
	[ "$status" -eq 0 ] && status=$rc
	echo
	echo "==================== lago e2e summary ===================="
	for k in "${!result[@]}"; do
		printf '  %-28s %s\n' "$k" "${result[$k]}"
	done | sort
	for f in "$log_dir"/*.log; do
		[ -f "$f" ] || continue
		grep -E -- '^--- FAIL' "$f" | sed "s|^--- FAIL: |  failed: $(basename "$f" .log) |" || true
	done
	printf '  %-28s %s\n' "leftover libvirt objects" "$swept (removed by the sweep)"
	printf '  %-28s %s\n' "logs" "$log_dir"
	printf '  %-28s %s s\n' "duration" "$(($(date +%s) - started))"
	if [ "$status" -eq 0 ] && [ "$swept" = 0 ]; then
		echo "  RESULT: PASS"
	else
		echo "  RESULT: FAIL"
		[ "$status" -eq 0 ] && status=1
	fi
	echo "=========================================================="
	exit "$status"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "${E2E_SKIP_BUILD:-0}" != 1 ]; then
	e2e_log "building lago and plugins"
	make build >"$log_dir/build.log" 2>&1 || {
		tail -n 30 "$log_dir/build.log" >&2
		e2e_die "make build failed (log: $log_dir/build.log)"
	}
fi
[ -x bin/lago ] || e2e_die "bin/lago missing: run make build"

e2e_log "building the tiny template (cached)"
template_repo="$(e2e_build_template)"
e2e_log "template repo: $template_repo"
# The service-manager tests' Debian guests (cached; the first build takes
# minutes): a failed build fails only those tests.
e2e_log "building the systemd and sysvinit guests (cached)"
if service_repo="$(e2e_build_service_templates 2>"$log_dir/service-templates.log")"; then
	e2e_log "service guests repo: $service_repo"
else
	e2e_log "service guests did not build (log: $log_dir/service-templates.log)"
	service_repo=""
fi

e2e_setup_netns
e2e_make_root
e2e_log "scratch folder: $E2E_ROOT"
# The unprivileged users of the shared-host test (core/e2e/users_test.go).
e2e_make_users

# The provider instance of the tests: TCG guests (KVM is broken on these hosts).
cat >"$E2E_ROOT/lago.conf" <<EOF
[lago]
lease_dir = $E2E_ROOT/leases

[init]
template_store = $E2E_ROOT/store
template_repos = $E2E_ROOT/repos

[provider local-libvirt]
plugin = libvirt
domain_type = qemu
EOF

remote_url=""
if [ "${E2E_REMOTE:-1}" = 1 ]; then
	remote_state="$(mktemp -d /var/tmp/lago-e2e-remote.XXXXXX)"
	if remote_url="$("$here/remote-libvirtd.sh" start "$E2E_NS" "$remote_state" "$E2E_ROOT" "$(dirname "$template_repo")" 2>"$log_dir/remote-libvirtd.log")"; then
		e2e_log "remote libvirtd: $remote_url"
	else
		e2e_log "remote libvirtd did not start (log: $log_dir/remote-libvirtd.log); remote tests will fail"
		result[remote-libvirtd]="FAIL (did not start, $log_dir/remote-libvirtd.log)"
		status=1
		remote_url=""
	fi
fi

export LAGO_E2E_BIN="$repo/bin/lago"
export LAGO_PLUGIN_PATH="$repo/libexec/lago/plugins"
# The example plugins (make examples); only tests that want them add the folder.
export LAGO_E2E_EXAMPLES="$repo/.cache/examples"
export LAGO_E2E_TEMPLATE_REPO="$template_repo"
export LAGO_E2E_SERVICE_REPO="$service_repo"
export LAGO_E2E_ROOT="$E2E_ROOT"
export LAGO_E2E_LEASE_DIR="$E2E_ROOT/leases"
export LAGO_E2E_STORE="$E2E_ROOT/store"
export LAGO_E2E_REPOS="$E2E_ROOT/repos"
export LAGO_E2E_CONFIG="$E2E_ROOT/lago.conf"
export LAGO_E2E_URI="$E2E_URI"
export LAGO_E2E_NETNS="$E2E_NS"
# Users in the libvirt socket's group; their workdirs are
# $HOME/$(basename "$E2E_ROOT"), which the sweep covers too.
export LAGO_E2E_USERS="${E2E_USERS[*]}"
export LAGO_E2E_SOCK_GROUP="$E2E_SOCK_GROUP"
export LAGO_E2E_REMOTE_URL="$remote_url"
export LAGO_LIBVIRT_TEST_URI="$E2E_URI"
export LAGO_LIBVIRT_TEST_REMOTE_URI="$remote_url"
export LAGO_LIBVIRT_TEST_STRICT=1
if [ "${E2E_REMOTE:-1}" = 1 ]; then
	# The remote-mode test must not fall back to the local daemon.
	export LAGO_LIBVIRT_TEST_REQUIRE_REMOTE=1
fi
export LAGO_LIBVIRT_TEST_DIR="$E2E_ROOT/work"
LAGO_LIBVIRT_TEST_TEMPLATE="$(dirname "$template_repo")/tiny.qcow2"
export LAGO_LIBVIRT_TEST_TEMPLATE
export HOME="$E2E_ROOT/home" # no stray ~/.config/lago/lago.conf of the developer
# Tests build nothing inside the namespace: it has no route to the proxy.
orig_goproxy="$(go env GOPROXY)"
export GOPROXY=off
gocache="$(go env GOCACHE)"
gomodcache="$(go env GOMODCACHE)"
export GOCACHE="$gocache" GOMODCACHE="$gomodcache"

# run_suite NAME DIR N ARGS... compiles the tests with the first N ARGS
# (packages and build flags) outside the namespace, where the module proxy is
# reachable, then runs them inside it with all ARGS.
run_suite() {
	local name="$1" dir="$2" n="$3" rc=0
	shift 3
	local build=("${@:1:$n}")
	e2e_log "== $name: compiling"
	if ! (cd "$dir" && GOPROXY="$orig_goproxy" go test -race -count=1 -run '^$' "${build[@]}" >"$log_dir/$name.build.log" 2>&1); then
		tail -n 30 "$log_dir/$name.build.log" >&2
		result[$name]="FAIL (does not compile, $log_dir/$name.build.log)"
		status=1
		return 0
	fi
	e2e_log "== $name: running in netns $E2E_NS"
	(cd "$dir" && e2e_in_ns go test -race -count=1 -v "$@") 2>&1 | tee "$log_dir/$name.log" || rc=$?
	if ! result[$name]="$(e2e_judge "$rc" "$log_dir/$name.log")"; then
		grep -B1 -A3 -- '^\s*--- SKIP' "$log_dir/$name.log" | sed 's/^/  /' >&2 || true
		status=1
	fi
}

only="${E2E_ONLY:-all}"
if [ "$only" = all ] || [ "$only" = provider ]; then
	run_suite provider-libvirt "$repo/plugins/provider-libvirt" 1 ./...
fi
if [ "$only" = all ] || [ "$only" = core ]; then
	run_suite core-e2e "$repo/core" 3 -tags e2e ./e2e -timeout 60m "$@"
fi
if [ "$only" = all ] || [ "$only" = api ]; then
	# The Go API's runnable examples, against real VMs (core/lago).
	run_suite go-api-examples "$repo/core" 3 -tags e2e ./lago -timeout 30m -run '^Example'
	# A Go test suite of its own module using lagotest, as a user's would:
	# its configuration is a lago.conf named by LAGO_CONFIG.
	cat >"$E2E_ROOT/gotest.conf" <<EOF
[lago]
lease_dir = $E2E_ROOT/leases
[init]
template_store = $E2E_ROOT/store
template_repos = $E2E_ROOT/repos
template_repo_path = $template_repo
skip_bootstrap = True
[provider local-libvirt]
plugin = libvirt
domain_type = qemu
EOF
	mkdir -p "$E2E_ROOT/work"
	GOWORK=off LAGO_CONFIG="$E2E_ROOT/gotest.conf" LAGO_TEST_WORKDIR="$E2E_ROOT/work" LAGO_TEST_ARTIFACTS="$log_dir/gotest-artifacts" \
		run_suite gotest-example "$repo/examples/gotest" 2 -tags e2e ./... -timeout 30m
fi
