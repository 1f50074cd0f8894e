package ssh

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	xssh "golang.org/x/crypto/ssh"
)

// A mux keeps one authenticated connection to a guest open for a while and
// serves it to later lago commands over a unix socket, as OpenSSH's
// ControlPersist does. A guest under TCG spends 90-130 ms of emulated CPU
// on every key exchange; through a mux a command costs one session open.
//
// The socket speaks ssh: a client does a cheap handshake with the mux
// (both ends are Go on the host) and gets an ordinary *Client, so exec,
// stdin, exit codes, signals and ptys need no protocol of their own. The
// mux opens one guest channel per client channel and copies data and
// requests both ways. Only the user who runs the mux may connect: the
// socket's folder is private and every peer's uid is checked.
//
// A mux serves one login: its socket is named after the VM and the guest
// user, address, key and known_hosts file it logged in with (MuxSocket),
// and a client must present the same login, password included (a digest
// of it, see Target.muxToken), or it gets no session: `lago --ssh-user
// alice shell` within ssh_persist of a root command must run as alice.
// Dozens of concurrent commands share a mux: when its connection carries
// as many sessions as the guest allows on one (see sessionGate and
// sessionsFor), the mux logs in again, up to muxMaxConns connections, and
// beyond that sessions wait for one to end (see guestPool).
//
// A mux exits when it has served no session for its idle time, when its
// first guest connection fails (keepalives notice a guest that vanished), when
// a client asks it to (lago stops, reverts or destroys the VM) or when its
// Alive check fails (the prefix was removed).

// DefaultMuxIdle is how long a mux waits for the next session.
const DefaultMuxIdle = 60 * time.Second

const (
	muxExitRequest = "lago-exit@lago-go"
	muxKeepalive   = 5 * time.Second
	// muxKeepaliveWait is generous: a busy TCG guest answers slowly.
	muxKeepaliveWait = 20 * time.Second
	muxTick          = time.Second
)

