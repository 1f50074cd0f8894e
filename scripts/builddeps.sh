#!/usr/bin/env bash
# builddeps.sh checks, in one line, that the build's non-Go dependencies are
# present (the libvirt provider links libvirt through cgo), so a fresh `make`
# says what is missing instead of printing pages of pkg-config errors.
set -euo pipefail
missing=()
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
if ! command -v pkg-config >/dev/null 2>&1; then
	missing+=(pkg-config)
elif ! pkg-config --exists libvirt libvirt-admin libvirt-lxc libvirt-qemu 2>/dev/null; then
	missing+=(libvirt-dev)
fi
if ! command -v go >/dev/null 2>&1; then
	missing+=("go (1.26, at /usr/local/go/bin)")
fi
if [ "${#missing[@]}" -gt 0 ]; then
	echo "make: missing build dependencies: ${missing[*]}; run 'make deps' (as root) to install them" >&2
	exit 1
fi
