// Command fetchbench measures template downloads over loopback HTTP against
// the shell baseline `curl -s URL | xz -d | sha1sum` on the same file in the
// same run. It generates a compressible image of LAGO_BENCH_FETCH_MB MiB
// (default 500) under LAGO_BENCH_DIR (default /var/tmp), compresses it with
// `xz -T2 -1`, serves both over 127.0.0.1 and prints "name: value unit"
// lines; each case runs LAGO_BENCH_REPEAT times (default 1) and the best run
// counts. LAGO_BENCH_FETCH_GO=0 skips the slow pure-Go decoder case;
// LAGO_BENCH_CPUPROFILE=file writes a CPU profile of the runs.
package main

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lago-go/lago/core/template"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fetchbench:", err)
		os.Exit(1)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v >= 0 {
		return v
	}
	return def
}

func run() error {
	mb := envInt("LAGO_BENCH_FETCH_MB", 500)
	repeat := max(envInt("LAGO_BENCH_REPEAT", 1), 1)
	base := os.Getenv("LAGO_BENCH_DIR")
	if base == "" {
		base = "/var/tmp"
	}
	for _, tool := range []string{"curl", "xz", "sha1sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("the baseline needs %s: %w", tool, err)
		}
	}
	dir, err := os.MkdirTemp(base, "lago-fetchbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	repoDir := filepath.Join(dir, "repo")
	if err := os.Mkdir(repoDir, 0o755); err != nil {
		return err
	}

	t0 := time.Now()
	img := filepath.Join(repoDir, "bench.qcow2")
	sum, err := generate(img, int64(mb)<<20)
	if err != nil {
		return err
	}
	genTime := time.Since(t0)
	t0 = time.Now()
	if err := compress(img); err != nil {
		return err
	}
	xzTime := time.Since(t0)
	st, err := os.Stat(img + ".xz")
	if err != nil {
		return err
	}
	if err := os.WriteFile(img+".hash", []byte(sum), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(img+".metadata", []byte(`{"distro": "bench"}`), 0o644); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(repoDir))}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/"

	size := float64(int64(mb) << 20)
	fmt.Printf("fetch_image_size: %d MiB\n", mb)
	fmt.Printf("fetch_image_xz_size: %.1f MiB\n", float64(st.Size())/(1<<20))
	fmt.Printf("fetch_generate_time: %.2f s\n", genTime.Seconds())
	fmt.Printf("fetch_compress_time: %.2f s\n", xzTime.Seconds())

	type result struct {
		name string
		best time.Duration
	}
	var results []result
	bench := func(name string, f func() error) error {
		best, bestCPU := time.Duration(0), time.Duration(0)
		for range repeat {
			t, c := time.Now(), cpuTime()
			if err := f(); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if d := time.Since(t); best == 0 || d < best {
				best = d
			}
			if d := cpuTime() - c; bestCPU == 0 || d < bestCPU {
				bestCPU = d
			}
		}
		results = append(results, result{name, best})
		fmt.Printf("%s_time: %.3f s\n", name, best.Seconds())
		fmt.Printf("%s_throughput: %.1f MiB/s\n", name, size/(1<<20)/best.Seconds())
		// CPU seconds (this process, its server and its children) are a
		// steadier figure than wall time on a shared machine.
		fmt.Printf("%s_cpu: %.3f s\n", name, bestCPU.Seconds())
		return nil
	}
	lago := func(sub string, configure func(*template.Store), handle string) func() error {
		return func() error {
			return fetch(dir, url, sum, handle, configure)
		}
	}

	xzThreads := func(n int) func(*template.Store) {
		return func(s *template.Store) { s.Decompressor = template.DecompressExec; s.XZThreads = n }
	}
	cases := []struct {
		name string
		f    func() error
	}{
		{"baseline_curl_xz_sha1sum", func() error {
			return pipeline(sum, []string{"curl", "-s", url + "bench.qcow2.xz"}, []string{"xz", "-d"}, []string{"sha1sum"})
		}},
		{"lago_xz_exec", lago("exec", xzThreads(0), "bench.qcow2")},
		{"lago_xz_exec_T1", lago("exec", xzThreads(1), "bench.qcow2")},
		{"lago_xz_exec_nosync", lago("exec", func(s *template.Store) { xzThreads(0)(s); s.NoSync = true }, "bench.qcow2")},
		{"baseline_curl_sha1sum_plain", func() error { return pipeline(sum, []string{"curl", "-s", url + "bench.qcow2"}, []string{"sha1sum"}) }},
		{"baseline_curl_tee_sha1sum_sync_plain", func() error {
			out := filepath.Join(dir, "tee.out")
			defer os.Remove(out)
			if err := pipeline(sum, []string{"curl", "-s", url + "bench.qcow2"}, []string{"tee", out}, []string{"sha1sum"}); err != nil {
				return err
			}
			return exec.Command("sync", out).Run()
		}},
		{"lago_plain", lago("plain", nil, "plain/bench.qcow2")},
		{"lago_plain_nosync", lago("plain", func(s *template.Store) { s.NoSync = true }, "plain/bench.qcow2")},
	}
	if envInt("LAGO_BENCH_FETCH_GO", 1) != 0 {
		cases = append(cases, struct {
			name string
			f    func() error
		}{"lago_xz_go", lago("go", func(s *template.Store) { s.Decompressor = template.DecompressGo }, "bench.qcow2")})
	}
	// The plain case needs a folder without the .xz beside the image.
	plainDir := filepath.Join(repoDir, "plain")
	if err := os.Mkdir(plainDir, 0o755); err != nil {
		return err
	}
	for _, ext := range []string{"", ".hash", ".metadata"} {
		if err := os.Link(img+ext, filepath.Join(plainDir, "bench.qcow2"+ext)); err != nil {
			return err
		}
	}
	if p := os.Getenv("LAGO_BENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	for _, c := range cases {
		if err := bench(c.name, c.f); err != nil {
			return err
		}
	}
	get := func(name string) time.Duration {
		for _, r := range results {
			if r.name == name {
				return r.best
			}
		}
		return 0
	}
	ratio := func(name, lagoCase, baseCase string) {
		if l, b := get(lagoCase), get(baseCase); l > 0 && b > 0 {
			fmt.Printf("%s: %.2f x\n", name, b.Seconds()/l.Seconds())
		}
	}
	ratio("fetch_ratio_xz_exec_vs_baseline", "lago_xz_exec", "baseline_curl_xz_sha1sum")
	ratio("fetch_ratio_xz_exec_T1_vs_baseline", "lago_xz_exec_T1", "baseline_curl_xz_sha1sum")
	ratio("fetch_ratio_xz_exec_nosync_vs_baseline", "lago_xz_exec_nosync", "baseline_curl_xz_sha1sum")
	ratio("fetch_ratio_xz_go_vs_baseline", "lago_xz_go", "baseline_curl_xz_sha1sum")
	ratio("fetch_ratio_plain_vs_baseline", "lago_plain", "baseline_curl_sha1sum_plain")
	ratio("fetch_ratio_plain_nosync_vs_baseline", "lago_plain_nosync", "baseline_curl_sha1sum_plain")
	ratio("fetch_ratio_plain_vs_baseline_with_disk", "lago_plain", "baseline_curl_tee_sha1sum_sync_plain")
	return nil
}

