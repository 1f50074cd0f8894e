package ssh

import (
	"context"
	"errors"
	"sync"
	"time"

	xssh "golang.org/x/crypto/ssh"
)

// muxMaxConns bounds the mux's connections to its guest. A connection
// carries as many sessions as the guest allows on one (one for a dropbear
// that aborts overlapping sessions, MaxSessions for OpenSSH, see
// session.go); when every connection is full, the mux logs in once more,
// one login at a time, rather than make the sessions wait in line. Each
// login costs a TCG guest 0.1-0.3 s of CPU, so a few are enough.
const muxMaxConns = 4

// muxGrowPause is how long the mux waits before it tries another
// connection after one failed (a guest refusing more logins).
const muxGrowPause = 5 * time.Second

// guestPool is a mux's connections to its guest: the first one, made when
// the mux starts (its loss ends the mux), and those added on demand, which
// leave the pool when they break.
type guestPool struct {
	target Target

	mu       sync.Mutex
	conns    []*Client // conns[0] is the first
	dialing  bool
	failedAt time.Time     // of the last failed extra login
	changed  chan struct{} // closed (and replaced) when a channel ends or a connection joins or leaves
	closed   bool
}

func newGuestPool(t Target, first *Client) *guestPool {
	p := &guestPool{target: t, changed: make(chan struct{})}
	p.add(first)
	return p
}

// add puts c in the pool and has it leave the pool when it breaks.
func (p *guestPool) add(c *Client) {
	c.gate.onFree = p.notify
	p.mu.Lock()
	p.conns = append(p.conns, c)
	first := len(p.conns) == 1
	p.notifyLocked()
	p.mu.Unlock()
	if !first {
		go func() {
			_ = c.conn.Wait()
			p.remove(c)
		}()
	}
}

// remove takes an extra connection out of the pool and closes it.
func (p *guestPool) remove(c *Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.conns {
		if x == c && i > 0 {
			p.conns = append(p.conns[:i], p.conns[i+1:]...)
			p.notifyLocked()
			c.Close()
			return
		}
	}
}

func (p *guestPool) notify() {
	p.mu.Lock()
	p.notifyLocked()
	p.mu.Unlock()
}

func (p *guestPool) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// close closes every connection but the first, which its owner closes.
func (p *guestPool) close() {
	p.mu.Lock()
	p.closed = true
	extra := append([]*Client(nil), p.conns[1:]...)
	p.mu.Unlock()
	for _, c := range extra {
		c.Close()
	}
}

// open opens a channel of type typ on a connection that can take it,
// waiting for one to free up or logging in once more (see muxMaxConns)
// when none can; release must be called once the channel is closed.
func (p *guestPool) open(ctx context.Context, typ string, extra []byte) (ch xssh.Channel, reqs <-chan *xssh.Request, release func(), err error) {
	pause := sessionRetryFirst
	idle := 0
	probe := false
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, nil, nil, errors.New("ssh mux: shutting down")
		}
		var g *Client
		for _, c := range p.conns {
			if c.gate.try(probe) {
				g = c
				break
			}
		}
		grow := g == nil && !p.dialing && len(p.conns) < muxMaxConns && time.Since(p.failedAt) > muxGrowPause
		if grow {
			p.dialing = true
		}
		changed := p.changed
		p.mu.Unlock()
		probe = false

		switch {
		case g != nil:
			ch, reqs, err := g.conn.OpenChannel(typ, extra)
			if err == nil {
				g.gate.opened()
				var once sync.Once
				return ch, reqs, func() { once.Do(g.gate.done) }, nil
			}
			n := g.gate.failed(err)
			if !backPressure(err) {
				if g != p.first() {
					p.remove(g) // a broken extra connection: try the others
					continue
				}
				return nil, nil, nil, err
			}
			if n == 0 {
				if idle++; idle > sessionRetriesIdle {
					return nil, nil, nil, err
				}
			}
			// Refused with room by our count: the guest still
			// counts a channel we closed a moment ago. Waking at the
			// next channel end would only be refused again.
			if _, werr := waitFreed(ctx, nil, jitter(pause)); werr != nil {
				return nil, nil, nil, errors.Join(err, werr)
			}
			pause = min(2*pause, sessionRetryMax)
		case grow:
			c, err := Dial(ctx, p.target)
			p.mu.Lock()
			p.dialing = false
			if err != nil {
				p.failedAt = time.Now()
			}
			closed := p.closed
			p.notifyLocked()
			p.mu.Unlock()
			if err == nil {
				if closed {
					c.Close()
				} else {
					p.add(c)
				}
			} else if ctx.Err() != nil {
				return nil, nil, nil, ctx.Err()
			}
		default:
			timedOut, werr := waitFreed(ctx, changed, jitter(sessionProbe))
			if werr != nil {
				return nil, nil, nil, werr
			}
			probe = timedOut
		}
	}
}

func (p *guestPool) first() *Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns[0]
}
