package env

import (
	"errors"
	"fmt"
	"testing"

	"github.com/lago-go/lago/core/errs"
	lagossh "github.com/lago-go/lago/core/ssh"
)

func TestSSHClientTarget(t *testing.T) {
	got := (SSHTarget{Host: "192.168.200.2", Port: 22, User: "root", KeyFile: "/k", Password: "p", KnownHostsFile: "/kh"}).Target()
	if got.Addr != "192.168.200.2" || got.User != "root" || got.KeyPath != "/k" || got.Password != "p" || got.KnownHostsPath != "/kh" {
		t.Errorf("target = %+v", got)
	}
	if got := (SSHTarget{Host: "h", Port: 2222}).Target(); got.Addr != "h:2222" {
		t.Errorf("addr = %q", got.Addr)
	}
}

func TestSSHUserErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		user bool
	}{
		{fmt.Errorf("ssh to h as root: %w: denied", lagossh.ErrAuth), true},
		{fmt.Errorf("dial: %w", &lagossh.HostKeyChangedError{}), true},
		{errors.New("connection refused"), false},
	} {
		if got := errs.IsUser(SSHUserError(tc.err)); got != tc.user {
			t.Errorf("IsUser(SSHUserError(%v)) = %v, want %v", tc.err, got, tc.user)
		}
	}
}
