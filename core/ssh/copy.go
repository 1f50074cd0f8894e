package ssh

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
)

// Files are copied with the guest's own `tar` (busybox has it), and file
// by file with `find`, `cat` and `stat` on a guest without tar, instead of
// scp or sftp, which minimal guests often lack. Names travel as positional
// parameters of fixed scripts, never spliced into shell text, and every
// name a guest sends is confined to the destination folder on the host
// (see extract.go). Both directions stream: memory does not grow with the
// size of a file.
//
// The semantics are cp -r's and scp -r's: a source lands inside a
// destination that is an existing folder, under its own name, and
// otherwise becomes the destination, whose parent folder must exist. Modes
// (permission bits) and modification times (to the second) are kept;
// owners are not (files belong to whoever copies them).

// Runner runs one command on a guest and returns its exit code; err is set
// only when it could not be run. *Client is one; so is a caller's adapter
// that goes through the VM's kept connection. Copies run several commands
// (a probe, then the stream) one after the other, never at once.
type Runner interface {
	Run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error)
}

var _ Runner = (*Client)(nil)

// ErrRemoteNotFound is matched by a *NotFoundError for a path in the guest
// (`lago collect` skips such paths unless --no-skip).
var ErrRemoteNotFound = errors.New("no such file or folder in the guest")

// NotFoundError is a path of a copy that does not exist: in the guest when
// Remote is set (errors.Is matches ErrRemoteNotFound), else on this host
// (errors.Is matches fs.ErrNotExist).
type NotFoundError struct {
	Path   string
	Remote bool
}

func (e *NotFoundError) Error() string {
	if e.Remote {
		return fmt.Sprintf("%s: %v", e.Path, ErrRemoteNotFound)
	}
	return fmt.Sprintf("%s: no such file or folder on this host", e.Path)
}

// Is makes errors.Is match ErrRemoteNotFound or fs.ErrNotExist.
func (e *NotFoundError) Is(target error) bool {
	if e.Remote {
		return target == ErrRemoteNotFound
	}
	return target == fs.ErrNotExist
}

// ErrUnsafeEntry is wrapped when a guest sends an entry that would be
// written outside the destination (an absolute name, "..", a name under a
// symbolic link, a hard link to a file the copy did not write) or that the
// copy did not ask for. Nothing of the entry is written.
var ErrUnsafeEntry = errors.New("unsafe entry from the guest")

// ErrTooLarge is wrapped when a copy from a guest passes its Limits.
var ErrTooLarge = errors.New("copy from the guest is over its limit")

// CopyTo copies a local file or folder to remote in the guest (see Push).
func (c *Client) CopyTo(ctx context.Context, local, remote string) error {
	return Push(ctx, c, local, remote)
}

// CopyFrom copies a remote file or folder to local (see CopyFrom).
func (c *Client) CopyFrom(ctx context.Context, remote, local string) error {
	return CopyFrom(ctx, c, remote, local, PullOptions{})
}

// remoteError describes a guest command's failure by its exit code and
// what it printed on stderr.
func remoteError(what string, code int, stderr *capped) error {
	msg := strings.TrimSpace(stderr.String())
	if msg == "" {
		return fmt.Errorf("%s: remote exit %d", what, code)
	}
	return fmt.Errorf("%s: remote exit %d: %s", what, code, msg)
}

// capped keeps the first max bytes written to it (the guest's stderr: a
// guest cannot make us hold an endless stream) and accepts the rest.
// It is safe for concurrent use: a session cut off by its context may
// still be writing when the caller reads.
type capped struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	max  int
	over bool // more than max came
}

func newCapped() *capped { return &capped{max: 8 << 10} }

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.max - c.buf.Len()
	if room < len(p) {
		c.over = true
	}
	if room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// Bytes returns what was kept and whether more came.
func (c *capped) Bytes() ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Bytes(), c.over
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// tempName is a hidden, unguessable name next to final: a copy in
// progress never holds the final name.
func tempName(final string) string {
	if len(final) > 200 {
		final = final[:200] // the name limit is 255 bytes
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "." + final + ".lago-" + hex.EncodeToString(b[:])
}
