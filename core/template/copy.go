package template

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
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
