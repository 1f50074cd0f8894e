#!/usr/bin/env bash
# deps.sh installs, on Debian 12 as root, everything lago's build, tests,
# benchmarks and demo need: build tools here, the hypervisor and template
# recipe packages from test/e2e/deps.sh (the one list for those).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
build_pkgs=(protobuf-compiler pkg-config gcc make git hyperfine time ansible-core)
missing=()
for p in "${build_pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
	echo "deps: Go 1.26 is required (expected at /usr/local/go)" >&2
	exit 1
fi
bash test/e2e/deps.sh
