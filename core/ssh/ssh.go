// Package ssh is how the core talks to guests: running commands and scripts,
// interactive shells, copying files and waiting for a booting VM to accept
// logins. It uses golang.org/x/crypto/ssh, so no ssh binary, sshpass or
// expect is needed on the host, and argv never passes through a host shell.
//
// Host keys are trusted on first use: Target.KnownHostsPath names a
// known_hosts file (the core keeps one per prefix, so destroying the prefix
// forgets its VMs); an unknown host's key is appended to it, and a key that
// differs from the recorded one fails the connection with a
// *HostKeyChangedError instead of being silently accepted as the original
// Lago did. An empty KnownHostsPath accepts any key and records nothing.
package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	xssh "golang.org/x/crypto/ssh"
)

// Default timeouts. A TCP connect to a booting guest that does not answer ARP
// yet stalls for the whole timeout, so connects are short and retried.
const (
	DefaultDialTimeout = 6 * time.Second
	// connectStagger is how often Dial starts another connect while the
	// earlier ones wait: a fresh SYN beats the kernel's retransmits (1 s,
	// then 3 s) when a guest was just restored from a snapshot or is busy.
	connectStagger          = 250 * time.Millisecond
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultUser             = "root"
	DefaultPort             = "22"
	probeHandshakeTimeout   = 5 * time.Second
)

// ErrAuth is wrapped by errors of a server that refused every offered
// credential (key and password).
var ErrAuth = errors.New("ssh authentication failed")

// Target says where and how to log in to a guest.
type Target struct {
	// Addr is "host" or "host:port"; the port defaults to 22.
	Addr string
	// User defaults to root.
	User string
	// Password is tried after the key (password and keyboard-interactive).
	Password string
	// KeyPath is a private key file (OpenSSH or PEM), tried first.
	KeyPath string
	// KnownHostsPath is the trust-on-first-use known_hosts file; empty
	// accepts any host key.
	KnownHostsPath string
	// DialTimeout bounds the TCP connect, made of attempts of at most a
	// second each; zero means DefaultDialTimeout.
	DialTimeout time.Duration
	// HandshakeTimeout bounds the ssh handshake and authentication; zero
	// means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
}

func (t Target) addr() string {
	if _, _, err := net.SplitHostPort(t.Addr); err == nil {
		return t.Addr
	}
	return net.JoinHostPort(strings.Trim(t.Addr, "[]"), DefaultPort)
}

func (t Target) user() string {
	if t.User == "" {
		return DefaultUser
	}
	return t.User
}

// HostKeyChangedError is returned when a host presents a key other than the
// one recorded in the known_hosts file: either the VM was re-created with new
// keys, or someone is in the middle.
type HostKeyChangedError struct {
	Host           string
	KnownHostsPath string
	Fingerprint    string   // of the presented key
	Known          []string // "file:line" of the recorded keys
}

func (e *HostKeyChangedError) Error() string {
	return fmt.Sprintf("ssh host key of %s changed (now %s, recorded at %s): the VM was re-created or the connection is intercepted; remove its lines from %s to trust the new key",
		e.Host, e.Fingerprint, strings.Join(e.Known, ", "), e.KnownHostsPath)
}

// Client is an authenticated connection to one guest. It is safe for
// concurrent use: every Run opens its own session.
type Client struct {
	target Target
	conn   *xssh.Client
	gate   *sessionGate
}

// Dial connects and authenticates once, honouring ctx for the whole attempt.
func Dial(ctx context.Context, t Target) (*Client, error) {
	dt := t.DialTimeout
	if dt <= 0 {
		dt = DefaultDialTimeout
	}
	ht := t.HandshakeTimeout
	if ht <= 0 {
		ht = DefaultHandshakeTimeout
	}
	return dial(ctx, t, dt, ht)
}

func dial(ctx context.Context, t Target, dialTimeout, handshakeTimeout time.Duration) (*Client, error) {
	cfg, err := clientConfig(t)
	if err != nil {
		return nil, err
	}
	addr := t.addr()
	deadline := time.Now().Add(handshakeRetryWindow)
	pause := handshakeRetryFirst
	for attempt := 1; ; attempt++ {
		release, err := handshakeSlot(ctx, addr)
		if err != nil {
			return nil, fmt.Errorf("ssh to %s: %w", addr, err)
		}
		raw, err := connect(ctx, addr, dialTimeout)
		if err != nil {
			release()
			return nil, fmt.Errorf("connect to %s: %w", addr, err)
		}
		c, err := handshake(ctx, t, cfg, raw, handshakeTimeout)
		release()
		if err == nil || !cutBeforeAuth(err) || ctx.Err() != nil || time.Now().Add(pause).After(deadline) {
			if err != nil && attempt > 1 {
				err = fmt.Errorf("%w (after %d attempts)", err, attempt)
			}
			return c, err
		}
		// Jittered, so processes that were cut together do not all
		// come back together.
		timer := time.NewTimer(jitter(pause))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("ssh to %s: %w", addr, ctx.Err())
		case <-timer.C:
		}
		pause = min(2*pause, handshakeRetryMax)
	}
}

