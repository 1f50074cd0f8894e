package lago

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Time limits of one guestfish command: the appliance's start (with
// several disks, under TCG, on a busy host) and any other command. A
// guest is not trusted to let a command end.
const (
	fishLaunchTimeout  = 10 * time.Minute
	fishCommandTimeout = 2 * time.Minute
	// fishMaxOutput caps what one command may print (lines of inspection
	// output, globs): more means something is wrong.
	fishMaxOutput = 4 << 20
)

// guestfishProc is a guestfish process reading commands on its stdin.
// After each command it is sent `echo <nonce>`, so the command's output is
// what comes before that line; the nonce is random, so no guest content can
// fake the end of an answer. guestfish exits on the first failing command
// of a non-interactive script, so a failure shows as the end of its output
// with the error on stderr.
type guestfishProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *markBuffer
	nonce  string
	exited chan struct{}
	werr   error
	stop   func() bool
	closed bool
}

// startGuestfish starts bin (default guestfish) with env added to the
// environment. ctx ending kills it.
func startGuestfish(ctx context.Context, bin string, env []string) (*guestfishProc, error) {
	if bin == "" {
		bin = "guestfish"
	}
	n := make([]byte, 16)
	if _, err := rand.Read(n); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--no-progress-bars")
	cmd.Env = append(os.Environ(), env...)
	// Its own process group: a Ctrl-C reaches lago, which then ends
	// guestfish in order, rather than both at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &guestfishProc{cmd: cmd, stdin: stdin, lines: make(chan string, 64), stderr: &markBuffer{}, nonce: "lago-" + hex.EncodeToString(n), exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		p.werr = cmd.Wait()
		close(p.exited)
	}()
	p.stop = context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	return p, nil
}

// fishQuote quotes one argument for guestfish: inside double quotes only
// \ and " are special, and control characters are written as \xHH, so an
// argument stays one word whatever it holds.
func fishQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' || c == '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, "\\x%02x", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// fishLine is the script line of one command: the name bare (it is always
// one of lago's), every argument quoted.
func fishLine(args []string) string {
	parts := make([]string, len(args))
	for i, a := range args {
		if i == 0 {
			parts[i] = a
		} else {
			parts[i] = fishQuote(a)
		}
	}
	return strings.Join(parts, " ")
}

// Do implements fish.
func (p *guestfishProc) Do(ctx context.Context, args ...string) ([]string, error) {
	if len(args) == 0 || !fishCommand.MatchString(args[0]) {
		return nil, fmt.Errorf("bad guestfish command %q", args)
	}
	p.stderr.mark()
	for _, a := range args {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, fmt.Errorf("guestfish %s: an argument has a NUL byte", args[0])
		}
	}
	timeout := fishCommandTimeout
	if args[0] == "run" || args[0] == "launch" || args[0] == "inspect-os" {
		timeout = fishLaunchTimeout
	}
	if _, err := io.WriteString(p.stdin, fishLine(args)+"\necho "+p.nonce+"\n"); err != nil {
		return nil, p.failure(args[0], err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var out []string
	size := 0
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				return nil, p.failure(args[0], nil)
			}
			if l == p.nonce {
				return out, nil
			}
			size += len(l) + 1
			if size > fishMaxOutput {
				_ = p.cmd.Process.Kill()
				return nil, fmt.Errorf("guestfish %s: more than %d bytes of output", args[0], fishMaxOutput)
			}
			out = append(out, l)
		case <-timer.C:
			_ = p.cmd.Process.Kill()
			return nil, fmt.Errorf("guestfish %s: no answer within %s", args[0], timeout)
		case <-ctx.Done():
			_ = p.cmd.Process.Kill()
			return nil, fmt.Errorf("guestfish %s: %w", args[0], ctx.Err())
		}
	}
}