// MuxDir returns this user's folder of mux sockets, creating it. It is
// under the temporary folder rather than in the prefix because a socket
// path is limited to 107 bytes, and it must be a folder only this user
// can enter.
func MuxDir() (string, error) {
	dir := filepath.Join(os.TempDir(), "lago-mux-"+strconv.Itoa(os.Getuid()))
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("create ssh mux folder: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("ssh mux folder: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Getuid() || fi.Mode().Perm() != 0o700 {
		return "", fmt.Errorf("ssh mux folder %s is not a private folder of uid %d: not using it", dir, os.Getuid())
	}
	return dir, nil
}

// MuxSocket names the socket of the mux that logs in to one VM of one
// prefix (by its uuid) as t says, in dir: uuid-VM-LOGIN.sock, with the VM
// name and the login (user, address, key file, known_hosts file) hashed
// to keep the path short. The password stays out of the name, which is
// not secret; a mux refuses a client whose password differs (muxToken).
func MuxSocket(dir, uuid, vm string, t Target) string {
	login := sha256.Sum256([]byte(strings.Join([]string{"lago-mux-login-v1", t.user(), t.addr(), t.KeyPath, t.KnownHostsPath}, "\x00")))
	return filepath.Join(dir, uuid+"-"+muxVMHash(vm)+"-"+hex.EncodeToString(login[:6])+".sock")
}

func muxVMHash(vm string) string {
	h := sha256.Sum256([]byte(vm))
	return hex.EncodeToString(h[:6])
}

// muxToken is what a client proves it logs in as: a digest of everything
// that decides which guest account, with which rights, its commands run
// under. It travels only over the private socket.
func (t Target) muxToken() string {
	h := sha256.Sum256([]byte(strings.Join([]string{"lago-mux-token-v1", t.user(), t.addr(), t.KeyPath, t.Password, t.KnownHostsPath}, "\x00")))
	return hex.EncodeToString(h[:])
}

// muxControlUser is the login of a control connection (DialMux with a zero
// Target): it may ask the mux to exit, and opens no sessions.
const muxControlUser = "lago-mux-control"

// ErrMuxRefused is wrapped by DialMux's error when the mux serves another
// login than the client's: the caller connects directly instead.
var ErrMuxRefused = errors.New("the ssh mux serves another user or other credentials")

// MuxOptions configure ServeMux.
type MuxOptions struct {
	// Socket is where to listen (see MuxSocket).
	Socket string
	// Idle is how long to wait for the next session; zero is
	// DefaultMuxIdle.
	Idle time.Duration
	// Alive, when set, is asked every second whether to go on (every
	// 100 ms while connecting).
	Alive func() bool
	// Lock is the mux's lock (see LockMux) when the spawner took it;
	// nil takes it here.
	Lock *os.File
}

// ServeMux connects to t, then serves that connection on o.Socket until
// it is idle, lost, asked to exit, no longer Alive, or ctx ends. ready is
// called once: with nil when the socket accepts clients, or with the
// error that prevented it. A second mux for the same socket finds the
// first one's lock and returns at once with ready(ErrMuxRunning).
func ServeMux(ctx context.Context, t Target, o MuxOptions, ready func(error)) error {
	if ready == nil {
		ready = func(error) {}
	}
	if o.Idle <= 0 {
		o.Idle = DefaultMuxIdle
	}
	lock := o.Lock
	if lock == nil {
		var err error
		if lock, err = LockMux(o.Socket); err != nil {
			ready(err)
			return err
		}
	}
	defer lock.Close()
	// Whatever happens next, the lock file goes while we hold it.
	defer os.Remove(o.Socket + ".lock")
	// Our pid, for StopMux to end a mux that is still connecting.
	_ = lock.Truncate(0)
	_, _ = lock.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	guest, err := dialWhileAlive(ctx, t, o.Alive)
	if err != nil {
		ready(err)
		return err
	}
	defer guest.Close()
	_ = os.Remove(o.Socket) // a stale socket of a mux that died; we hold the lock
	ln, err := net.Listen("unix", o.Socket)
	if err != nil {
		ready(err)
		return fmt.Errorf("ssh mux listen: %w", err)
	}
	defer func() {
		ln.Close()
		_ = os.Remove(o.Socket)
	}()
	m := &mux{guest: guest, pool: newGuestPool(t, guest), idle: o.Idle, last: time.Now(), quit: make(chan string, 1)}
	defer m.pool.close()
	cfg, err := muxServerConfig(t.muxToken())
	if err != nil {
		ready(err)
		return err
	}
	ready(nil)
	go m.accept(ln, cfg)
	go m.keepalive()
	go func() {
		_ = m.guest.conn.Wait()
		m.stop("guest connection closed")
	}()
	tick := time.NewTicker(muxTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.quit:
			return nil
		case <-tick.C:
			if o.Alive != nil && !o.Alive() {
				return nil
			}
			if m.idleFor() > m.idle {
				return nil
			}
		}
	}
}

// LockMux takes the lock of socket's mux, or returns ErrMuxRunning when
// another mux holds it. A spawner takes it before starting the mux process
// and hands the file over (MuxOptions.Lock), so from the moment the
// spawner returns, StopMux sees a mux starting and can end it.
func LockMux(socket string) (*os.File, error) {
	lock, err := os.OpenFile(socket+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ssh mux lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil || !samePath(lock, socket+".lock") {
		// Held by another mux, or unlinked by one that just exited.
		lock.Close()
		return nil, ErrMuxRunning
	}
	// A mux killed with SIGKILL left its pid; StopMux must not signal
	// whatever process has it now.
	_ = lock.Truncate(0)
	return lock, nil
}

// dialWhileAlive is Dial, given up as soon as alive says the prefix is gone
// (a VM being destroyed may hold a dial for its whole timeout).
func dialWhileAlive(ctx context.Context, t Target, alive func() bool) (*Client, error) {
	if alive == nil {
		return Dial(ctx, t)
	}
	if !alive() {
		return nil, errors.New("ssh mux: the prefix is gone")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if !alive() {
					cancel()
					return
				}
			}
		}
	}()
	return Dial(ctx, t)
}