// A guest's sshd closes connections beyond a few unauthenticated ones per
// client (dropbear: MAX_UNAUTH_PER_IP, 5; OpenSSH: MaxStartups, from 10 on),
// before or during the key exchange; 32 concurrent `lago shell` then fail
// with EOF or "connection reset by peer". Dial retries such handshakes with
// jittered exponential backoff, and within one process makes at most
// maxHandshakesPerAddr at once to one address.
const (
	handshakeRetryWindow = 30 * time.Second
	handshakeRetryFirst  = 50 * time.Millisecond
	handshakeRetryMax    = 2 * time.Second
	maxHandshakesPerAddr = 4
)

var handshakeSlots = struct {
	sync.Mutex
	m map[string]chan struct{}
}{m: map[string]chan struct{}{}}

// handshakeSlot waits for one of addr's maxHandshakesPerAddr slots and
// returns its release.
func handshakeSlot(ctx context.Context, addr string) (func(), error) {
	handshakeSlots.Lock()
	sem := handshakeSlots.m[addr]
	if sem == nil {
		sem = make(chan struct{}, maxHandshakesPerAddr)
		handshakeSlots.m[addr] = sem
	}
	handshakeSlots.Unlock()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// cutBeforeAuth reports whether a handshake failed because the server
// closed or reset the connection, as an sshd over its limit of
// unauthenticated connections does; a refused login, a changed host key or
// a timeout are answers, not back-pressure.
func cutBeforeAuth(err error) bool {
	var hk *HostKeyChangedError
	if errors.Is(err, ErrAuth) || errors.As(err, &hk) {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

// handshake runs the ssh handshake and authentication on raw, which it
// owns from then on.
func handshake(ctx context.Context, t Target, cfg *xssh.ClientConfig, raw net.Conn, handshakeTimeout time.Duration) (*Client, error) {
	addr := t.addr()
	// The handshake has no context of its own: a deadline bounds it and a
	// cancelled ctx closes the socket under it.
	_ = raw.SetDeadline(time.Now().Add(handshakeTimeout))
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	c, chans, reqs, err := xssh.NewClientConn(raw, addr, cfg)
	if !stop() {
		if err == nil {
			c.Close()
		}
		raw.Close()
		return nil, fmt.Errorf("ssh to %s: %w", addr, ctx.Err())
	}
	if err != nil {
		raw.Close()
		var hk *HostKeyChangedError
		if errors.As(err, &hk) {
			return nil, hk
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, fmt.Errorf("ssh to %s as %s: %w: %v", addr, t.user(), ErrAuth, err)
		}
		return nil, fmt.Errorf("ssh handshake with %s: %w", addr, err)
	}
	_ = raw.SetDeadline(time.Time{})
	return newClient(t, xssh.NewClient(c, chans, reqs)), nil
}

// connect dials addr within total: a connect every connectStagger, earlier
// ones left pending (see connectStaggered), so a guest that does not answer
// ARP yet (e.g. just restored from a snapshot) is reached as soon as it
// does; a refused connection is an answer and returns at once.
func connect(ctx context.Context, addr string, total time.Duration) (net.Conn, error) {
	return connectStaggered(ctx, tcpDial, addr, connectStagger, total)
}

func clientConfig(t Target) (*xssh.ClientConfig, error) {
	var auth []xssh.AuthMethod
	if t.KeyPath != "" {
		pem, err := os.ReadFile(t.KeyPath)
		if err != nil {
			return nil, fmt.Errorf("read ssh key: %w", err)
		}
		signer, err := xssh.ParsePrivateKey(pem)
		if err != nil {
			return nil, fmt.Errorf("parse ssh key %s: %w", t.KeyPath, err)
		}
		auth = append(auth, xssh.PublicKeys(signer))
	}
	if t.Password != "" {
		pw := t.Password
		auth = append(auth, xssh.Password(pw),
			xssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = pw
				}
				return answers, nil
			}))
	}
	if len(auth) == 0 {
		return nil, fmt.Errorf("ssh to %s: no key and no password given", t.Addr)
	}
	cfg := &xssh.ClientConfig{User: t.user(), Auth: auth}
	if t.KnownHostsPath == "" {
		cfg.HostKeyCallback = xssh.InsecureIgnoreHostKey() //nolint:gosec // documented opt-out
		return cfg, nil
	}
	cb, algos, err := tofu(t.KnownHostsPath, t.addr())
	if err != nil {
		return nil, err
	}
	cfg.HostKeyCallback = cb
	cfg.HostKeyAlgorithms = algos
	return cfg, nil
}

