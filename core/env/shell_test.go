package env

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lago-go/lago/sdk"

	lagossh "github.com/lago-go/lago/core/ssh"
	"github.com/lago-go/lago/core/ssh/sshtest"
)

// TestSSHClientCommandLine: RunCommandLine hands the guest's shell the
// line as it is (exit codes, pipes, expansions and word splitting are the
// shell's), while Run still quotes each word of an argv; both directly and
// through the VM's kept connection (ssh_persist).
func TestSSHClientCommandLine(t *testing.T) {
	shortTmpdir(t)
	srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
	host, port, _ := net.SplitHostPort(srv.Addr())
	p, _ := strconv.Atoi(port)

	tests := []struct {
		name     string
		line     string
		lineCode int
		lineOut  string
		argv     []string
		argvCode int
		argvOut  string
	}{
		{"exit status", "exit 7", 7, "", []string{"exit 7"}, 127, ""},
		{"pipe", "echo abc | tr b x", 0, "axc\n", []string{"echo", "abc", "|", "tr", "b", "x"}, 0, "abc | tr b x\n"},
		{"word splitting", "echo a   b", 0, "a b\n", []string{"echo", "a   b"}, 0, "a   b\n"},
		{"expansion", "echo $((6*7))", 0, "42\n", []string{"echo", "$((6*7))"}, 0, "$((6*7))\n"},
		{"quotes", `printf '%s\n' "it's"`, 0, "it's\n", []string{"printf", `%s\n`, "it's"}, 0, "it's\n"},
	}
	for _, mode := range []struct {
		name    string
		persist time.Duration
	}{{"direct", 0}, {"mux", 30 * time.Second}} {
		t.Run(mode.name, func(t *testing.T) {
			target := SSHTarget{VM: "vm0", Host: host, Port: p, User: "root", Password: "pw", UUID: "c0ffee" + mode.name}
			c := SSHClient{Persist: mode.persist, MuxCommand: []string{os.Args[0], lagossh.MuxVerb}}
			t.Cleanup(func() { c.Release(context.Background(), target) })
			if mode.persist > 0 {
				// The first command starts the mux; the cases then run
				// through it, with no login of their own.
				if _, err := c.Run(context.Background(), target, []string{"true"}, nil, nil, nil); err != nil {
					t.Fatal(err)
				}
				waitMux(t, c.socket(target))
			}
			logins := srv.Logins()
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					var out bytes.Buffer
					code, err := c.RunCommandLine(context.Background(), target, tt.line, nil, &out, io.Discard)
					if err != nil || code != tt.lineCode || out.String() != tt.lineOut {
						t.Errorf("RunCommandLine(%q) = %d, %v, %q; want %d, %q", tt.line, code, err, out.String(), tt.lineCode, tt.lineOut)
					}
					out.Reset()
					code, err = c.Run(context.Background(), target, tt.argv, nil, &out, io.Discard)
					if err != nil || code != tt.argvCode || out.String() != tt.argvOut {
						t.Errorf("Run(%q) = %d, %v, %q; want %d, %q", tt.argv, code, err, out.String(), tt.argvCode, tt.argvOut)
					}
				})
			}
			if n := srv.Logins() - logins; mode.persist > 0 && n != 0 {
				t.Errorf("%d logins through a running mux, want 0", n)
			}
		})
	}
}

func waitMux(t *testing.T, sock string) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cl, err := lagossh.DialMux(context.Background(), sock, lagossh.Target{}); err == nil {
			cl.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the mux never served its socket")
}

// lineSSH is fakeSSH that also takes command lines, recorded as
// "vm0 line: <line>".
type lineSSH struct{ *fakeSSH }

func (s lineSSH) RunCommandLine(_ context.Context, t SSHTarget, line string, _ io.Reader, _, _ io.Writer) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs = append(s.runs, fmt.Sprintf("%s line: %s", t.VM, line))
	return s.exit, nil
}

// TestShellCommandLine: the CLI's path passes its line unchanged to the
// SSH, an empty line opens the interactive shell, and Shell (the path of
// programmatic callers) still passes an argv.
func TestShellCommandLine(t *testing.T) {
	f := newFixture(t)
	ssh := lineSSH{newFakeSSH()}
	m := New(Options{DefaultProvider: "local"}, Deps{
		Providers: func(context.Context, string) (sdk.Provider, error) { return f.prov, nil },
		SSH:       ssh,
	})
	ctx := context.Background()
	if _, err := m.ShellCommandLine(ctx, f.prefix, "vm0", "grep ^ID= /etc/os-release | cut -d= -f2", nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ShellCommandLine(ctx, f.prefix, "vm1", "", nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Shell(ctx, f.prefix, "vm2", []string{"echo", "a  b"}, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"vm0 line: grep ^ID= /etc/os-release | cut -d= -f2", "vm1 []", "vm2 [echo a  b]"}
	if got := strings.Join(ssh.runs, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("ssh calls:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}

	// An SSH that only takes argvs cannot serve a command line.
	if _, err := f.m.ShellCommandLine(ctx, f.prefix, "vm0", "true", nil, nil, nil); err == nil || !strings.Contains(err.Error(), "cannot run a command line") {
		t.Errorf("ShellCommandLine on an argv-only SSH: err = %v", err)
	}
}
