package ssh

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	xssh "golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

// Shell runs an interactive login shell on the guest (`lago shell VM`).
// When stdin is a terminal (*os.File) it is switched to raw mode for the
// session, a pty of the same size is requested and window size changes are
// forwarded; the terminal is restored on return. Otherwise the shell reads
// stdin as a script. The result is the shell's exit code.
func (c *Client) Shell(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return c.run(ctx, "", stdin, stdout, stderr)
	}
	fd := int(f.Fd())
	w, h, err := term.GetSize(fd)
	if err != nil {
		w, h = 80, 24
	}
	name := os.Getenv("TERM")
	if name == "" {
		name = "xterm"
	}
	old, err := term.MakeRaw(fd)
	if err == nil {
		defer func() { _ = term.Restore(fd, old) }()
	}
	return c.runPTY(ctx, &ptyRequest{term: name, width: w, height: h, modes: xssh.TerminalModes{
		xssh.ECHO: 1, xssh.TTY_OP_ISPEED: 38400, xssh.TTY_OP_OSPEED: 38400,
	}}, fd, stdin, stdout, stderr)
}

// runPTY is run with a pty and SIGWINCH forwarding.
func (c *Client) runPTY(ctx context.Context, pty *ptyRequest, fd int, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	s, release, err := c.newSession(ctx)
	if err != nil {
		return -1, err
	}
	defer release()
	// The session used for window changes must be the one running the
	// shell, so the pty path keeps its own session here.
	defer s.Close()
	if err := s.RequestPty(pty.term, pty.height, pty.width, pty.modes); err != nil {
		return -1, err
	}
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	go func() {
		for range winch {
			if w, h, err := term.GetSize(fd); err == nil {
				_ = s.WindowChange(h, w)
			}
		}
	}()
	s.Stdout, s.Stderr = stdout, stderr
	in, err := s.StdinPipe()
	if err != nil {
		return -1, err
	}
	if err := s.Shell(); err != nil {
		return -1, err
	}
	go feed(in, stdin)
	return waitSession(ctx, s)
}
