package ssh

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	xssh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// A prefix's known_hosts is shared by every lago process working on it (32
// `lago shell` at once are common in CI), so it is only changed under an
// flock of the file: a key is recorded by a single O_APPEND write that
// starts on a line of its own, and a line cut short (a process killed while
// writing, a full disk) is dropped by the next reader, with a warning,
// instead of making every later login to the prefix fail or gluing the next
// key onto it.

// knownHostsMu serialises known_hosts work within the process; flock
// serialises it between processes.
var knownHostsMu sync.Mutex

// tofu returns a host key callback that records unknown hosts in path, and
// the host key algorithms to ask for when the host is already known (so a
// server that also has a key of another type is not mistaken for a changed
// one).
func tofu(path, addr string) (xssh.HostKeyCallback, []string, error) {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("create known_hosts folder: %w", err)
	}
	f, err := lockKnownHosts(path)
	if err != nil {
		return nil, nil, err
	}
	err = repairKnownHosts(f, path)
	if err == nil {
		var check xssh.HostKeyCallback
		if check, err = knownhosts.New(path); err == nil {
			f.Close()
			return tofuCallback(check, path, addr)
		}
	}
	f.Close()
	return nil, nil, fmt.Errorf("read known_hosts %s: %w", path, err)
}

func tofuCallback(check xssh.HostKeyCallback, path, addr string) (xssh.HostKeyCallback, []string, error) {
	known := knownKeys(check, addr)
	var algos []string
	for _, k := range known {
		algos = append(algos, algorithmsFor(k.Key.Type())...)
	}
	cb := func(hostname string, remote net.Addr, key xssh.PublicKey) error {
		err := check(hostname, remote, key)
		if err == nil {
			return nil
		}
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return fmt.Errorf("check host key of %s: %w", hostname, err)
		}
		if len(ke.Want) > 0 {
			hk := &HostKeyChangedError{Host: hostname, KnownHostsPath: path, Fingerprint: xssh.FingerprintSHA256(key)}
			for _, w := range ke.Want {
				hk.Known = append(hk.Known, w.Filename+":"+strconv.Itoa(w.Line))
			}
			return hk
		}
		return appendKnownHost(path, hostname, key)
	}
	return cb, algos, nil
}

// lockKnownHosts opens path for appending, creating it, and takes an
// exclusive flock on it. A repair replaces the file by a rename, so a lock taken on the file
// it replaced is given up and taken again.
func lockKnownHosts(path string) (*os.File, error) {
	for range 100 {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open known_hosts: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock known_hosts %s: %w", path, err)
		}
		if samePath(f, path) {
			return f, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("lock known_hosts %s: the file keeps being replaced", path)
}

// repairKnownHosts drops the malformed lines of the locked file f (path),
// replacing it atomically (temporary file and rename) when it has any, and
// logs each dropped line. Line numbers of error messages then refer to the
// repaired file, which is the one the user would edit.
func repairKnownHosts(f *os.File, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	var dropped []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if err := knownHostsLineError(line); err != nil {
			dropped = append(dropped, strconv.Itoa(n))
			slog.Warn("known_hosts: dropping a malformed line", "file", path, "line", n, "error", err)
			continue
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(dropped) == 0 && (len(data) == 0 || data[len(data)-1] == '\n') {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".known_hosts-*")
	if err != nil {
		return fmt.Errorf("repair: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if _, err := tmp.Write(out.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("repair: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("repair: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("repair: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("repair (dropping malformed lines %s): %w", strings.Join(dropped, ", "), err)
	}
	return nil
}

// knownHostsLineError says why line is not a known_hosts line that
// x/crypto's knownhosts would use; blank lines and comments are fine.
func knownHostsLineError(line []byte) error {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] == '#' {
		return nil
	}
	_, hosts, _, _, rest, err := xssh.ParseKnownHosts(line)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return errors.New("more than one entry on the line")
	}
	for _, h := range hosts {
		if !strings.HasPrefix(h, "|") {
			continue
		}
		// |1|salt|hash, both base64.
		p := strings.Split(h, "|")
		if len(p) != 4 || p[1] != "1" {
			return fmt.Errorf("bad hashed host %q", h)
		}
		for _, b := range p[2:] {
			if _, err := base64.StdEncoding.DecodeString(b); err != nil {
				return fmt.Errorf("bad hashed host %q: %w", h, err)
			}
		}
	}
	return nil
}

// knownKeys lists the recorded keys of addr by probing the checker with a key
// that cannot match.
func knownKeys(check xssh.HostKeyCallback, addr string) []knownhosts.KnownKey {
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		tcp = &net.TCPAddr{IP: net.IPv4zero}
	}
	err = check(addr, tcp, probeKey{})
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) {
		return ke.Want
	}
	return nil
}

// probeKey is a public key no known_hosts line can hold.
type probeKey struct{}

func (probeKey) Type() string                         { return "lago-probe" }
func (probeKey) Marshal() []byte                      { return []byte("lago-probe") }
func (probeKey) Verify([]byte, *xssh.Signature) error { return errors.New("probe key") }

func algorithmsFor(keyType string) []string {
	if keyType == xssh.KeyAlgoRSA {
		return []string{xssh.KeyAlgoRSASHA512, xssh.KeyAlgoRSASHA256, xssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// appendKnownHost records hostname's key in path: under the file's lock,
// unless another connection recorded it since the file was read, as one
// write that starts on a line of its own.
func appendKnownHost(path, hostname string, key xssh.PublicKey) error {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	f, err := lockKnownHosts(path)
	if err != nil {
		return fmt.Errorf("record host key: %w", err)
	}
	defer f.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("record host key: %w", err)
	}
	if check, err := knownhosts.New(path); err == nil {
		err := check(hostname, &net.TCPAddr{IP: net.IPv4zero}, key)
		if err == nil {
			return nil
		}
		// Another first login recorded a different key for this host since
		// the file was read (two concurrent first logins, one intercepted):
		// the key recorded first wins, this one is a changed key.
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) && len(ke.Want) > 0 {
			known := make([]string, 0, len(ke.Want))
			for _, w := range ke.Want {
				known = append(known, fmt.Sprintf("%s:%d", w.Filename, w.Line))
			}
			return &HostKeyChangedError{Host: hostname, KnownHostsPath: path,
				Fingerprint: xssh.FingerprintSHA256(key), Known: known}
		}
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key) + "\n"
	if len(data) > 0 && data[len(data)-1] != '\n' {
		// Torn by a writer that died after tofu read the file.
		line = "\n" + line
	}
	if _, err := f.WriteString(line); err != nil {
		return fmt.Errorf("record host key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("record host key: %w", err)
	}
	return nil
}