// samePath reports whether path still names the open file f.
func samePath(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// ErrMuxRunning is what a second mux for the same socket returns.
var ErrMuxRunning = errors.New("an ssh mux already serves this socket")

type mux struct {
	guest *Client // the first connection, kept alive; see pool
	pool  *guestPool
	idle  time.Duration
	quit  chan string // the reason to exit

	mu       sync.Mutex
	sessions int
	last     time.Time
}

func (m *mux) stop(why string) {
	select {
	case m.quit <- why:
	default:
	}
}

func (m *mux) idleFor() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sessions > 0 {
		return 0
	}
	return time.Since(m.last)
}

func (m *mux) busy(delta int) {
	m.mu.Lock()
	m.sessions += delta
	m.last = time.Now()
	m.mu.Unlock()
}

func (m *mux) keepalive() {
	for {
		time.Sleep(muxKeepalive)
		done := make(chan error, 1)
		go func() {
			_, _, err := m.guest.conn.SendRequest("keepalive@openssh.com", true, nil)
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				m.stop("keepalive: " + err.Error())
				return
			}
		case <-time.After(muxKeepaliveWait):
			m.stop("keepalive unanswered")
			return
		}
	}
}

// muxServerConfig accepts control connections and clients that present
// token; the role is in the connection's permissions.
func muxServerConfig(token string) (*xssh.ServerConfig, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := xssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	// The socket is reachable only by its owner (private folder, peer
	// uid checked on accept); authentication only tells whose login the
	// client wants.
	cfg := &xssh.ServerConfig{PasswordCallback: func(c xssh.ConnMetadata, pw []byte) (*xssh.Permissions, error) {
		if c.User() == muxControlUser {
			return &xssh.Permissions{Extensions: map[string]string{muxRole: muxRoleControl}}, nil
		}
		if subtle.ConstantTimeCompare(pw, []byte(token)) == 1 {
			return &xssh.Permissions{Extensions: map[string]string{muxRole: muxRoleSession}}, nil
		}
		return nil, ErrMuxRefused
	}}
	cfg.AddHostKey(signer)
	return cfg, nil
}

func (m *mux) accept(ln net.Listener, cfg *xssh.ServerConfig) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if !sameUser(c) {
			c.Close()
			continue
		}
		m.busy(0)
		go m.serve(c, cfg)
	}
}

// sameUser reports whether the peer of a unix connection runs as our uid.
func sameUser(c net.Conn) bool {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return false
	}
	return int(cred.Uid) == os.Getuid()
}

const (
	muxRole        = "lago-mux-role"
	muxRoleControl = "control"
	muxRoleSession = "session"
)

func (m *mux) serve(c net.Conn, cfg *xssh.ServerConfig) {
	_ = c.SetDeadline(time.Now().Add(DefaultHandshakeTimeout))
	conn, chans, reqs, err := xssh.NewServerConn(c, cfg)
	if err != nil {
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	defer conn.Close()
	go func() {
		for r := range reqs {
			if r.Type == muxExitRequest {
				_ = r.Reply(true, nil)
				m.stop("asked to exit")
				continue
			}
			if r.WantReply {
				_ = r.Reply(false, nil)
			}
		}
	}()
	if conn.Permissions == nil || conn.Permissions.Extensions[muxRole] != muxRoleSession {
		for nc := range chans {
			_ = nc.Reject(xssh.Prohibited, "a control connection of the lago ssh mux opens no channels")
		}
		return
	}
	// Opens still queued when the client leaves are given up.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = conn.Wait()
		cancel()
	}()
	for nc := range chans {
		go m.proxy(ctx, nc)
	}
}

