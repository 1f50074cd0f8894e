#!/usr/bin/env bash
# help.sh measures how fast `lago --help` starts compared with a trivial Go
# hello-world built in the same run, and its peak RSS. Targets: at most 3x
# the hello-world's median wall time, peak RSS below 40 MB, no plugin
# process started.
#
# Usage: test/bench/help.sh [RUNS] [LAGO]   (default 50 runs of bin/lago;
# make bin/lago first). bin/lago should be the light front-end
# (CGO_ENABLED=0 go build -tags lagolight), which links no gRPC and needs no
# dynamic loader; the full engine is measured too when
# libexec/lago/lago-engine exists beside it.
set -euo pipefail

runs=${1:-50}
root=$(cd "$(dirname "$0")/../.." && pwd)
lago=${2:-$root/bin/lago}
[[ -x $lago ]] || { echo "help.sh: $lago missing; run make bin/lago" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The baseline: a trivial Go program, built with the same flags as lago.
mkdir -p "$tmp/hello"
cat >"$tmp/hello/main.go" <<'GO'
package main

import "fmt"

func main() { fmt.Println("hello") }
GO
printf 'module hello\n\ngo 1.26\n' >"$tmp/hello/go.mod"
(cd "$tmp/hello" && GOWORK=off go build -trimpath -ldflags '-s -w' -o "$tmp/hello-bin" .)

# Isolate lago from the caller's config and describe cache so every run is
# the same; the cache is warmed once so no plugin describe happens below.
export HOME="$tmp/home" XDG_CACHE_HOME="$tmp/cache" XDG_CONFIG_HOME="$tmp/config"
mkdir -p "$HOME"
"$lago" --help >/dev/null 2>&1 || true

# median_ms CMD... prints the median wall time in milliseconds.
median_ms() {
	if command -v hyperfine >/dev/null; then
		hyperfine -N --warmup 5 --runs "$runs" --export-json "$tmp/h.json" "$*" >/dev/null 2>&1
		python3 -c 'import json,sys; print("%.3f" % (json.load(open(sys.argv[1]))["results"][0]["median"]*1000))' "$tmp/h.json"
	else
		local i t0 t1
		: >"$tmp/times"
		for ((i = 0; i < runs; i++)); do
			t0=$(date +%s%N); "$@" >/dev/null 2>&1 || true; t1=$(date +%s%N)
			echo $(((t1 - t0) / 1000)) >>"$tmp/times"
		done
		sort -n "$tmp/times" | awk '{a[NR]=$1} END {printf "%.3f\n", a[int((NR+1)/2)]/1000}'
	fi
}

# peak_rss_kb CMD... prints the peak resident set size in KiB.
peak_rss_kb() {
	if [[ -x /usr/bin/time ]]; then
		/usr/bin/time -f %M -o "$tmp/rss" "$@" >/dev/null 2>&1 || true
		tail -n1 "$tmp/rss"
	else
		mkdir -p "$tmp/rsswrap"
		cat >"$tmp/rsswrap/main.go" <<'GO'
package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

func main() {
	c := exec.Command(os.Args[1], os.Args[2:]...)
	_ = c.Run()
	fmt.Println(c.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)
}
GO
		printf 'module rsswrap\n\ngo 1.26\n' >"$tmp/rsswrap/go.mod"
		(cd "$tmp/rsswrap" && GOWORK=off go build -o "$tmp/rsswrap-bin" .)
		"$tmp/rsswrap-bin" "$@"
	fi
}

# plugin_starts counts lago-plugin-* processes started while lago --help
# runs, by tracing exec calls when strace is present.
plugin_starts() {
	if command -v strace >/dev/null; then
		strace -f -qq -e trace=execve -o "$tmp/strace" "$lago" --help >/dev/null 2>&1 || true
		grep -c 'lago-plugin-' "$tmp/strace" || true
	else
		echo "n/a (no strace)"
	fi
}

hello_ms=$(median_ms "$tmp/hello-bin")
lago_ms=$(median_ms "$lago" --help)
hello_rss=$(peak_rss_kb "$tmp/hello-bin")
lago_rss=$(peak_rss_kb "$lago" --help)
ratio=$(python3 -c "print('%.2f' % ($lago_ms / $hello_ms))")

echo "runs:                    $runs"
echo "hello-world median:      ${hello_ms} ms"
echo "lago --help median:      ${lago_ms} ms"
echo "ratio lago/hello:        ${ratio}x (target <= 3x)"
echo "hello-world peak RSS:    $((hello_rss / 1024)) MB (${hello_rss} KiB)"
echo "lago --help peak RSS:    $((lago_rss / 1024)) MB (${lago_rss} KiB) (target < 40 MB)"
echo "plugin processes started by lago --help: $(plugin_starts)"
if command -v go >/dev/null && go version -m "$lago" 2>/dev/null | grep -q 'google.golang.org/grpc'; then
	echo "note: $lago links gRPC (not the light front-end)"
fi
if command -v file >/dev/null && file -L "$lago" | grep -q 'dynamically linked'; then
	echo "note: $lago is dynamically linked (build it with CGO_ENABLED=0)"
fi
engine="$(dirname "$lago")/../libexec/lago/lago-engine"
if [[ -x $engine ]]; then
	engine_ms=$(median_ms "$engine" --help)
	echo "full engine --help median: ${engine_ms} ms ($(python3 -c "print('%.2f' % ($engine_ms / $hello_ms))")x hello)"
fi
