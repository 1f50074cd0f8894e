package lago

import (
	"context"
	"io"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/lago-go/lago/core/env"
	lagossh "github.com/lago-go/lago/core/ssh"
)

// keptIdleMax bounds the idle connections kept per VM and login: a test
// that runs commands on one VM from several goroutines gets one
// connection per concurrent command, and keeps a few of them.
const keptIdleMax = 4

// keptSSH is the SSH of a Go program: each VM's connections stay open
// between commands for the Client's lifetime, so a command costs one ssh
// session (no process start, no login). A connection serves one command
// at a time (the guest's dropbear may not carry two sessions on one);
// concurrent commands on one VM open more connections. A stopped,
// rebooted or reverted VM drops its connections (Release), and a kept
// connection that turns out dead is replaced once, when the command had
// not started.
type keptSSH struct {
	inner env.SSHClient

	mu     sync.Mutex
	idle   map[string][]keptConn // by connection key
	closed bool
}

type keptConn struct {
	uuid, vm string
	cl       *lagossh.Client
}

var (
	_ env.SSH            = (*keptSSH)(nil)
	_ env.SSHCommandLine = (*keptSSH)(nil)
	_ env.SSHReleaser    = (*keptSSH)(nil)
	_ env.SSHConn        = (*keptSSH)(nil)
)

func newKeptSSH(inner env.SSHClient) *keptSSH {
	return &keptSSH{inner: inner, idle: map[string][]keptConn{}}
}

// key names one login to one VM of one prefix: a connection is reused
// only for the same address, user and credentials.
func keptKey(t env.SSHTarget) string {
	return t.UUID + "\x00" + t.VM + "\x00" + t.Host + "\x00" + strconv.Itoa(t.Port) + "\x00" + t.User + "\x00" + t.Password + "\x00" + t.KeyFile
}

// WaitReady implements env.SSH; the login it waited for is kept.
func (k *keptSSH) WaitReady(ctx context.Context, t env.SSHTarget) error {
	cl, err := lagossh.DialWait(ctx, t.Target(), 0)
	if err != nil {
		return env.SSHUserError(err)
	}
	k.put(t, cl)
	return nil
}

// Run implements env.SSH.
func (k *keptSSH) Run(ctx context.Context, t env.SSHTarget, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if len(argv) == 0 {
		// An interactive shell wants its own connection and terminal.
		return k.inner.Run(ctx, t, nil, stdin, stdout, stderr)
	}
	return k.do(ctx, t, stdin, stdout, stderr, func(cl *lagossh.Client, in io.Reader, out, errw io.Writer) (int, error) {
		return cl.Run(ctx, argv, in, out, errw)
	})
}

// RunCommandLine implements env.SSHCommandLine.
func (k *keptSSH) RunCommandLine(ctx context.Context, t env.SSHTarget, line string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	return k.do(ctx, t, stdin, stdout, stderr, func(cl *lagossh.Client, in io.Reader, out, errw io.Writer) (int, error) {
		return cl.RunCommand(ctx, line, in, out, errw)
	})
}

// WithConn implements env.SSHConn: a copy's commands share one kept
// connection, which goes back to the pool when they all succeeded.
func (k *keptSSH) WithConn(ctx context.Context, t env.SSHTarget, do func(r lagossh.Runner) error) error {
	cl, _, err := k.get(ctx, t)
	if err != nil {
		return err
	}
	if err := do(cl); err != nil {
		cl.Close()
		return env.SSHUserError(err)
	}
	k.put(t, cl)
	return nil
}

type runFunc func(cl *lagossh.Client, stdin io.Reader, stdout, stderr io.Writer) (int, error)

func (k *keptSSH) do(ctx context.Context, t env.SSHTarget, stdin io.Reader, stdout, stderr io.Writer, run runFunc) (int, error) {
	for attempt := 0; ; attempt++ {
		cl, reused, err := k.get(ctx, t)
		if err != nil {
			return -1, err
		}
		in := &touchReader{r: stdin}
		out, errw := &touchWriter{w: stdout}, &touchWriter{w: stderr}
		code, err := run(cl, in.orNil(), out.orNil(), errw.orNil())
		if err == nil {
			k.put(t, cl)
			return code, nil
		}
		cl.Close()
		// A kept connection the guest dropped (it rebooted, sshd
		// restarted) fails before the command starts: retry once on a
		// fresh one, unless the command may have run or read its input.
		if reused && attempt == 0 && ctx.Err() == nil && !in.touched.Load() && !out.touched.Load() && !errw.touched.Load() {
			continue
		}
		return code, env.SSHUserError(err)
	}
}

// get returns an idle connection (reused) or a new one.
func (k *keptSSH) get(ctx context.Context, t env.SSHTarget) (*lagossh.Client, bool, error) {
	key := keptKey(t)
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil, false, errClosed
	}
	if list := k.idle[key]; len(list) > 0 {
		c := list[len(list)-1]
		k.idle[key] = list[:len(list)-1]
		k.mu.Unlock()
		return c.cl, true, nil
	}
	k.mu.Unlock()
	cl, err := lagossh.Dial(ctx, t.Target())
	if err != nil {
		return nil, false, env.SSHUserError(err)
	}
	return cl, false, nil
}

func (k *keptSSH) put(t env.SSHTarget, cl *lagossh.Client) {
	key := keptKey(t)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed || len(k.idle[key]) >= keptIdleMax {
		cl.Close()
		return
	}
	k.idle[key] = append(k.idle[key], keptConn{uuid: t.UUID, vm: t.VM, cl: cl})
}

// drop closes the idle connections match selects.
func (k *keptSSH) drop(match func(keptConn) bool) {
	k.mu.Lock()
	var gone []keptConn
	for key, list := range k.idle {
		kept := list[:0]
		for _, c := range list {
			if match(c) {
				gone = append(gone, c)
			} else {
				kept = append(kept, c)
			}
		}
		if len(kept) == 0 {
			delete(k.idle, key)
		} else {
			k.idle[key] = kept
		}
	}
	k.mu.Unlock()
	for _, c := range gone {
		c.cl.Close()
	}
}

// Release implements env.SSHReleaser: the VM's kept connections, and any
// mux a lago command left for it, are closed.
func (k *keptSSH) Release(ctx context.Context, t env.SSHTarget) {
	k.drop(func(c keptConn) bool { return c.uuid == t.UUID && c.vm == t.VM })
	k.inner.Release(ctx, t)
}

// ReleaseAll implements env.SSHReleaser.
func (k *keptSSH) ReleaseAll(ctx context.Context, uuid string) {
	k.drop(func(c keptConn) bool { return c.uuid == uuid })
	k.inner.ReleaseAll(ctx, uuid)
}

func (k *keptSSH) closeAll() {
	k.mu.Lock()
	k.closed = true
	k.mu.Unlock()
	k.drop(func(keptConn) bool { return true })
}

// touchReader and touchWriter record whether a command used its streams,
// which decides whether a failed run may be retried.
type touchReader struct {
	r       io.Reader
	touched atomic.Bool
}

func (t *touchReader) Read(p []byte) (int, error) {
	t.touched.Store(true)
	return t.r.Read(p)
}

func (t *touchReader) orNil() io.Reader {
	if t.r == nil {
		return nil
	}
	return t
}

type touchWriter struct {
	w       io.Writer
	touched atomic.Bool
}

func (t *touchWriter) Write(p []byte) (int, error) {
	t.touched.Store(true)
	return t.w.Write(p)
}

func (t *touchWriter) orNil() io.Writer {
	if t.w == nil {
		return nil
	}
	return t
}
