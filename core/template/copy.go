package template

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

const (
	chunkSize = 1 << 20
	chunks    = 8
)

// copyParallel copies src to dst and into h, reading, hashing and writing
// different chunks at the same time: on a download that is decompressed by
// another process, this keeps our single pass from being the bottleneck.
func copyParallel(ctx context.Context, dst io.Writer, h hash.Hash, src io.Reader) (int64, error) {
	type chunk struct {
		buf []byte
		n   int
	}
	free := make(chan []byte, chunks)
	for range chunks {
		free <- make([]byte, chunkSize)
	}
	toHash := make(chan chunk, chunks)
	toWrite := make(chan chunk, chunks)
	writeErr := make(chan error, 1)
	stop := make(chan struct{}) // closed when the writer failed

	go func() {
		for c := range toHash {
			h.Write(c.buf[:c.n])
			toWrite <- c
		}
		close(toWrite)
	}()
	go func() {
		var err error
		for c := range toWrite {
			if err == nil {
				if _, werr := dst.Write(c.buf[:c.n]); werr != nil {
					err = fmt.Errorf("write: %w", werr)
					close(stop)
				}
			}
			free <- c.buf
		}
		writeErr <- err
	}()

	var total int64
	var rerr error
	for rerr == nil {
		var buf []byte
		select {
		case buf = <-free:
		case <-stop:
			rerr = errors.New("writer stopped")
			continue
		case <-ctx.Done():
			rerr = ctx.Err()
			continue
		}
		n, err := io.ReadAtLeast(src, buf, 1)
		if n > 0 {
			total += int64(n)
			toHash <- chunk{buf, n}
		} else {
			free <- buf
		}
		if err == io.EOF {
			break
		}
		rerr = err
	}
	close(toHash)
	werr := <-writeErr
	if werr != nil {
		return total, werr
	}
	if rerr != nil {
		return total, rerr
	}
	return total, nil
}

// writebackEvery is how much a download writes before asking the kernel to
// start writing it to disk.
const writebackEvery = 16 << 20

// writebackFile starts the disk writes of a download as it goes
// (sync_file_range), so the fsync before publishing the image finds little
// left to do instead of the whole image, and the dirty page cache stays
// small. The hints are best effort; the fsync is what guarantees.
type writebackFile struct {
	f                *os.File
	written, started int64 // bytes written; bytes whose writeback was started
	prevOff, prevLen int64 // the range started before the latest one
}

func (w *writebackFile) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.written += int64(n)
	if w.written-w.started >= writebackEvery {
		fd := int(w.f.Fd())
		off, length := w.started, w.written-w.started
		// Start this range, then wait for the one before it: the disk works
		// while we decompress, and at most two ranges are ever dirty.
		_ = unix.SyncFileRange(fd, off, length, unix.SYNC_FILE_RANGE_WRITE)
		if w.prevLen > 0 {
			_ = unix.SyncFileRange(fd, w.prevOff, w.prevLen,
				unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
		}
		w.prevOff, w.prevLen = off, length
		w.started = w.written
	}
	return n, err
}