// cpuTime is the user+system time used so far by this process and its
// waited-for children.
func cpuTime() time.Duration {
	var self, kids syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime)
}

// fetch downloads the benchmark image into a fresh store and removes it.
func fetch(dir, url, sum, handle string, configure func(*template.Store)) error {
	repo, err := template.ParseRepo(repoJSON(url, handle), url+"repo.metadata")
	if err != nil {
		return err
	}
	s := &template.Store{Dir: filepath.Join(dir, "store")}
	if configure != nil {
		configure(s)
	}
	defer os.RemoveAll(s.Dir)
	img, err := s.Get(context.Background(), repo, "bench", "", nil)
	if err != nil {
		return err
	}
	if img.Hash != sum {
		return fmt.Errorf("stored hash %s, want %s", img.Hash, sum)
	}
	return nil
}

func repoJSON(url, handle string) []byte {
	b, _ := json.Marshal(map[string]any{
		"name":    "bench",
		"sources": map[string]any{"web": map[string]any{"type": "http", "args": map[string]string{"baseurl": url}}},
		"templates": map[string]any{"bench": map[string]any{"versions": map[string]any{
			"v1": map[string]any{"source": "web", "handle": handle, "timestamp": 1},
		}}},
	})
	return b
}

// pipeline runs argv stages connected by pipes, like a shell pipeline, and
// checks that the last stage printed sum.
func pipeline(sum string, stages ...[]string) error {
	cmds := make([]*exec.Cmd, len(stages))
	for i, argv := range stages {
		cmds[i] = exec.Command(argv[0], argv[1:]...)
		cmds[i].Stderr = os.Stderr
	}
	for i := 1; i < len(cmds); i++ {
		out, err := cmds[i-1].StdoutPipe()
		if err != nil {
			return err
		}
		cmds[i].Stdin = out
	}
	var last strings.Builder
	cmds[len(cmds)-1].Stdout = &last
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			return err
		}
	}
	var errs []error
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Path, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if got := strings.Fields(last.String()); len(got) == 0 || got[0] != sum {
		return fmt.Errorf("pipeline printed %q, want %s", last.String(), sum)
	}
	return nil
}

// generate writes n bytes that compress roughly like a disk image: half
// zeros (unused space), a third repeated low-entropy content (files that
// occur more than once: text, code, libraries) and the rest random bytes
// (already compressed data); it returns their sha1.
func generate(path string, n int64) (string, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	h := sha1.New()
	out := io.MultiWriter(w, h)
	r := rand.New(rand.NewPCG(1, 2))
	const blockSize = 64 << 10
	pool := make([]byte, 512<<10)
	for i := range pool {
		pool[i] = "etaoinshrdlu \n{}();="[r.IntN(20)]
	}
	block := make([]byte, blockSize)
	for left := n; left > 0; {
		b := block[:min(int64(len(block)), left)]
		switch k := r.IntN(12); {
		case k < 6:
			clear(b)
		case k < 10:
			off := r.IntN(len(pool) - blockSize)
			copy(b, pool[off:off+len(b)])
		default:
			for i := 0; i+8 <= len(b); i += 8 {
				v := r.Uint64()
				for j := range 8 {
					b[i+j] = byte(v >> (8 * j))
				}
			}
		}
		if left == n {
			copy(b, "QFI\xfb")
		}
		if _, err := out.Write(b); err != nil {
			return "", err
		}
		left -= int64(len(b))
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), f.Close()
}

func compress(path string) error {
	cmd := exec.Command("xz", "-T2", "-1", "-k", "-f", path)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("xz -T2 -1 %s: %w", path, err)
	}
	return nil
}
