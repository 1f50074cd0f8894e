package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lago-go/lago/cmd/lago/internal/cli"
	"github.com/lago-go/lago/core/errs"
)

// fakeLineShell records the command line the shell verb sends.
type fakeLineShell struct {
	vm, line, stdin string
	code            int
}

func (f *fakeLineShell) ExecShell(_ context.Context, vm, line string, stdin io.Reader, _, _ io.Writer) (int, error) {
	f.vm, f.line = vm, line
	if stdin != nil {
		b, _ := io.ReadAll(stdin)
		f.stdin = string(b)
	}
	return f.code, nil
}

// TestShellVerbJoinsOneCommandLine: the words after VM reach the guest's
// shell as one command line joined with single spaces (as ssh sends
// them), not as separately quoted words; a lone local file is a script.
func TestShellVerbJoinsOneCommandLine(t *testing.T) {
	script := filepath.Join(t.TempDir(), "s.sh")
	if err := os.WriteFile(script, []byte("echo hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		args      []string
		code      int
		wantLine  string
		wantStdin string
		wantExit  int
	}{
		{"one quoted command line", []string{"vm0", "exit 7"}, 7, "exit 7", "", 7},
		{"pipe stays for the guest", []string{"vm0", "grep ^ID= /etc/os-release | cut -d= -f2"}, 0, "grep ^ID= /etc/os-release | cut -d= -f2", "", 0},
		{"words joined with single spaces", []string{"vm0", "echo", "a", "b"}, 0, "echo a b", "", 0},
		{"spaces inside a word kept", []string{"vm0", "echo", "a  b"}, 0, "echo a  b", "", 0},
		{"options after VM belong to the command", []string{"vm0", "ls", "-l", "--all"}, 0, "ls -l --all", "", 0},
		{"no words: interactive shell", []string{"vm0"}, 0, "", "in", 0},
		{"local file is a script", []string{"vm0", script}, 0, "bash -s", "echo hi\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sh := &fakeLineShell{code: tt.code}
			inv := &cli.Invocation{Verb: "shell", Args: tt.args, Stdin: strings.NewReader("in"), Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}
			err := shellVerb(context.Background(), inv, sh)
			if got := errs.ExitCode(err); got != tt.wantExit {
				t.Errorf("exit code %d (%v), want %d", got, err, tt.wantExit)
			}
			if sh.vm != "vm0" || sh.line != tt.wantLine {
				t.Errorf("ran %q on %q, want %q on vm0", sh.line, sh.vm, tt.wantLine)
			}
			if tt.wantStdin != "" && sh.stdin != tt.wantStdin {
				t.Errorf("stdin %q, want %q", sh.stdin, tt.wantStdin)
			}
		})
	}
}
