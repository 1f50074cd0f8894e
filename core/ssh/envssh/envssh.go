// Package envssh adapts core/ssh to the SSH interface of core/env, so env
// stays testable with a fake and core/ssh knows nothing about prefixes.
package envssh

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/lago-go/lago/core/env"
	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/ssh"
)

// KnownHostsFile is the name of the trust-on-first-use file kept beside the
// prefix's key (so `lago destroy` forgets the prefix's host keys with it).
const KnownHostsFile = "known_hosts"

// SSH implements env.SSH. The zero value is ready to use.
type SSH struct {
	// Interval between readiness probes; zero means ssh.DefaultProbeInterval.
	Interval time.Duration
	// KnownHosts overrides where a target's host keys are recorded; by
	// default known_hosts beside the target's key file, or none (any key
	// accepted) when the target has no key file.
	KnownHosts func(env.SSHTarget) string
}

var _ env.SSH = SSH{}

// Target converts an env target to a core/ssh one.
func (s SSH) Target(t env.SSHTarget) ssh.Target {
	addr := t.Host
	if t.Port != 0 {
		addr = net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
	}
	kh := ""
	switch {
	case s.KnownHosts != nil:
		kh = s.KnownHosts(t)
	case t.KeyFile != "":
		kh = filepath.Join(filepath.Dir(t.KeyFile), KnownHostsFile)
	}
	return ssh.Target{Addr: addr, User: t.User, Password: t.Password, KeyPath: t.KeyFile, KnownHostsPath: kh}
}

// WaitReady returns once the VM accepts a login.
func (s SSH) WaitReady(ctx context.Context, t env.SSHTarget) error {
	err := ssh.WaitReady(ctx, s.Target(t), s.Interval)
	return mark(t, err)
}

// Run runs argv on the VM, or an interactive shell when argv is empty.
func (s SSH) Run(ctx context.Context, t env.SSHTarget, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	c, err := ssh.Dial(ctx, s.Target(t))
	if err != nil {
		return -1, mark(t, err)
	}
	defer c.Close()
	if len(argv) == 0 {
		return c.Shell(ctx, stdin, stdout, stderr)
	}
	return c.Run(ctx, argv, stdin, stdout, stderr)
}

// mark makes refused credentials and changed host keys Lago errors (exit 2):
// they are problems of the environment, not bugs.
func mark(t env.SSHTarget, err error) error {
	if err == nil {
		return nil
	}
	var hk *ssh.HostKeyChangedError
	if errors.Is(err, ssh.ErrAuth) || errors.As(err, &hk) {
		return errs.User(err)
	}
	return err
}
