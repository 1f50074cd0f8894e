#!/usr/bin/env bash
# Subnet lease acquisition under contention: LAGO_BENCH_LEASE_PROCS processes
# (default 32) each lease LAGO_BENCH_LEASE_N subnets (default 1) from one fresh
# store at the same moment. Prints "name: value unit" lines.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$root/core" && go build -o "$tmp/leasebench" ./lease/cmd/leasebench)
"$tmp/leasebench"
