package ssh

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	xssh "golang.org/x/crypto/ssh"
)

// A server limits the sessions open at once on one connection (OpenSSH's
// MaxSessions is 10; dropbear's MAX_CHANNELS is larger) and refuses the
// next one with "administratively prohibited" or "resource shortage". A
// Client used by many goroutines, and the mux that carries every `lago
// shell` of a VM on one connection, treat such a refusal as back-pressure:
// the open waits for one of the connection's own sessions to end and is
// tried again, instead of failing a command that would have run a moment
// later.

const (
	sessionRetryFirst = 20 * time.Millisecond
	sessionRetryMax   = time.Second
	// sessionRetriesIdle is how many refusals in a row are retried while
	// none of our sessions is open: the server may still count one we
	// just closed, but a refusal that persists is not about our load.
	sessionRetriesIdle = 6
	// sessionProbe is how long an open waits at the learned limit before
	// it tries anyway, in case the limit was learned too low (a refusal
	// while the server still counted a session we had closed).
	sessionProbe = 2 * time.Second
)

// sessionGate counts a connection's open channels, learns the server's
// limit from its refusals and queues opens beyond it until a channel ends.
type sessionGate struct {
	mu    sync.Mutex
	count int           // open, or being opened
	limit int           // learned from a refusal; 0 = none seen
	freed chan struct{} // closed (and replaced) when a channel ends
}

func newSessionGate() *sessionGate { return &sessionGate{freed: make(chan struct{})} }

// open calls fn until it succeeds, fails for another reason than
// back-pressure, or ctx ends; each success must be paired with done. Opens
// beyond the learned limit wait for a channel to end rather than ask the
// server again, so a queue of commands costs the guest no refusals.
func (g *sessionGate) open(ctx context.Context, fn func() error) error {
	pause := sessionRetryFirst
	idle := 0
	probe := false
	for {
		g.mu.Lock()
		if g.limit > 0 && g.count >= g.limit && !probe {
			freed := g.freed
			g.mu.Unlock()
			var err error
			if probe, err = waitFreed(ctx, freed, jitter(sessionProbe)); err != nil {
				return err
			}
			continue
		}
		g.count++
		g.mu.Unlock()
		probe = false
		err := fn()
		g.mu.Lock()
		if err == nil {
			if g.limit > 0 && g.count > g.limit {
				g.limit = g.count // a probe got through
			}
			g.mu.Unlock()
			return nil
		}
		g.count--
		n, freed := g.count, g.freed
		if backPressure(err) && n > g.limit {
			// Our count is at most the server's (it may still count
			// a channel we closed), so the largest count refused at
			// is the best guess of its limit.
			g.limit = n
		}
		g.mu.Unlock()
		if !backPressure(err) {
			return err
		}
		if n == 0 {
			if idle++; idle > sessionRetriesIdle {
				return err
			}
		}
		if _, werr := waitFreed(ctx, freed, jitter(pause)); werr != nil {
			return errors.Join(err, werr)
		}
		pause = min(2*pause, sessionRetryMax)
	}
}

// waitFreed waits for freed to close or d to pass (timedOut) or ctx to end.
func waitFreed(ctx context.Context, freed <-chan struct{}, d time.Duration) (timedOut bool, err error) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-freed:
		return false, nil
	case <-timer.C:
		return true, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// jitter returns a random duration between d/2 and 3d/2, so waiters that
// were refused together do not all come back together.
func jitter(d time.Duration) time.Duration { return d/2 + rand.N(d) }

// done marks the end of a channel opened through open.
func (g *sessionGate) done() {
	g.mu.Lock()
	g.count--
	close(g.freed)
	g.freed = make(chan struct{})
	g.mu.Unlock()
}

// backPressure reports whether err is a server's refusal to open one more
// channel on the connection now.
func backPressure(err error) bool {
	var oe *xssh.OpenChannelError
	return errors.As(err, &oe) && (oe.Reason == xssh.Prohibited || oe.Reason == xssh.ResourceShortage)
}

// newSession opens a session, waiting out back-pressure (see sessionGate);
// release must be called once the session is closed.
func (c *Client) newSession(ctx context.Context) (s *xssh.Session, release func(), err error) {
	err = c.gate.open(ctx, func() error {
		var e error
		s, e = c.conn.NewSession()
		return e
	})
	if err != nil {
		return nil, nil, err
	}
	var once sync.Once
	return s, func() { once.Do(c.gate.done) }, nil
}

func newClient(t Target, conn *xssh.Client) *Client {
	return &Client{target: t, conn: conn, gate: newSessionGate()}
}
