// Package sshtest is an in-process ssh server for tests: it listens on
// 127.0.0.1 and runs exec requests with the local /bin/sh, so code that
// talks to guests over ssh can be tested against a real handshake, real
// quoting and real exit codes without a VM.
package sshtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	xssh "golang.org/x/crypto/ssh"
)

// Server is an in-process ssh server on 127.0.0.1 that runs exec requests
// with the local /bin/sh, so quoting and exit codes are checked against a
// real POSIX shell, as on a guest.
type Server struct {
	t        testing.TB
	ln       net.Listener
	cfg      *xssh.ServerConfig
	password string
	key      xssh.PublicKey // accepted client key; nil = none
	wg       sync.WaitGroup
	mu       sync.Mutex
	logins   int
	strict   bool
	conns    []net.Conn

	race        bool
	aborted     int // connections aborted for race
	maxUnauth   int
	maxSessions int
	authDelay   time.Duration
	unauth      int // connections accepted and not yet authenticated
	dropped     int // connections closed at once for maxUnauth
	refused     int // session channels refused for maxSessions
	users       []string
	dropExecs   int // exec requests still to drop (DropExecs)
	dropped2    int // exec requests dropped
}

// Options configure a Server. At least one of Password and Key should be
// set, or no login succeeds.
type Options struct {
	// Password accepted for any user.
	Password string
	// Key is the accepted client public key.
	Key xssh.PublicKey
	// HostKey defaults to a fresh ed25519 key.
	HostKey xssh.Signer
	// Addr is the listen address, default 127.0.0.1:0.
	Addr string
	// StrictEOF closes a session whose client sends EOF on stdin before
	// its exec or shell request, as dropbear does.
	StrictEOF bool
	// HostKeys are offered besides HostKey (one per key type), as a guest
	// with both an ed25519 and an ecdsa host key does.
	HostKeys []xssh.Signer
	// MaxUnauth, when set, closes a connection at once while that many
	// others are still unauthenticated, as dropbear does past its
	// MAX_UNAUTH_PER_IP (5) and OpenSSH past MaxStartups (10).
	MaxUnauth int
	// MaxSessions, when set, refuses a session channel while that many
	// are open on the connection ("administratively prohibited: open
	// failed"), as OpenSSH does past its MaxSessions (10).
	MaxSessions int
	// AuthDelay makes every authentication take this long, as a key
	// exchange does on a TCG guest, so concurrent logins overlap.
	AuthDelay time.Duration
	// ServerVersion replaces the server's version string, e.g.
	// "SSH-2.0-dropbear_2022.83".
	ServerVersion string
	// DropbearSessionRace makes the server abort a connection when a
	// session's command exits while another session of the connection is
	// open but has no command yet, as dropbear 2022.82 to 2024.85 do
	// ("Failed assertion ... `!channel->sent_close'").
	DropbearSessionRace bool
	// DropExecs closes the session channel of the first DropExecs exec or
	// shell requests without answering them, as dropbear 2022.83 now and
	// then does to a session opened right after another one ended.
	DropExecs int
}

// NewHostKey returns a fresh ed25519 host key.
func NewHostKey(t testing.TB) xssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := xssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// NewHostKeyOf returns a fresh host key of kind "ed25519", "ecdsa"
// (P-256) or "rsa" (2048 bits).
func NewHostKeyOf(t testing.TB, kind string) xssh.Signer {
	t.Helper()
	var key any
	var err error
	switch kind {
	case "ed25519":
		return NewHostKey(t)
	case "ecdsa":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		t.Fatalf("unknown host key kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err := xssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// NewClientKey writes an OpenSSH private key file in a temp folder and
// returns its path and public key.
func NewClientKey(t testing.TB) (string, xssh.PublicKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := xssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := xssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return p, signer.PublicKey()
}

// Start starts a server; it is closed when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.HostKey == nil {
		o.HostKey = NewHostKey(t)
	}
	s := &Server{t: t, password: o.Password, key: o.Key, strict: o.StrictEOF,
		maxUnauth: o.MaxUnauth, maxSessions: o.MaxSessions, authDelay: o.AuthDelay, race: o.DropbearSessionRace,
		dropExecs: o.DropExecs}
	s.cfg = &xssh.ServerConfig{ServerVersion: o.ServerVersion}
	if o.Password != "" {
		s.cfg.PasswordCallback = func(_ xssh.ConnMetadata, pw []byte) (*xssh.Permissions, error) {
			time.Sleep(s.authDelay)
			if string(pw) == s.password {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		}
	}
	if o.Key != nil {
		s.cfg.PublicKeyCallback = func(_ xssh.ConnMetadata, k xssh.PublicKey) (*xssh.Permissions, error) {
			time.Sleep(s.authDelay)
			if bytes.Equal(k.Marshal(), s.key.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		}
	}
	s.cfg.AddHostKey(o.HostKey)
	for _, k := range o.HostKeys {
		s.cfg.AddHostKey(k)
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops listening and waits for the accept loop.
func (s *Server) Close() {
	s.ln.Close()
	s.wg.Wait()
}

// Logins counts successful logins.
func (s *Server) Logins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins
}

// Users lists the user of every successful login, in order.
func (s *Server) Users() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.users...)
}

// Dropped counts connections closed unanswered for MaxUnauth.
func (s *Server) Dropped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Aborted counts connections aborted for DropbearSessionRace.
func (s *Server) Aborted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.aborted
}

// DroppedExecs returns how many exec or shell requests DropExecs dropped.
func (s *Server) DroppedExecs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped2
}

// Refused counts session channels refused for MaxSessions.
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.handle(c)
	}
}

