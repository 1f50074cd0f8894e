package ssh

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeDialer scripts connectStaggered's connects: attempt i (from 0) calls
// plan(i, ctx), which blocks, fails or returns a connection.
type fakeDialer struct {
	mu       sync.Mutex
	attempts int // dial calls
	returned int // dial calls that returned
	plan     func(i int, ctx context.Context) (net.Conn, error)
}

func (f *fakeDialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	f.mu.Lock()
	i := f.attempts
	f.attempts++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.returned++
		f.mu.Unlock()
	}()
	return f.plan(i, ctx)
}

func (f *fakeDialer) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts
}

// trackedConn records Close.
type trackedConn struct {
	net.Conn
	id     int
	closed atomic.Bool
}

func (c *trackedConn) Close() error { c.closed.Store(true); return nil }

func newTracked(id int) *trackedConn {
	a, b := net.Pipe()
	b.Close()
	return &trackedConn{Conn: a, id: id}
}

// waitAll fails the test when some fake connect is still pending a second
// after connectStaggered returned: every attempt must be cancelled.
// A connect launched just before connectStaggered returned may not have
// called dial yet, so all must have returned and stayed so for 50 ms.
func (f *fakeDialer) waitAll(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	settled := time.Time{}
	for time.Now().Before(deadline) {
		f.mu.Lock()
		idle := f.attempts == f.returned
		f.mu.Unlock()
		switch {
		case !idle:
			settled = time.Time{}
		case settled.IsZero():
			settled = time.Now()
		case time.Since(settled) > 50*time.Millisecond:
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("connect attempts still pending after connectStaggered returned")
}

func refused() error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
}

func TestConnectStaggered(t *testing.T) {
	const every = 20 * time.Millisecond
	tests := []struct {
		name       string
		window     time.Duration
		plan       func(i int, ctx context.Context) (net.Conn, error)
		wantID     int  // attempt whose connection is returned; -1 for an error
		wantRefuse bool // the error is the refusal
		minTries   int
		atOnce     bool // the round ends well before its window
	}{
		{
			// The earlier SYNs were dropped (no address yet): they stay
			// pending while later connects go out, and the fourth wins.
			name:   "later attempt wins while earlier ones hang",
			window: 5 * time.Second,
			plan: func(i int, ctx context.Context) (net.Conn, error) {
				if i < 3 {
					<-ctx.Done()
					return nil, ctx.Err()
				}
				return newTracked(i), nil
			},
			wantID: 3, minTries: 4,
		},
		{
			name:   "a refusal ends the round at once",
			window: 5 * time.Second,
			plan: func(i int, ctx context.Context) (net.Conn, error) {
				if i == 0 {
					return nil, refused()
				}
				<-ctx.Done()
				return nil, ctx.Err()
			},
			wantID: -1, wantRefuse: true, minTries: 1, atOnce: true,
		},
		{
			name:   "another error (no route) ends the round at once",
			window: 5 * time.Second,
			plan: func(i int, ctx context.Context) (net.Conn, error) {
				if i == 0 {
					return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}
				}
				<-ctx.Done()
				return nil, ctx.Err()
			},
			wantID: -1, minTries: 1, atOnce: true,
		},
		{
			name:   "unreachable attempts go on until the window ends",
			window: 150 * time.Millisecond,
			plan: func(i int, ctx context.Context) (net.Conn, error) {
				if i%2 == 0 {
					return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}
				}
				<-ctx.Done()
				return nil, ctx.Err()
			},
			wantID: -1, minTries: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeDialer{plan: tt.plan}
			began := time.Now()
			c, err := connectStaggered(context.Background(), f.dial, "guest:22", every, tt.window)
			if took := time.Since(began); tt.atOnce && took > time.Second {
				t.Errorf("the round took %s, want it to end at once", took)
			}
			f.waitAll(t)
			if tt.wantID >= 0 {
				if err != nil {
					t.Fatalf("err = %v, want attempt %d's connection", err, tt.wantID)
				}
				if got := c.(*trackedConn).id; got != tt.wantID {
					t.Fatalf("got attempt %d's connection, want %d's", got, tt.wantID)
				}
			} else if err == nil {
				t.Fatalf("got a connection, want an error")
			}
			if tt.wantRefuse != errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("err = %v, refusal wanted: %v", err, tt.wantRefuse)
			}
			if n := f.count(); n < tt.minTries {
				t.Errorf("%d connects, want at least %d", n, tt.minTries)
			}
		})
	}
}

// TestConnectStaggeredClosesLateWinners: a connect that succeeds after
// another already won is closed, not leaked.
func TestConnectStaggeredClosesLateWinners(t *testing.T) {
	release := make(chan struct{})
	late := newTracked(0)
	f := &fakeDialer{plan: func(i int, ctx context.Context) (net.Conn, error) {
		if i == 0 {
			<-release // ignores ctx, as a connect completing in the kernel
			return late, nil
		}
		return newTracked(i), nil
	}}
	c, err := connectStaggered(context.Background(), f.dial, "guest:22", 10*time.Millisecond, 5*time.Second)
	if err != nil || c.(*trackedConn).id != 1 {
		t.Fatalf("got %v, %v; want attempt 1's connection", c, err)
	}
	close(release)
	f.waitAll(t)
	deadline := time.Now().Add(time.Second)
	for !late.closed.Load() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !late.closed.Load() {
		t.Error("the connection that won too late was not closed")
	}
	if c.(*trackedConn).closed.Load() {
		t.Error("the returned connection was closed")
	}
}

// TestConnectStaggeredHonoursContext: cancelling the caller's ctx ends the
// round with ctx's error and cancels every pending connect.
func TestConnectStaggeredHonoursContext(t *testing.T) {
	f := &fakeDialer{plan: func(i int, ctx context.Context) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(60*time.Millisecond, cancel)
	_, err := connectStaggered(ctx, f.dial, "guest:22", 10*time.Millisecond, 10*time.Second)
	f.waitAll(t)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := f.count(); n < 2 || n > maxPendingConnects {
		t.Errorf("%d connects in 60 ms at one per 10 ms (max %d pending)", n, maxPendingConnects)
	}
}