// Close ends the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Target returns what the client was dialled with.
func (c *Client) Target() Target { return c.target }

// Run runs argv on the guest (quoted with ShellQuote for the remote shell)
// and returns its exit code. err is non-nil only when the command could not
// run or its status was lost (connection dropped, ctx cancelled); a command
// that ran and failed is exitCode != 0 with a nil err. stdin, stdout and
// stderr may be nil.
func (c *Client) Run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if len(argv) == 0 {
		return -1, errors.New("run: empty command")
	}
	return c.RunCommand(ctx, ShellQuote(argv), stdin, stdout, stderr)
}

// RunCommand runs a command line as the guest's shell parses it. Prefer Run
// unless the caller wrote the shell syntax itself.
func (c *Client) RunCommand(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	return c.run(ctx, cmd, stdin, stdout, stderr)
}

// RunScript feeds script to `bash -s` on the guest, as Lago's deploy does,
// passing args as the script's positional parameters.
func (c *Client) RunScript(ctx context.Context, script io.Reader, args []string, stdout, stderr io.Writer) (int, error) {
	argv := append([]string{"bash", "-s", "--"}, args...)
	return c.Run(ctx, argv, script, stdout, stderr)
}

// ptyRequest asks for a terminal on the session before it starts.
type ptyRequest struct {
	term          string
	width, height int
	modes         xssh.TerminalModes
}

func (c *Client) run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	for attempt := 0; ; attempt++ {
		code, err := c.runOnce(ctx, cmd, stdin, stdout, stderr)
		// A session the server closed before it answered the exec (or
		// shell) request never ran its command: a server replies to the
		// request before it closes the channel. dropbear 2022.82-2024.85
		// sometimes closes a new session of a connection whose previous
		// one just ended (see the top of session.go); the mux then relays
		// the EOF. One more session is safe and usually works.
		if attempt == 0 && errors.Is(err, errNotStarted) && ctx.Err() == nil {
			select {
			case <-ctx.Done():
				return code, err
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		return code, err
	}
}

// errNotStarted marks a session the server closed before it answered the
// exec or shell request.
var errNotStarted = errors.New("the server closed the session before the command started")

func (c *Client) runOnce(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if err := ctx.Err(); err != nil {
		return -1, err
	}
	s, release, err := c.newSession(ctx)
	if err != nil {
		return -1, fmt.Errorf("open ssh session: %w", err)
	}
	defer release()
	defer s.Close()
	s.Stdout = stdout
	s.Stderr = stderr
	// x/crypto's Wait also waits for Session.Stdin to reach EOF, which an
	// interactive stdin never does; a pipe fed by our own goroutine lets the
	// command's exit end Run.
	var in io.WriteCloser
	if stdin != nil {
		if in, err = s.StdinPipe(); err != nil {
			return -1, fmt.Errorf("stdin pipe: %w", err)
		}
	}
	if cmd == "" {
		err = s.Shell()
	} else {
		err = s.Start(cmd)
	}
	if errors.Is(err, io.EOF) {
		return -1, fmt.Errorf("start remote command: %w (%w)", err, errNotStarted)
	}
	if err != nil {
		return -1, fmt.Errorf("start remote command: %w", err)
	}
	// Feed stdin only once the command runs: an EOF sent before the exec
	// request makes dropbear close the channel, and the exec then fails.
	if in != nil {
		go feed(in, stdin)
	}
	return waitSession(ctx, s)
}

// feed copies r to the remote stdin and then sends EOF.
func feed(w io.WriteCloser, r io.Reader) {
	_, _ = io.Copy(w, r)
	w.Close()
}

// waitSession waits for the remote command and turns its end into an exit
// code; a cancelled ctx kills it.
func waitSession(ctx context.Context, s *xssh.Session) (int, error) {
	var err error
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = s.Signal(xssh.SIGKILL)
		s.Close()
		return -1, fmt.Errorf("remote command interrupted: %w", ctx.Err())
	}
	if err == nil {
		return 0, nil
	}
	var ee *xssh.ExitError
	if errors.As(err, &ee) {
		if ee.Signal() != "" && ee.ExitStatus() == 0 {
			return 128 + signalNumber(ee.Signal()), nil
		}
		return ee.ExitStatus(), nil
	}
	return -1, fmt.Errorf("remote command: %w", err)
}

func signalNumber(name string) int {
	switch name {
	case "HUP":
		return 1
	case "INT":
		return 2
	case "QUIT":
		return 3
	case "KILL":
		return 9
	case "PIPE":
		return 13
	case "TERM":
		return 15
	}
	return 1
}
