package ssh

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
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

	xssh "golang.org/x/crypto/ssh"
)

// testServer is an in-process ssh server on 127.0.0.1 that runs exec
// requests with the local /bin/sh, so quoting and exit codes are checked
// against a real POSIX shell, as on a guest.
type testServer struct {
	t        *testing.T
	ln       net.Listener
	cfg      *xssh.ServerConfig
	password string
	key      xssh.PublicKey // accepted client key; nil = none
	wg       sync.WaitGroup
	mu       sync.Mutex
	logins   int
}

type serverOpts struct {
	password string
	key      xssh.PublicKey
	hostKey  xssh.Signer
	addr     string // listen address, default 127.0.0.1:0
}

func newHostKey(t *testing.T) xssh.Signer {
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

// newClientKey writes an OpenSSH private key file and returns its path and
// public key.
func newClientKey(t *testing.T) (string, xssh.PublicKey) {
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

func startServer(t *testing.T, o serverOpts) *testServer {
	t.Helper()
	if o.addr == "" {
		o.addr = "127.0.0.1:0"
	}
	if o.hostKey == nil {
		o.hostKey = newHostKey(t)
	}
	s := &testServer{t: t, password: o.password, key: o.key}
	s.cfg = &xssh.ServerConfig{}
	if o.password != "" {
		s.cfg.PasswordCallback = func(_ xssh.ConnMetadata, pw []byte) (*xssh.Permissions, error) {
			if string(pw) == s.password {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		}
	}
	if o.key != nil {
		s.cfg.PublicKeyCallback = func(_ xssh.ConnMetadata, k xssh.PublicKey) (*xssh.Permissions, error) {
			if bytes.Equal(k.Marshal(), s.key.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		}
	}
	s.cfg.AddHostKey(o.hostKey)
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

func (s *testServer) Addr() string { return s.ln.Addr().String() }

func (s *testServer) Close() {
	s.ln.Close()
	s.wg.Wait()
}

func (s *testServer) Logins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins
}

func (s *testServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.handle(c)
	}
}

func (s *testServer) handle(c net.Conn) {
	conn, chans, reqs, err := xssh.NewServerConn(c, s.cfg)
	if err != nil {
		c.Close()
		return
	}
	s.mu.Lock()
	s.logins++
	s.mu.Unlock()
	defer conn.Close()
	go xssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(xssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go s.session(ch, creqs)
	}
}

func (s *testServer) session(ch xssh.Channel, reqs <-chan *xssh.Request) {
	defer ch.Close()
	var cmd *exec.Cmd
	done := make(chan struct{})
	for req := range reqs {
		switch req.Type {
		case "exec", "shell":
			var line string
			if req.Type == "exec" {
				var p struct{ Command string }
				if err := xssh.Unmarshal(req.Payload, &p); err != nil {
					_ = req.Reply(false, nil)
					continue
				}
				line = p.Command
			}
			if line == "" {
				cmd = exec.Command("/bin/sh")
			} else {
				cmd = exec.Command("/bin/sh", "-c", line)
			}
			cmd.Stdin = ch
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

// discard is an io.Writer for outputs a test does not look at.
var discard io.Writer = io.Discard