// proxy joins one client channel to a new guest channel of the same type,
// on a connection of the pool that can take it (queued or on a new
// connection when none can).
func (m *mux) proxy(ctx context.Context, nc xssh.NewChannel) {
	gch, greqs, release, err := m.pool.open(ctx, nc.ChannelType(), nc.ExtraData())
	if err != nil {
		var oe *xssh.OpenChannelError
		if errors.As(err, &oe) {
			_ = nc.Reject(oe.Reason, oe.Message)
		} else {
			_ = nc.Reject(xssh.ConnectionFailed, err.Error())
		}
		return
	}
	defer release()
	cch, creqs, err := nc.Accept()
	if err != nil {
		gch.Close()
		return
	}
	m.busy(1)
	defer m.busy(-1)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { // guest output to the client
		defer wg.Done()
		_, _ = io.Copy(cch, gch)
	}()
	go func() {
		defer wg.Done()
		_, _ = io.Copy(cch.Stderr(), gch.Stderr())
	}()
	go func() { // the guest's requests (exit-status, ...) to the client
		defer wg.Done()
		forwardRequests(greqs, cch)
	}()
	go func() { // client input to the guest; EOF is passed on
		_, _ = io.Copy(gch, cch)
		_ = gch.CloseWrite()
	}()
	// A request being forwarded (exec) must get its reply to the client
	// before the client's channel closes: a command that exits at once
	// makes the guest send its output, exit status and close right after
	// the exec reply, and the goroutines copying those may finish before
	// the one relaying the reply; closing then made the client's exec
	// fail with EOF ("start remote command: EOF").
	inflight := newPending()
	go func() { // the client's requests (exec, pty-req, signal, ...)
		forwardRequestsTracked(creqs, gch, inflight)
		// The client closed its channel: a killed command stops.
		gch.Close()
	}()
	wg.Wait()
	inflight.wait()
	_ = cch.CloseWrite()
	cch.Close()
	gch.Close()
}

func forwardRequests(in <-chan *xssh.Request, out xssh.Channel) {
	forwardRequestsTracked(in, out, nil)
}

// forwardRequestsTracked is forwardRequests that counts, in inflight
// (when not nil), the requests whose reply is not relayed yet.
func forwardRequestsTracked(in <-chan *xssh.Request, out xssh.Channel, inflight *pending) {
	for r := range in {
		inflight.add(1)
		ok, err := out.SendRequest(r.Type, r.WantReply, r.Payload)
		// A request the other side's channel closed on gets no answer:
		// its sender then sees the channel close (EOF), as it would have
		// without the mux, and knows the request was never handled (see
		// Client.run).
		if r.WantReply && err == nil {
			_ = r.Reply(ok, nil)
		}
		inflight.add(-1)
	}
}

// pending counts requests in flight; wait returns when none is. Unlike a
// sync.WaitGroup it may count up while someone waits (a request that
// arrives as the session ends).
type pending struct {
	mu   sync.Mutex
	cond *sync.Cond
	n    int
}

func newPending() *pending {
	p := &pending{}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *pending) add(d int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.n += d
	if p.n == 0 {
		p.cond.Broadcast()
	}
	p.mu.Unlock()
}

func (p *pending) wait() {
	p.mu.Lock()
	for p.n > 0 {
		p.cond.Wait()
	}
	p.mu.Unlock()
}

// DialMux connects to the mux serving socket. The result is used as a
// Client dialled to t; a mux that serves another login than t's refuses
// it with an error wrapping ErrMuxRefused. A zero t makes a control
// connection, which can ask the mux to exit but runs nothing.
func DialMux(ctx context.Context, socket string, t Target) (*Client, error) {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(DefaultHandshakeTimeout))
	user, token := t.user(), t.muxToken()
	if t == (Target{}) {
		user, token = muxControlUser, ""
	}
	cfg := &xssh.ClientConfig{User: user, Auth: []xssh.AuthMethod{xssh.Password(token)},
		HostKeyCallback: xssh.InsecureIgnoreHostKey()} //nolint:gosec // a private unix socket, peer checked by the server
	sc, chans, reqs, err := xssh.NewClientConn(c, "lago-mux", cfg)
	if err != nil {
		c.Close()
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, fmt.Errorf("ssh mux %s: %w", socket, ErrMuxRefused)
		}
		return nil, fmt.Errorf("ssh mux %s: %w", socket, err)
	}
	_ = c.SetDeadline(time.Time{})
	return newClient(t, xssh.NewClient(sc, chans, reqs)), nil
}

