package ssh

import (
	"context"
	"errors"
	"math/rand/v2"
	"regexp"
	"strconv"
	"sync"
	"time"

	xssh "golang.org/x/crypto/ssh"
)

// A server limits the sessions open at once on one connection (OpenSSH's
// MaxSessions is 10; dropbear's MAX_CHANNELS is larger) and refuses the
// next one with "administratively prohibited" or "resource shortage". A
// Client used by many goroutines, and the mux that carries every `lago
// shell` of a VM, treat such a refusal as back-pressure: the open waits for
// one of the connection's own sessions to end and is tried again, instead
// of failing a command that would have run a moment later.
//
// dropbear 2022.82 to 2024.85 cannot carry two sessions at once on one
// connection reliably: a session whose command exits while another session
// is opened but not yet started makes dropbear close the new one, then abort
// the whole connection ("Failed assertion (common-channel.c:705):
// `!channel->sent_close'", github.com/mkj/dropbear issues 173 and 321,
// fixed in 2024.86). All the connection's commands then fail with EOF. A
// connection to such a server carries one session at a time
// (sessionsFor); the mux opens more connections instead.

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
	max   int           // what the server is known to carry; 0 = no cap
	limit int           // learned from a refusal; 0 = none seen
	freed chan struct{} // closed (and replaced) when a channel ends
	// onFree, when set, is called after a channel ended (the mux's pool
	// wakes opens waiting for any of its connections).
	onFree func()
}

func newSessionGate(max int) *sessionGate {
	return &sessionGate{max: max, freed: make(chan struct{})}
}

// try counts one more channel if the connection can take it: below max,
// and below the learned limit unless probing.
func (g *sessionGate) try(probe bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.max > 0 && g.count >= g.max {
		return false
	}
	if g.limit > 0 && g.count >= g.limit && !probe {
		return false
	}
	g.count++
	return true
}

// opened records that the channel counted by try opened.
func (g *sessionGate) opened() {
	g.mu.Lock()
	if g.limit > 0 && g.count > g.limit {
		g.limit = g.count // a probe got through
	}
	g.mu.Unlock()
}

// failed uncounts the channel counted by try, whose open failed with err,
// and learns the limit from a refusal. It returns how many channels stay
// open.
func (g *sessionGate) failed(err error) (open int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.count--
	if backPressure(err) && g.count > g.limit {
		// Our count is at most the server's (it may still count a
		// channel we closed), so the largest count refused at is the
		// best guess of its limit.
		g.limit = g.count
	}
	return g.count
}

// waitChan is what closes when a channel ends.
func (g *sessionGate) waitChan() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.freed
}

// done marks the end of a channel counted by try.
func (g *sessionGate) done() {
	g.mu.Lock()
	g.count--
	close(g.freed)
	g.freed = make(chan struct{})
	onFree := g.onFree
	g.mu.Unlock()
	if onFree != nil {
		onFree()
	}
}

// open calls fn until it succeeds, fails for another reason than
// back-pressure, or ctx ends; each success must be paired with done. Opens
// beyond the cap or the learned limit wait for a channel to end rather than
// ask the server again, so a queue of commands costs the guest no refusals.
func (g *sessionGate) open(ctx context.Context, fn func() error) error {
	pause := sessionRetryFirst
	idle := 0
	probe := false
	for {
		if !g.try(probe) {
			var err error
			if probe, err = waitFreed(ctx, g.waitChan(), jitter(sessionProbe)); err != nil {
				return err
			}
			continue
		}
		probe = false
		err := fn()
		if err == nil {
			g.opened()
			return nil
		}
		n := g.failed(err)
		if !backPressure(err) {
			return err
		}
		if n == 0 {
			if idle++; idle > sessionRetriesIdle {
				return err
			}
		}
		// The limit is learned now: the next try waits for a channel
		// to end. Refused with room by our count, the server still
		// counts a channel we closed a moment ago: waking at the next
		// channel end would only be refused again.
		if _, werr := waitFreed(ctx, nil, jitter(pause)); werr != nil {
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

// backPressure reports whether err is a server's refusal to open one more
// channel on the connection now.
func backPressure(err error) bool {
	var oe *xssh.OpenChannelError
	return errors.As(err, &oe) && (oe.Reason == xssh.Prohibited || oe.Reason == xssh.ResourceShortage)
}

var dropbearVersion = regexp.MustCompile(`^SSH-2\.0-dropbear(?:_(\d{4})\.(\d+))?`)

// sessionsFor returns how many sessions at once a connection to the server
// that sent this version string carries: 1 for a dropbear older than
// 2024.86 or of unknown version (see the top of this file), else 0, no cap
// but the server's refusals.
func sessionsFor(serverVersion string) int {
	m := dropbearVersion.FindStringSubmatch(serverVersion)
	if m == nil {
		return 0
	}
	if m[1] == "" {
		return 1
	}
	year, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if year > 2024 || year == 2024 && minor >= 86 {
		return 0
	}
	return 1
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
	return &Client{target: t, conn: conn, gate: newSessionGate(sessionsFor(string(conn.ServerVersion())))}
}
