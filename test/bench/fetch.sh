#!/usr/bin/env bash
# Template fetch over loopback HTTP against `curl -s URL | xz -d | sha1sum`
# on the same file in the same run. Sizes and repeats come from the
# environment: LAGO_BENCH_FETCH_MB (default 500), LAGO_BENCH_REPEAT (default 1),
# LAGO_BENCH_DIR (default /var/tmp; the generated files are deleted at the
# end), LAGO_BENCH_FETCH_GO=0 to skip the slow pure-Go decoder case.
# Prints "name: value unit" lines; fetch_ratio_* > 1 means faster than the
# baseline.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$root/core" && go build -o "$tmp/fetchbench" ./template/cmd/fetchbench)
"$tmp/fetchbench"