// muxStarting reports whether a mux holds socket's lock without serving
// yet: it is still connecting to its guest.
func muxStarting(socket string) bool {
	f, err := os.Open(socket + ".lock")
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return true
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// DialMuxWait is DialMux that, when a mux for socket is still connecting
// to its guest, waits up to max for it rather than making a second
// connection that would compete with it for the guest's CPU.
func DialMuxWait(ctx context.Context, socket string, t Target, max time.Duration) (*Client, error) {
	deadline := time.Now().Add(max)
	for {
		cl, err := DialMux(ctx, socket, t)
		if err == nil || errors.Is(err, ErrMuxRefused) || !muxStarting(socket) || time.Now().After(deadline) {
			return cl, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// StopMux ends the mux of socket, whether it serves already or is still
// connecting to its guest, and returns once it is gone (up to
// muxStopWait), so a verb that goes on to stop or destroy the VM leaves no
// mux behind. A serving mux is asked over its socket; one still
// connecting has no socket yet and gets SIGTERM (its pid is in the lock
// file, and only a holder of the lock running as a mux is signalled).
func StopMux(ctx context.Context, socket string) {
	deadline := time.Now().Add(muxStopWait)
	signalled := 0
	for time.Now().Before(deadline) {
		if cl, err := DialMux(ctx, socket, Target{}); err == nil {
			_, _, _ = cl.conn.SendRequest(muxExitRequest, true, nil)
			cl.Close()
		} else if pid := startingMuxPid(socket); pid > 0 && pid != signalled {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			signalled = pid
		}
		_, serr := os.Stat(socket)
		if errors.Is(serr, os.ErrNotExist) && !muxStarting(socket) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A lock file nobody holds is left by a mux killed with SIGKILL.
	if !muxStarting(socket) {
		_ = os.Remove(socket + ".lock")
		// A socket nobody serves is stale; one that answers belongs to
		// a mux that outlived the wait or took over meanwhile, and our
		// probe of it must not stay open.
		if cl, err := DialMux(ctx, socket, Target{}); err != nil {
			_ = os.Remove(socket)
		} else {
			cl.Close()
		}
	}
}

// muxStopWait bounds how long StopMux waits for a mux to go.
const muxStopWait = 3 * time.Second

// startingMuxPid returns the pid of the mux holding socket's lock, or 0
// when none holds it or the holder is not a mux.
func startingMuxPid(socket string) int {
	if !muxStarting(socket) {
		return 0
	}
	b, err := os.ReadFile(socket + ".lock")
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil || !bytes.Contains(cmdline, []byte("\x00"+MuxVerb+"\x00")) {
		return 0
	}
	return pid
}

// MuxVerb is the argument a mux process is started with (the engine's
// hidden entry point); StopMux signals only processes that carry it.
const MuxVerb = "__ssh-mux"

// StopMuxes stops every mux of the prefix with this uuid, serving or
// still connecting.
func StopMuxes(ctx context.Context, dir, uuid string) {
	stopMuxesMatching(ctx, filepath.Join(dir, uuid+"-*.sock*"))
}

// StopVMMuxes stops every mux of one VM of the prefix with this uuid,
// whatever login each serves.
func StopVMMuxes(ctx context.Context, dir, uuid, vm string) {
	stopMuxesMatching(ctx, filepath.Join(dir, uuid+"-"+muxVMHash(vm)+"-*.sock*"))
}

func stopMuxesMatching(ctx context.Context, pattern string) {
	files, _ := filepath.Glob(pattern)
	seen := map[string]bool{}
	var socks []string
	for _, f := range files {
		s := strings.TrimSuffix(f, ".lock")
		if !seen[s] {
			seen[s] = true
			socks = append(socks, s)
		}
	}
	var wg sync.WaitGroup
	for _, s := range socks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			StopMux(ctx, s)
		}()
	}
	wg.Wait()
}