// failure is the error of a command after which guestfish stopped: its
// last stderr lines, without guestfish's "*stdin*:N:" prefix.
func (p *guestfishProc) failure(cmd string, werr error) error {
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	var msgs []string
	for _, l := range strings.Split(strings.TrimSpace(p.stderr.sinceMark()), "\n") {
		l = strings.TrimSpace(l)
		if i := strings.Index(l, "*stdin*:"); i == 0 {
			if j := strings.Index(l[len("*stdin*:"):], ": "); j >= 0 {
				l = l[len("*stdin*:")+j+2:]
			}
		}
		l = strings.TrimPrefix(l, "libguestfs: error: ")
		if l != "" && !strings.HasPrefix(l, "(in guestfish, don't forget") {
			msgs = append(msgs, l)
		}
	}
	msg := strings.Join(msgs, "; ")
	if msg == "" {
		msg = "guestfish exited"
		if p.werr != nil {
			msg += ": " + p.werr.Error()
		} else if werr != nil {
			msg += ": " + werr.Error()
		}
	}
	return errors.New(cmd + ": " + msg)
}

// fishCommand is what a command name looks like: guestfish's names,
// optionally with the leading "-" that makes guestfish go on after the
// command fails (probes whose failure is an answer).
var fishCommand = regexp.MustCompile(`^-?[a-z][a-z0-9-]*$`)

// markBuffer keeps guestfish's stderr since the last mark (capped), so
// that an error message is the failing command's, not an earlier probe's.
type markBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const markBufferMax = 16 << 10

func (m *markBuffer) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.buf = append(m.buf, p...)
	if len(m.buf) > markBufferMax {
		m.buf = m.buf[len(m.buf)-markBufferMax:]
	}
	return len(p), nil
}

func (m *markBuffer) mark() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.buf = m.buf[:0]
}

func (m *markBuffer) sinceMark() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return string(m.buf)
}

// Close implements fish: the end of its input makes guestfish shut the
// appliance down (syncing the disks) and exit.
func (p *guestfishProc) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	defer p.stop()
	_ = p.stdin.Close()
	select {
	case <-p.exited:
	case <-time.After(fishCommandTimeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return errors.New("guestfish did not exit after its input ended")
	}
	if p.werr != nil {
		var ee *exec.ExitError
		if errors.As(p.werr, &ee) && ee.Exited() {
			return fmt.Errorf("guestfish: %w: %s", p.werr, strings.TrimSpace(p.stderr.sinceMark()))
		}
		return fmt.Errorf("guestfish: %w", p.werr)
	}
	return nil
}

// hostKey is an OpenSSH host key pair in the files' formats.
type hostKey struct {
	private, public []byte
}

// hostKeySet makes a VM's new host keys, each type at most once.
type hostKeySet struct {
	comment string
	mu      sync.Mutex
	keys    map[string]*pendingKey
}

type pendingKey struct {
	done chan struct{}
	key  hostKey
	err  error
}

func newHostKeySet(hostname string) *hostKeySet {
	return &hostKeySet{comment: "root@" + hostname, keys: map[string]*pendingKey{}}
}

// pregenerate starts making a key of each type in the background.
func (s *hostKeySet) pregenerate() {
	for _, k := range []string{"rsa", "ecdsa", "ed25519"} {
		s.pending(k)
	}
}

func (s *hostKeySet) pending(kind string) *pendingKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pk, ok := s.keys[kind]; ok {
		return pk
	}
	pk := &pendingKey{done: make(chan struct{})}
	s.keys[kind] = pk
	go func() {
		defer close(pk.done)
		pk.key, pk.err = makeHostKey(kind, s.comment)
	}()
	return pk
}

// get returns the key of kind (rsa, ecdsa or ed25519).
func (s *hostKeySet) get(kind string) (hostKey, error) {
	pk := s.pending(kind)
	<-pk.done
	return pk.key, pk.err
}

// rsaHostKeyBits is ssh-keygen's default (tests make smaller keys: a
// 3072-bit one takes seconds under the race detector).
var rsaHostKeyBits = 3072

// makeHostKey makes a key as ssh-keygen -A would: RSA 3072 bits, ECDSA
// P-256, Ed25519, the private key in OpenSSH's format.
func makeHostKey(kind, comment string) (hostKey, error) {
	var priv any
	var err error
	switch kind {
	case "rsa":
		priv, err = rsa.GenerateKey(rand.Reader, rsaHostKeyBits)
	case "ecdsa":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ed25519":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return hostKey{}, fmt.Errorf("no host keys of type %s", kind)
	}
	if err != nil {
		return hostKey{}, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return hostKey{}, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return hostKey{}, err
	}
	pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " " + comment + "\n"
	return hostKey{private: pem.EncodeToMemory(block), public: []byte(pub)}, nil
}
