#!/usr/bin/env bash
# help.sh measures how fast `lago --help` starts compared with a trivial Go
# hello-world built in the same run, and its peak RSS. Targets: at most 3x
# the hello-world's median wall time, peak RSS below 40 MB, no plugin
# process started.
#
# Usage: test/bench/help.sh [RUNS] [LAGO]   (default 100 runs of bin/lago;
# make bin/lago first). bin/lago should be the front-end
# (cd cmd/lago && CGO_ENABLED=0 go build .), which links no gRPC and needs no
# dynamic loader; the engine (cmd/lago/engine) is measured too when
# libexec/lago/lago-engine exists beside it.
#
# The runs of the two programs are interleaved by a small Go harness, so a
# change in machine load hits both alike; hyperfine, which runs one
# benchmark after the other, is used for a second opinion when present.
set -euo pipefail

runs=${1:-100}
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
(cd "$tmp/hello" && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$tmp/hello-bin" .)

# The harness: runs each command N times, interleaved, and prints per
# command the median wall time, median user+system CPU time and the peak
# RSS (from rusage).
mkdir -p "$tmp/harness"
cat >"$tmp/harness/main.go" <<'GO'
package main

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func median(d []float64) float64 {
	sort.Float64s(d)
	return d[len(d)/2]
}

func main() {
	runs, _ := strconv.Atoi(os.Args[1])
	cmds := os.Args[2:] // each a space-separated command line
	wall := make([][]float64, len(cmds))
	cpu := make([][]float64, len(cmds))
	rss := make([]int64, len(cmds))
	for i := -5; i < runs; i++ { // 5 warm-up rounds
		for j, c := range cmds {
			argv := strings.Fields(c)
			cmd := exec.Command(argv[0], argv[1:]...)
			t0 := time.Now()
			if err := cmd.Run(); err != nil {
				fmt.Fprintln(os.Stderr, c, err)
				os.Exit(1)
			}
			el := time.Since(t0)
			if i < 0 {
				continue
			}
			ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			wall[j] = append(wall[j], float64(el.Microseconds())/1000)
			cpu[j] = append(cpu[j], float64((cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime()).Microseconds())/1000)
			rss[j] = max(rss[j], ru.Maxrss)
		}
	}
	for j := range cmds {
		fmt.Printf("%.3f %.3f %d\n", median(wall[j]), median(cpu[j]), rss[j])
	}
}
GO
printf 'module harness\n\ngo 1.26\n' >"$tmp/harness/go.mod"
(cd "$tmp/harness" && GOWORK=off go build -o "$tmp/harness-bin" .)

# Isolate lago from the caller's config and describe cache so every run is
# the same; the cache is warmed once so no plugin describe happens below.
export HOME="$tmp/home" XDG_CACHE_HOME="$tmp/cache" XDG_CONFIG_HOME="$tmp/config"
mkdir -p "$HOME"
"$lago" --help >/dev/null 2>&1 || true

engine="$(dirname "$lago")/../libexec/lago/lago-engine"
cmds=("$tmp/hello-bin" "$lago --help")
[[ -x $engine ]] && cmds+=("$engine --help")
mapfile -t res < <("$tmp/harness-bin" "$runs" "${cmds[@]}")
read -r hello_ms hello_cpu hello_rss <<<"${res[0]}"
read -r lago_ms lago_cpu lago_rss <<<"${res[1]}"
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
# rusage of a child counts the forking parent's pages too (the harness's
# ~5 MB), so prefer GNU time, whose own footprint is small.
if [[ -x /usr/bin/time ]]; then
	/usr/bin/time -f %M -o "$tmp/rss" "$tmp/hello-bin" >/dev/null 2>&1 && hello_rss=$(tail -n1 "$tmp/rss")
	/usr/bin/time -f %M -o "$tmp/rss" "$lago" --help >/dev/null 2>&1 && lago_rss=$(tail -n1 "$tmp/rss")
fi

echo "runs (interleaved):       $runs"
echo "hello-world median:       ${hello_ms} ms wall, ${hello_cpu} ms cpu"
echo "lago --help median:       ${lago_ms} ms wall, ${lago_cpu} ms cpu"
echo "ratio lago/hello:         $(ratio "$lago_ms" "$hello_ms")x wall (target <= 3x), $(ratio "$lago_cpu" "$hello_cpu")x cpu"
echo "hello-world peak RSS:     $((hello_rss / 1024)) MB (${hello_rss} KiB)"
echo "lago --help peak RSS:     $((lago_rss / 1024)) MB (${lago_rss} KiB) (target < 40 MB)"
if [[ ${#res[@]} -gt 2 ]]; then
	read -r eng_ms eng_cpu eng_rss <<<"${res[2]}"
	echo "full engine --help:       ${eng_ms} ms wall ($(ratio "$eng_ms" "$hello_ms")x), ${eng_cpu} ms cpu, $((eng_rss / 1024)) MB"
fi

# Plugin processes started by lago --help, by tracing exec calls.
if command -v strace >/dev/null; then
	strace -f -qq -e trace=execve -o "$tmp/strace" "$lago" --help >/dev/null 2>&1 || true
	echo "plugin processes started by lago --help: $(grep -c 'lago-plugin-' "$tmp/strace" || true)"
else
	echo "plugin processes started by lago --help: n/a (no strace)"
fi

if command -v hyperfine >/dev/null; then
	hyperfine -N --warmup 5 --runs "$runs" --export-json "$tmp/h.json" "$tmp/hello-bin" "$lago --help" >/dev/null 2>&1
	python3 - "$tmp/h.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
print("hyperfine (sequential):   hello %.3f ms, lago --help %.3f ms median, ratio %.2fx"
      % (r[0]["median"] * 1e3, r[1]["median"] * 1e3, r[1]["median"] / r[0]["median"]))
PY
fi
if command -v go >/dev/null && go version -m "$lago" 2>/dev/null | grep -q 'google.golang.org/grpc'; then
	echo "note: $lago links gRPC (not the front-end)"
fi
if command -v file >/dev/null && file -L "$lago" | grep -q 'dynamically linked'; then
	echo "note: $lago is dynamically linked (build it with CGO_ENABLED=0)"
fi
