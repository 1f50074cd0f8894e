#!/usr/bin/env bash
# run.sh is `make bench`: every benchmark of the project, each printing its
# figures next to a baseline measured in the same run.
#   help.sh    lago --help vs a trivial Go binary; peak RSS
#   plugins    first call to an output plugin, warm RPC round trip (Go bench)
#   leases.sh  32 concurrent lease acquisitions
#   fetch.sh   template download vs curl | xz -d | sha1sum (LAGO_BENCH_FETCH_MB)
#   vms.sh     init/start/stop/status/shell/destroy with real guests vs the floor
#   bootstrap.sh  init with bootstrap of 1 and 3 VMs vs parallel virt-sysprep
#   copymem    1 GiB copied to and from an in-process ssh server: peak Go heap
#   copy.sh    collect, copy-to/from-vm vs ssh tar, scp; ansible_hosts time
#   export.sh  export --standalone --compress of a 1 GiB disk vs qemu-img + xz
# Set LAGO_BENCH_ONLY="help plugins" to run a subset.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
only="${LAGO_BENCH_ONLY:-help plugins leases fetch vms bootstrap copymem copy export}"
want() { [[ " $only " == *" $1 "* ]]; }

if want help; then echo "== lago --help start-up"; "$here/help.sh" 200; fi
if want plugins; then
	echo "== plugin calls"
	(cd "$root/core" && go test -run '^$' -bench . -benchtime 50x ./pluginhost/ | grep -E '^Benchmark|ms|ns/op')
fi
if want leases; then echo "== subnet leases"; "$here/leases.sh"; fi
if want fetch; then echo "== template fetch"; "$here/fetch.sh"; fi
if want vms; then echo "== real guests"; "$here/vms.sh"; fi
if want bootstrap; then echo "== bootstrap"; "$here/bootstrap.sh"; fi
if want copymem; then
	echo "== copy memory"
	(cd "$root/core" && go test -v -tags lagobench -count=1 -run TestCopyStreamsInConstantMemory ./ssh/ | grep -E 'GiB|FAIL|ok')
fi
if want copy; then echo "== copy, collect, inventory"; "$here/copy.sh"; fi
if want export; then echo "== export"; "$here/export.sh"; fi
