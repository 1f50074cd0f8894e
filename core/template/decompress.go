package template

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"

	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"
)

// Decompressor choices for Store.Decompressor.
const (
	// DecompressAuto uses the xz binary when it is on PATH, else the Go decoder.
	DecompressAuto = ""
	// DecompressExec pipes through `xz -dc`, several times faster than the Go decoder.
	DecompressExec = "exec"
	// DecompressGo uses the pure Go decoder (github.com/ulikunitz/xz).
	DecompressGo = "go"
)

// pipeSize is the capacity asked for the pipe from xz: large writes mean
// fewer wake-ups of both processes.
const pipeSize = 1 << 20

// decompressed is a reader of decompressed bytes; Close stops the decoder
// and reports its failure, if any.
type decompressed interface {
	io.Reader
	Close() error
}

// xzReader returns a reader of the decompressed in. mode picks the decoder;
// threads is Store.XZThreads.
func xzReader(ctx context.Context, in io.Reader, mode string, threads int) (decompressed, error) {
	switch mode {
	case DecompressGo:
		return goXZ(in)
	case DecompressExec, DecompressAuto:
		bin, err := exec.LookPath("xz")
		if err != nil {
			if mode == DecompressExec {
				return nil, fmt.Errorf("decompress template: xz binary: %w", err)
			}
			return goXZ(in)
		}
		return execXZ(ctx, bin, in, threads)
	}
	return nil, fmt.Errorf("decompress template: unknown decompressor %q (want exec or go)", mode)
}

type goReader struct{ *xz.Reader }

func (goReader) Close() error { return nil }

func goXZ(in io.Reader) (decompressed, error) {
	cfg := xz.ReaderConfig{SingleStream: false}
	r, err := cfg.NewReader(in)
	if err != nil {
		return nil, fmt.Errorf("decompress template: %w", err)
	}
	return goReader{r}, nil
}

// execReader reads xz's output while a goroutine feeds xz its input from
// the network stream. Feeding it ourselves, rather than through exec's
// Stdin copier, lets a network failure be reported as itself instead of as
// xz's "unexpected end of input".
type execReader struct {
	cmd    *exec.Cmd
	out    *os.File
	stderr *bytes.Buffer
	cancel context.CancelFunc
	fed    chan error
	once   sync.Once
	err    error
}

func execXZ(ctx context.Context, bin string, in io.Reader, threads int) (decompressed, error) {
	args := []string{"-dc"}
	// -T0: a thread per core. xz 5.4 decompresses multi-block files (what
	// `xz -T` makes) in parallel, and single-block ones as before.
	args = append(args, "-T"+strconv.Itoa(max(threads, 0)))
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("decompress template: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("decompress template: %w", err)
	}
	// Best effort: bigger pipes only save context switches.
	_, _ = unix.FcntlInt(inW.Fd(), unix.F_SETPIPE_SZ, pipeSize)
	_, _ = unix.FcntlInt(outW.Fd(), unix.F_SETPIPE_SZ, pipeSize)
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin, cmd.Stdout = inR, outW
	stderr := &bytes.Buffer{}
	cmd.Stderr = &limitedBuffer{b: stderr, max: 4096}
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		cancel()
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("decompress template: start %s: %w", bin, err)
	}
	e := &execReader{cmd: cmd, out: outR, stderr: stderr, cancel: cancel, fed: make(chan error, 1)}
	go func() {
		buf := make([]byte, 256<<10)
		_, err := io.CopyBuffer(inW, in, buf)
		inW.Close()
		e.fed <- err
	}()
	return e, nil
}

func (e *execReader) Read(p []byte) (int, error) {
	n, err := e.out.Read(p)
	if err == io.EOF {
		// The output ended: xz must also have succeeded, or the data is
		// truncated or corrupt.
		if werr := e.wait(); werr != nil {
			return n, werr
		}
	}
	return n, err
}

// Close stops xz if it still runs and returns its failure. The caller
// closes the input stream first, so the feeding goroutine ends too.
func (e *execReader) Close() error {
	e.cancel()
	e.out.Close()
	return e.wait()
}

func (e *execReader) wait() error {
	e.once.Do(func() {
		werr := e.cmd.Wait()
		ferr := <-e.fed
		e.cancel()
		switch {
		case ferr != nil && !errors.Is(ferr, unix.EPIPE) && !errors.Is(ferr, os.ErrClosed):
			e.err = fmt.Errorf("read compressed template: %w", ferr)
		case werr != nil:
			msg := bytes.TrimSpace(e.stderr.Bytes())
			var ee *exec.ExitError
			if errors.As(werr, &ee) && len(msg) > 0 {
				werr = fmt.Errorf("%w: %s", werr, msg)
			}
			e.err = fmt.Errorf("decompress template with xz: %w", werr)
		case ferr != nil:
			e.err = fmt.Errorf("feed xz: %w", ferr)
		}
	})
	return e.err
}

type limitedBuffer struct {
	mu  sync.Mutex
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - l.b.Len(); room > 0 {
		if len(p) > room {
			l.b.Write(p[:room])
		} else {
			l.b.Write(p)
		}
	}
	return len(p), nil
}