// Drop closes every open connection, as a guest that powers off does.
func (s *Server) Drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

func (s *Server) handle(c net.Conn) {
	s.mu.Lock()
	if s.maxUnauth > 0 && s.unauth >= s.maxUnauth {
		// dropbear closes such a connection before its banner; the
		// client sees EOF or, having sent its own banner, a reset.
		s.dropped++
		s.mu.Unlock()
		c.Close()
		return
	}
	s.unauth++
	s.conns = append(s.conns, c)
	s.mu.Unlock()
	conn, chans, reqs, err := xssh.NewServerConn(c, s.cfg)
	s.mu.Lock()
	s.unauth--
	s.mu.Unlock()
	if err != nil {
		c.Close()
		return
	}
	s.mu.Lock()
	s.logins++
	s.users = append(s.users, conn.User())
	s.mu.Unlock()
	defer conn.Close()
	go xssh.DiscardRequests(reqs)
	cs := &connState{raw: c}
	var mu sync.Mutex
	sessions := 0
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(xssh.UnknownChannelType, "only sessions")
			continue
		}
		mu.Lock()
		full := s.maxSessions > 0 && sessions >= s.maxSessions
		if !full {
			sessions++
		}
		mu.Unlock()
		if full {
			s.mu.Lock()
			s.refused++
			s.mu.Unlock()
			_ = nc.Reject(xssh.Prohibited, "open failed")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			mu.Lock()
			sessions--
			mu.Unlock()
			continue
		}
		cs.opened()
		go func() {
			s.session(ch, creqs, conn.User(), cs)
			mu.Lock()
			sessions--
			mu.Unlock()
		}()
	}
}

// connState is what DropbearSessionRace needs of a connection: how many
// of its sessions are open without a command yet.
type connState struct {
	raw     net.Conn
	mu      sync.Mutex
	waiting int
}

func (c *connState) opened() {
	c.mu.Lock()
	c.waiting++
	c.mu.Unlock()
}

// started marks the first command request of a session opened.
func (c *connState) started() {
	c.mu.Lock()
	c.waiting--
	c.mu.Unlock()
}

// exited reports whether a command exit now hits the race.
func (c *connState) exited() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waiting > 0
}

// session runs one session channel; its commands see USER set to the
// login's user, so a test can tell whose login ran them.
func (s *Server) session(ch xssh.Channel, reqs <-chan *xssh.Request, user string, cs *connState) {
	defer ch.Close()
	hasCommand := false
	defer func() {
		if !hasCommand {
			cs.started() // it never will
		}
	}()
	var cmd *exec.Cmd
	done := make(chan struct{})
	// stdin is read from the moment the channel opens, so an EOF that
	// arrives before the command is seen (and, with StrictEOF, punished).
	var started sync.Mutex
	startedFlag := false
	stdinR, stdinW := io.Pipe()
	go func() {
		_, _ = io.Copy(stdinW, ch)
		started.Lock()
		early := !startedFlag
		started.Unlock()
		if early && s.strict {
			ch.Close()
		}
		stdinW.Close()
	}()
	for req := range reqs {
		switch req.Type {
		case "exec", "shell":
			s.mu.Lock()
			drop := s.dropExecs > 0
			if drop {
				s.dropExecs--
				s.dropped2++
			}
			s.mu.Unlock()
			if drop {
				ch.Close()
				return
			}
			var line string
			if req.Type == "exec" {
				var p struct{ Command string }
				if err := xssh.Unmarshal(req.Payload, &p); err != nil {
					_ = req.Reply(false, nil)
					continue
				}
				line = p.Command
			}
			started.Lock()
			startedFlag = true
			started.Unlock()
			if !hasCommand {
				hasCommand = true
				if s.race {
					// A TCG guest takes a while to get to the
					// request: the window of the race.
					time.Sleep(20 * time.Millisecond)
				}
				cs.started()
			}
			if line == "" {
				cmd = exec.Command("/bin/sh")
			} else {
				cmd = exec.Command("/bin/sh", "-c", line)
			}
			cmd.Env = append(os.Environ(), "USER="+user)
			cmd.Stdin = stdinR
			cmd.Stdout = ch
			cmd.Stderr = ch.Stderr()
			if err := cmd.Start(); err != nil {
				_ = req.Reply(false, nil)
				return
			}
			_ = req.Reply(true, nil)
			go func() {
				defer close(done)
				code := 0
				if err := cmd.Wait(); err != nil {
					var ee *exec.ExitError
					if errors.As(err, &ee) {
						code = ee.ExitCode()
						if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
							code = 128 + int(ws.Signal())
						}
					}
				}
				if s.race && cs.exited() {
					s.mu.Lock()
					s.aborted++
					s.mu.Unlock()
					cs.raw.Close()
					return
				}
				_ = ch.CloseWrite()
				status := make([]byte, 4)
				binary.BigEndian.PutUint32(status, uint32(code))
				_, _ = ch.SendRequest("exit-status", false, status)
				ch.Close()
			}()
		case "signal":
			if cmd != nil && cmd.Process != nil {
				_ = cmd.Process.Kill()
			}
			if req.WantReply {
				_ = req.Reply(true, nil)
			}
		default:
			if req.WantReply {
				_ = req.Reply(req.Type == "env" || req.Type == "pty-req", nil)
			}
		}
	}
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Kill()
		<-done
	}
}

// Mute starts a TCP listener on 127.0.0.1 that accepts connections and
// never speaks ssh, as a guest whose sshd hangs: a client stays in its
// handshake. It returns the address; everything closes when the test ends.
func Mute(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}
