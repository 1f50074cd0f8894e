package ssh

import (
	"bytes"
	"context"
	"errors"
	"github.com/lago-go/lago/core/ssh/sshtest"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestShellQuote(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want string
	}{
		{"plain words", []string{"echo", "hello"}, "echo hello"},
		{"empty word", []string{"printf", ""}, "printf ''"},
		{"space", []string{"echo", "a b"}, "echo 'a b'"},
		{"single quote", []string{"echo", "it's"}, `echo 'it'\''s'`},
		{"dollar and backtick", []string{"echo", "$HOME `id`"}, "echo '$HOME `id`'"},
		{"glob and semicolon", []string{"ls", "*; rm -rf /"}, "ls '*; rm -rf /'"},
		{"safe punctuation", []string{"cp", "a-b_c.d/e,f:g@h%i+j=k"}, "cp a-b_c.d/e,f:g@h%i+j=k"},
		{"newline", []string{"echo", "a\nb"}, "echo 'a\nb'"},
		{"tilde is quoted", []string{"ls", "~"}, "ls '~'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ShellQuote(tc.argv); got != tc.want {
				t.Errorf("ShellQuote(%q) = %q, want %q", tc.argv, got, tc.want)
			}
		})
	}
}

// TestShellQuoteRoundTrip checks that a real POSIX shell splits the quoted
// line back into exactly argv.
func TestShellQuoteRoundTrip(t *testing.T) {
	cases := [][]string{
		{"a b", "", "it's", `back\slash`, "$(id)", "`id`", "\"dq\"", "new\nline", "tab\there", "*", "~", "!", "#x", "ü"},
		{"'", "''", `'\''`},
	}
	for _, argv := range cases {
		line := "printf '%s\\0' " + ShellQuote(argv)
		out, err := exec.Command("/bin/sh", "-c", line).Output()
		if err != nil {
			t.Fatalf("sh -c %q: %v", line, err)
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		if len(got) != len(argv) {
			t.Fatalf("got %d words %q, want %q", len(got), got, argv)
		}
		for i := range argv {
			if got[i] != argv[i] {
				t.Errorf("word %d: got %q, want %q", i, got[i], argv[i])
			}
		}
	}
}

func dialT(t *testing.T, tg Target) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, tg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRun(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{Password: "123456"})
	c := dialT(t, Target{Addr: srv.Addr(), Password: "123456"})
	tests := []struct {
		name       string
		argv       []string
		stdin      string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"success", []string{"echo", "hi there"}, "", 0, "hi there\n", ""},
		{"exit code", []string{"sh", "-c", "exit 3"}, "", 3, "", ""},
		{"stdout and stderr apart", []string{"sh", "-c", "echo out; echo err >&2; exit 1"}, "", 1, "out\n", "err\n"},
		{"stdin", []string{"tr", "a-z", "A-Z"}, "hello\n", 0, "HELLO\n", ""},
		{"argv is not reparsed", []string{"echo", "$HOME; false"}, "", 0, "$HOME; false\n", ""},
		{"missing command", []string{"lago-no-such-command"}, "", 127, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			var stdin *strings.Reader
			if tc.stdin != "" {
				stdin = strings.NewReader(tc.stdin)
			}
			var code int
			var err error
			if stdin != nil {
				code, err = c.Run(context.Background(), tc.argv, stdin, &stdout, &stderr)
			} else {
				code, err = c.Run(context.Background(), tc.argv, nil, &stdout, &stderr)
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.wantCode, stderr.String())
			}
			if stdout.String() != tc.wantStdout {
				t.Errorf("stdout %q, want %q", stdout.String(), tc.wantStdout)
			}
			if tc.wantCode != 127 && stderr.String() != tc.wantStderr {
				t.Errorf("stderr %q, want %q", stderr.String(), tc.wantStderr)
			}
		})
	}
}

func TestRunScript(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
	c := dialT(t, Target{Addr: srv.Addr(), Password: "pw"})
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatalf("bash is needed on the host for this test: %v", err)
	}
	var out bytes.Buffer
	code, err := c.RunScript(context.Background(), strings.NewReader("echo \"$1-$2\"\nexit 4\n"), []string{"a b", "c"}, &out, io.Discard)
	if err != nil || code != 4 || out.String() != "a b-c\n" {
		t.Fatalf("RunScript = %d, %v, %q; want 4, nil, %q", code, err, out.String(), "a b-c\n")
	}
}

