package envssh

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lago-go/lago/core/env"
	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/ssh"
	"github.com/lago-go/lago/core/ssh/sshtest"
)

func target(t *testing.T, srv *sshtest.Server, keyFile, password string) env.SSHTarget {
	t.Helper()
	host, port, err := net.SplitHostPort(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return env.SSHTarget{VM: "vm0", Host: host, Port: p, User: "root", KeyFile: keyFile, Password: password}
}

func TestRunAndKnownHosts(t *testing.T) {
	keyPath, pub := sshtest.NewClientKey(t)
	srv := sshtest.Start(t, sshtest.Options{Key: pub})
	tg := target(t, srv, keyPath, "")
	var s SSH
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitReady(ctx, tg); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	kh := filepath.Join(filepath.Dir(keyPath), KnownHostsFile)
	if data, err := os.ReadFile(kh); err != nil || !strings.Contains(string(data), "ssh-ed25519") {
		t.Fatalf("known_hosts beside the key: %q, %v", data, err)
	}
	tests := []struct {
		name     string
		argv     []string
		stdin    string
		wantCode int
		wantOut  string
	}{
		{"command", []string{"echo", "a b"}, "", 0, "a b\n"},
		{"exit code", []string{"sh", "-c", "exit 9"}, "", 9, ""},
		{"shell reads stdin", nil, "echo from-stdin; exit 4\n", 4, "from-stdin\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			code, err := s.Run(ctx, tg, tc.argv, strings.NewReader(tc.stdin), &out, nil)
			if err != nil || code != tc.wantCode || out.String() != tc.wantOut {
				t.Fatalf("Run = %d, %v, %q; want %d, nil, %q", code, err, out.String(), tc.wantCode, tc.wantOut)
			}
		})
	}
}

func TestRefusedLoginIsLagoError(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{Password: "right"})
	tg := target(t, srv, "", "wrong")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, err := range map[string]error{
		"WaitReady": SSH{Interval: 10 * time.Millisecond}.WaitReady(ctx, tg),
		"Run":       func() error { _, err := SSH{}.Run(ctx, tg, []string{"true"}, nil, nil, nil); return err }(),
	} {
		if !errors.Is(err, ssh.ErrAuth) || !errs.IsUser(err) {
			t.Errorf("%s with a wrong password = %v; want ErrAuth marked as a Lago error", name, err)
		}
	}
}
