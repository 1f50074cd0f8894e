//go:build lagobench

package ssh

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lago-go/lago/core/ssh/sshtest"
)

// copyMemoryCap is what Push and Pull may hold in memory while they stream
// a file many times larger: a copy is streamed, so its memory is the
// buffers', whatever the file's size.
const copyMemoryCap = 64 << 20

// TestCopyStreamsInConstantMemory (make bench) copies a 1 GiB file to a
// guest (here: the host's /bin/sh behind an in-process ssh server) and
// back, sampling the Go heap every 10 ms, and prints the throughput and
// the peak heap next to the file's size. It fails when the peak passes
// copyMemoryCap.
func TestCopyStreamsInConstantMemory(t *testing.T) {
	const size = 1 << 30
	dir := t.TempDir()
	src := filepath.Join(dir, "big")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	// Data, not a hole: some blocks of it every MiB, so nothing can be
	// skipped as sparse and the transport really carries 1 GiB.
	block := make([]byte, 4096)
	for i := range block {
		block[i] = byte(i*7 + 1)
	}
	for off := int64(0); off < size; off += 1 << 20 {
		for j := int64(0); j < 256; j++ {
			if _, err := f.WriteAt(block, off+j*4096); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
	c := dialT(t, Target{Addr: srv.Addr(), Password: "pw"})
	guest := filepath.Join(dir, "guest")
	back := filepath.Join(dir, "back")
	for _, d := range []string{guest, back} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	measure := func(what string, do func() error) {
		var peak atomic.Uint64
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			var m runtime.MemStats
			for {
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		}()
		began := time.Now()
		err := do()
		took := time.Since(began)
		close(stop)
		<-done
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		grew := int64(peak.Load()) - int64(base.HeapInuse)
		fmt.Printf("%s 1 GiB: %s (%.0f MB/s), peak Go heap %d MiB above the start (%.3f of the file; cap %d MiB)\n",
			what, took.Round(time.Millisecond), float64(size)/1e6/took.Seconds(), grew>>20, float64(grew)/size, copyMemoryCap>>20)
		if grew > copyMemoryCap {
			t.Errorf("%s of 1 GiB held %d MiB of heap, more than %d MiB: not streamed", what, grew>>20, copyMemoryCap>>20)
		}
	}
	ctx := context.Background()
	measure("copy-to-vm (Push)", func() error { return Push(ctx, c, src, filepath.Join(guest, "big")) })
	measure("copy-from-vm (Pull)", func() error {
		_, err := Pull(ctx, c, back, []PullItem{{Remote: filepath.Join(guest, "big"), Name: "big"}}, PullOptions{})
		return err
	})
	if st, err := os.Stat(filepath.Join(back, "big")); err != nil || st.Size() != size {
		t.Fatalf("copied back: %v %v, want %d bytes", st, err, size)
	}
}
