package ssh

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefaultProbeInterval is how often WaitReady probes a guest that is not
// ready yet. With the 200 ms connect timeout it keeps the delay between sshd
// accepting logins and the caller noticing well under 250 ms.
const DefaultProbeInterval = 100 * time.Millisecond

// maxAuthFailures is how many refused logins in a row WaitReady tolerates
// before it reports ErrAuth: a guest can refuse while it is still writing its
// authorized_keys, but a wrong password never heals.
const maxAuthFailures = 3

// WaitReady waits until t accepts a login or ctx ends. See DialWait.
func WaitReady(ctx context.Context, t Target, interval time.Duration) error {
	c, err := DialWait(ctx, t, interval)
	if err != nil {
		return err
	}
	return c.Close()
}

// DialWait polls a booting guest until it accepts a login and returns the
// authenticated client. Each round makes a TCP connect with a 200 ms timeout
// (a guest that does not answer ARP yet would otherwise stall a connect for
// seconds), then the ssh handshake and authentication on that connection;
// port 22 often opens before sshd accepts logins, so handshake failures are
// retried too. A changed host key is returned at once, refused credentials
// after a few tries; otherwise it polls every interval (DefaultProbeInterval
// when zero) until ctx ends, and the error then carries the last failure.
func DialWait(ctx context.Context, t Target, interval time.Duration) (*Client, error) {
	if interval <= 0 {
		interval = DefaultProbeInterval
	}
	hs := t.HandshakeTimeout
	if hs <= 0 {
		hs = probeHandshakeTimeout
	}
	start := time.Now()
	authFailures := 0
	var last error
	for {
		round := time.Now()
		c, err := dial(ctx, t, probeDialTimeout, hs)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, waitError(t, start, last, ctx.Err())
		}
		var hk *HostKeyChangedError
		if errors.As(err, &hk) {
			return nil, err
		}
		if errors.Is(err, ErrAuth) {
			authFailures++
			if authFailures >= maxAuthFailures {
				return nil, err
			}
		} else {
			authFailures = 0
		}
		last = err
		// A refused connect returns at once: sleep out the interval. A
		// connect that timed out has already waited long enough.
		wait := interval - time.Since(round)
		if wait <= 0 {
			continue
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, waitError(t, start, last, ctx.Err())
		case <-timer.C:
		}
	}
}

func waitError(t Target, start time.Time, last, cause error) error {
	if last == nil {
		return fmt.Errorf("ssh to %s not ready after %s: %w", t.addr(), time.Since(start).Round(time.Millisecond), cause)
	}
	return fmt.Errorf("ssh to %s not ready after %s (last error: %v): %w", t.addr(), time.Since(start).Round(time.Millisecond), last, cause)
}
