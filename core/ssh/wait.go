package ssh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// DefaultProbeInterval is how often WaitReady starts a TCP connect to a
// guest that is not ready yet. Earlier connects stay pending meanwhile (see
// connectStaggered), so the delay between sshd accepting connections and
// the first SYN that reaches it is at most this, whatever the connects'
// timeouts.
const DefaultProbeInterval = 50 * time.Millisecond

// probeConnectWindow bounds one round of staggered connects; a round that
// got no connection is followed by another, until ctx ends.
const probeConnectWindow = time.Second

// maxPendingConnects bounds the connects one round keeps in flight.
const maxPendingConnects = 16

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
// authenticated client. Each round starts a TCP connect every interval
// (DefaultProbeInterval when zero) and keeps the earlier ones pending, for
// up to a second: a SYN sent while the guest has no address yet is dropped
// and its connect would only retry after the kernel's 1 s retransmit, while
// a connect with a short timeout leaves gaps as long as that timeout. The
// first connection gets the ssh handshake and authentication; port 22 often
// opens before sshd accepts logins, so handshake failures are retried too.
// A changed host key is returned at once, refused credentials after a few
// tries; otherwise it goes on until ctx ends, and the error then carries the
// last failure.
func DialWait(ctx context.Context, t Target, interval time.Duration) (*Client, error) {
	if interval <= 0 {
		interval = DefaultProbeInterval
	}
	hs := t.HandshakeTimeout
	if hs <= 0 {
		hs = probeHandshakeTimeout
	}
	cfg, err := clientConfig(t)
	if err != nil {
		return nil, err
	}
	addr := t.addr()
	start := time.Now()
	authFailures := 0
	var last error
	for {
		round := time.Now()
		var c *Client
		raw, err := connectStaggered(ctx, tcpDial, addr, interval, probeConnectWindow)
		if err != nil {
			err = fmt.Errorf("connect to %s: %w", addr, err)
		} else {
			c, err = handshake(ctx, t, cfg, raw, hs)
		}
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
		// round whose connects timed out has already waited long enough.
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

// dialFunc opens a TCP connection; tests replace tcpDial.
type dialFunc func(ctx context.Context, addr string) (net.Conn, error)

func tcpDial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// connectStaggered starts a connect to addr at once and another every
// `every`, leaving the earlier ones pending (at most maxPendingConnects),
// and returns the first connection established; the others are cancelled
// and any that still connect are closed. Only a connect that timed out or
// found no host (ARP unanswered) is worth waiting on: any other error (a
// refusal: nothing listens yet) ends the round at once, as does ctx;
// otherwise the round ends after window with the last error.
func connectStaggered(ctx context.Context, dial dialFunc, addr string, every, window time.Duration) (net.Conn, error) {
	rctx, cancel := context.WithTimeout(ctx, window)
	type result struct {
		c   net.Conn
		err error
	}
	results := make(chan result, maxPendingConnects)
	pending := 0
	launch := func() {
		pending++
		go func() {
			c, err := dial(rctx, addr)
			results <- result{c, err}
		}()
	}
	// finish cancels what is still pending and, in the background, closes
	// connections that won the race too late.
	finish := func() {
		cancel()
		n := pending
		go func() {
			for i := 0; i < n; i++ {
				if r := <-results; r.c != nil {
					r.c.Close()
				}
			}
		}()
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	launch()
	var last error
	for {
		select {
		case r := <-results:
			pending--
			if r.err == nil {
				finish()
				return r.c, nil
			}
			if ctx.Err() != nil {
				finish()
				return nil, ctx.Err()
			}
			last = r.err
			var ne net.Error
			if !errors.Is(r.err, syscall.EHOSTUNREACH) && !(errors.As(r.err, &ne) && ne.Timeout()) && rctx.Err() == nil {
				finish()
				return nil, r.err
			}
		case <-tick.C:
			if pending < maxPendingConnects {
				launch()
			}
		case <-rctx.Done():
			finish()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if last == nil {
				last = fmt.Errorf("no connection within %s: %w", window, rctx.Err())
			}
			return nil, last
		}
	}
}