func TestAuth(t *testing.T) {
	keyPath, pub := sshtest.NewClientKey(t)
	otherKey, _ := sshtest.NewClientKey(t)
	tests := []struct {
		name     string
		server   sshtest.Options
		target   Target
		wantAuth bool // want ErrAuth
	}{
		{"key", sshtest.Options{Key: pub}, Target{KeyPath: keyPath}, false},
		{"key before password", sshtest.Options{Key: pub, Password: "right"}, Target{KeyPath: keyPath, Password: "wrong"}, false},
		{"password after refused key", sshtest.Options{Password: "123456"}, Target{KeyPath: otherKey, Password: "123456"}, false},
		{"password only", sshtest.Options{Password: "123456"}, Target{Password: "123456"}, false},
		{"wrong password", sshtest.Options{Password: "123456"}, Target{Password: "654321"}, true},
		{"wrong key, no password", sshtest.Options{Key: pub}, Target{KeyPath: otherKey}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := sshtest.Start(t, tc.server)
			tc.target.Addr = srv.Addr()
			c, err := Dial(context.Background(), tc.target)
			if tc.wantAuth {
				if !errors.Is(err, ErrAuth) {
					t.Fatalf("Dial error %v, want ErrAuth", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			code, err := c.Run(context.Background(), []string{"true"}, nil, nil, nil)
			if err != nil || code != 0 {
				t.Fatalf("Run true = %d, %v", code, err)
			}
		})
	}
}

func TestNoCredentials(t *testing.T) {
	if _, err := Dial(context.Background(), Target{Addr: "127.0.0.1:1"}); err == nil || !strings.Contains(err.Error(), "no key and no password") {
		t.Fatalf("Dial without credentials: %v", err)
	}
}

func TestKnownHostsTOFU(t *testing.T) {
	kh := filepath.Join(t.TempDir(), "sub", "known_hosts")
	hostKey := sshtest.NewHostKey(t)
	srv := sshtest.Start(t, sshtest.Options{Password: "pw", HostKey: hostKey})
	addr := srv.Addr()
	tg := Target{Addr: addr, Password: "pw", KnownHostsPath: kh}

	dialT(t, tg).Close()
	data, err := os.ReadFile(kh)
	if err != nil {
		t.Fatalf("known_hosts not written: %v", err)
	}
	if n := strings.Count(string(data), "\n"); n != 1 || !strings.Contains(string(data), "ssh-ed25519") {
		t.Fatalf("known_hosts after first login = %q, want one ed25519 line", data)
	}

	// Same key again: accepted, nothing appended.
	dialT(t, tg).Close()
	if again, _ := os.ReadFile(kh); !bytes.Equal(again, data) {
		t.Fatalf("known_hosts changed on a second login: %q", again)
	}

	// Same address, new key: refused with a clear error.
	srv.Close()
	sshtest.Start(t, sshtest.Options{Password: "pw", Addr: addr})
	_, err = Dial(context.Background(), tg)
	var hk *HostKeyChangedError
	if !errors.As(err, &hk) {
		t.Fatalf("Dial with a changed host key: %v, want *HostKeyChangedError", err)
	}
	if !strings.Contains(err.Error(), kh) || !strings.Contains(err.Error(), "changed") {
		t.Errorf("error %q should name the known_hosts file and say the key changed", err)
	}
	// DialWait must not retry a changed key until its deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := DialWait(ctx, tg, 50*time.Millisecond); !errors.As(err, &hk) || time.Since(start) > 2*time.Second {
		t.Fatalf("DialWait with a changed key = %v after %s", err, time.Since(start))
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestWaitReadyLateServer(t *testing.T) {
	tests := []struct {
		name string
		// portOpenEarly: a listener that accepts and drops connections
		// before sshd is ready, like a guest whose port 22 opens first.
		portOpenEarly bool
	}{
		{"nothing listening", false},
		{"port open before sshd accepts", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := freeAddr(t)
			var early net.Listener
			if tc.portOpenEarly {
				var err error
				early, err = net.Listen("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				go func() {
					for {
						c, err := early.Accept()
						if err != nil {
							return
						}
						c.Close()
					}
				}()
			}
			const delay = 800 * time.Millisecond
			ready := make(chan time.Time, 1)
			go func() {
				time.Sleep(delay)
				if early != nil {
					early.Close()
				}
				sshtest.Start(t, sshtest.Options{Password: "pw", Addr: addr})
				ready <- time.Now()
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := DialWait(ctx, Target{Addr: addr, Password: "pw"}, DefaultProbeInterval)
			if err != nil {
				t.Fatalf("DialWait: %v", err)
			}
			noticed := time.Now()
			c.Close()
			lag := noticed.Sub(<-ready)
			t.Logf("readiness noticed %s after the server started", lag)
			// 250 ms is the goal; -race and a busy CI host get some slack.
			if lag > 400*time.Millisecond {
				t.Errorf("readiness noticed %s after the server started, want < 400ms", lag)
			}
		})
	}
}

func TestWaitReadyAuthFailsFast(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{Password: "right"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := WaitReady(ctx, Target{Addr: srv.Addr(), Password: "wrong"}, 20*time.Millisecond)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("WaitReady with a wrong password = %v, want ErrAuth", err)
	}
	if ctx.Err() != nil {
		t.Fatal("WaitReady waited for the deadline instead of reporting the refused login")
	}
}

func TestCancel(t *testing.T) {
	t.Run("WaitReady", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		start := time.Now()
		err := WaitReady(ctx, Target{Addr: freeAddr(t), Password: "pw"}, 50*time.Millisecond)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("WaitReady = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("WaitReady returned %s after the cancel", d)
		}
	})
	t.Run("Run", func(t *testing.T) {
		srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
		c := dialT(t, Target{Addr: srv.Addr(), Password: "pw"})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		start := time.Now()
		_, err := c.Run(ctx, []string{"sleep", "20"}, nil, nil, nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Run returned %s after start, want soon after the cancel", d)
		}
		// The connection survives a cancelled command.
		if code, err := c.Run(context.Background(), []string{"true"}, nil, nil, nil); err != nil || code != 0 {
			t.Fatalf("Run after cancel = %d, %v", code, err)
		}
	})
	t.Run("Dial already cancelled", func(t *testing.T) {
		srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Dial(ctx, Target{Addr: srv.Addr(), Password: "pw"}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Dial = %v, want context.Canceled", err)
		}
	})
}

func TestTargetAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.168.200.2", "192.168.200.2:22"},
		{"192.168.200.2:2222", "192.168.200.2:2222"},
		{"vm0", "vm0:22"},
		{"::1", "[::1]:22"},
		{"[::1]:2022", "[::1]:2022"},
	}
	for _, tc := range tests {
		if got := (Target{Addr: tc.in}).addr(); got != tc.want {
			t.Errorf("addr(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestDialRefusedIsImmediate: a refused connect is an answer; only attempts
// that time out are retried within DialTimeout.
func TestDialRefusedIsImmediate(t *testing.T) {
	start := time.Now()
	_, err := Dial(context.Background(), Target{Addr: freeAddr(t), Password: "pw"})
	if err == nil || !strings.Contains(err.Error(), "connect to") {
		t.Fatalf("Dial to a closed port = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Dial to a closed port took %s; a refusal must not be retried", d)
	}
}

// TestStdinAfterStart: stdin is fed only once the command started. dropbear
// closes a session whose stdin ends before the exec request, which made
// about one `lago shell` in a hundred fail with "start remote command: EOF".
func TestStdinAfterStart(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{Password: "pw", StrictEOF: true})
	c := dialT(t, Target{Addr: srv.Addr(), Password: "pw"})
	for i := 0; i < 50; i++ {
		var out bytes.Buffer
		code, err := c.Run(context.Background(), []string{"echo", "ok"}, strings.NewReader(""), &out, nil)
		if err != nil || code != 0 || out.String() != "ok\n" {
			t.Fatalf("run %d with an empty stdin = %d, %v, %q", i, code, err, out.String())
		}
	}
}

// TestRunRetriesSessionClosedBeforeExec: a session the server closes
// before it answers the exec never ran its command, so Run tries one more
// session; a second such close is reported, naming why.
func TestRunRetriesSessionClosedBeforeExec(t *testing.T) {
	tests := []struct {
		name    string
		drops   int
		wantErr string
	}{
		{"one dropped session is retried", 1, ""},
		{"two are reported", 2, "closed the session before the command started"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := sshtest.Start(t, sshtest.Options{Password: "pw", DropExecs: tt.drops})
			c := dialT(t, Target{Addr: srv.Addr(), Password: "pw"})
			var out bytes.Buffer
			code, err := c.Run(context.Background(), []string{"echo", "ran"}, nil, &out, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Run = %d, %v; want an error saying %q", code, err, tt.wantErr)
				}
				return
			}
			if err != nil || code != 0 || out.String() != "ran\n" {
				t.Fatalf("Run = %d, %v, %q; want the command run once", code, err, out.String())
			}
			if n := srv.DroppedExecs(); n != 1 {
				t.Errorf("server dropped %d execs, want 1", n)
			}
		})
	}
}
