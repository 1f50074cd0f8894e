package ssh

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	xssh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/lago-go/lago/core/ssh/sshtest"
)

// TestHostKeyPinning: a known host is asked only for the key types
// recorded for it, so a guest that also has a key of another type (dropbear
// and OpenSSH make ed25519, ecdsa and often rsa keys) still connects, and a
// key that differs from the recorded one of its type is refused rather than
// answered with one of the host's other keys. x/crypto's default order
// prefers ecdsa to ed25519: without the restriction the first case would be
// offered the unrecorded ecdsa key and fail as "changed".
func TestHostKeyPinning(t *testing.T) {
	ed, ec, rs := sshtest.NewHostKeyOf(t, "ed25519"), sshtest.NewHostKeyOf(t, "ecdsa"), sshtest.NewHostKeyOf(t, "rsa")
	otherEd := sshtest.NewHostKeyOf(t, "ed25519")
	tests := []struct {
		name     string
		recorded []xssh.Signer // known_hosts lines for the address
		offered  []xssh.Signer // the server's host keys
		changed  bool          // want *HostKeyChangedError
		// wantRecorded: the key types in known_hosts afterwards.
		wantRecorded []string
	}{
		{name: "ed25519 recorded, ed25519 and ecdsa offered", recorded: []xssh.Signer{ed}, offered: []xssh.Signer{ed, ec},
			wantRecorded: []string{xssh.KeyAlgoED25519}},
		{name: "ecdsa recorded, ed25519 and ecdsa offered", recorded: []xssh.Signer{ec}, offered: []xssh.Signer{ed, ec},
			wantRecorded: []string{xssh.KeyAlgoECDSA256}},
		{name: "rsa recorded, rsa-sha2 asked", recorded: []xssh.Signer{rs}, offered: []xssh.Signer{ed, ec, rs},
			wantRecorded: []string{xssh.KeyAlgoRSA}},
		{name: "unknown host: one key recorded", offered: []xssh.Signer{ed, ec},
			wantRecorded: []string{"one key"}},
		{name: "recorded ed25519 changed, ecdsa unchanged is no way round", recorded: []xssh.Signer{ed}, offered: []xssh.Signer{otherEd, ec},
			changed: true, wantRecorded: []string{xssh.KeyAlgoED25519}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := sshtest.Options{Password: "pw", HostKey: tc.offered[0], HostKeys: tc.offered[1:]}
			srv := sshtest.Start(t, o)
			kh := filepath.Join(t.TempDir(), "known_hosts")
			var lines bytes.Buffer
			for _, k := range tc.recorded {
				lines.WriteString(knownhosts.Line([]string{knownhosts.Normalize(srv.Addr())}, k.PublicKey()) + "\n")
			}
			if err := os.WriteFile(kh, lines.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Dial(context.Background(), Target{Addr: srv.Addr(), Password: "pw", KnownHostsPath: kh})
			var hk *HostKeyChangedError
			switch {
			case tc.changed && !errors.As(err, &hk):
				t.Fatalf("Dial = %v, want *HostKeyChangedError", err)
			case !tc.changed && err != nil:
				t.Fatalf("Dial: %v", err)
			case err == nil:
				c.Close()
			}
			data, _ := os.ReadFile(kh)
			got := strings.Split(strings.TrimSpace(string(data)), "\n")
			if tc.wantRecorded[0] == "one key" {
				if len(got) != 1 || got[0] == "" {
					t.Errorf("known_hosts of a new host = %q, want one line", data)
				}
				return
			}
			if len(got) != len(tc.wantRecorded) {
				t.Fatalf("known_hosts = %q, want %d lines", data, len(tc.wantRecorded))
			}
			for i, l := range got {
				if f := strings.Fields(l); len(f) < 2 || f[1] != tc.wantRecorded[i] {
					t.Errorf("known_hosts line %d = %q, want type %s", i+1, l, tc.wantRecorded[i])
				}
			}
		})
	}
}

// TestKnownHostsTornLine: a line cut short (a lago killed while recording a
// key, a full disk) neither stops later logins nor swallows the next
// recorded key: the torn line is dropped, the next key goes on a line of its
// own, and pinning still holds for every intact line.
func TestKnownHostsTornLine(t *testing.T) {
	known := sshtest.NewHostKeyOf(t, "ed25519")
	intact := func(addr string) string {
		return knownhosts.Line([]string{knownhosts.Normalize(addr)}, known.PublicKey()) + "\n"
	}
	torn := func(addr string) string {
		l := knownhosts.Line([]string{knownhosts.Normalize(addr)}, sshtest.NewHostKey(t).PublicKey())
		return l[:len(l)-20]
	}
	tests := []struct {
		name string
		// content is the file before the first login; %s is the
		// address of a host that stays known with key `known`.
		content func(knownAddr, tornAddr string) string
	}{
		{"only a torn line", func(_, b string) string { return torn(b) }},
		{"intact line then a torn last line", func(a, b string) string { return intact(a) + torn(b) }},
		{"torn line in the middle", func(a, b string) string { return torn(b) + "\n" + intact(a) }},
		{"torn line of the known host", func(a, _ string) string { return intact(a) + torn(a) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := sshtest.Start(t, sshtest.Options{Password: "pw", HostKey: known})
			srv := sshtest.Start(t, sshtest.Options{Password: "pw"})
			kh := filepath.Join(t.TempDir(), "known_hosts")
			if err := os.WriteFile(kh, []byte(tc.content(old.Addr(), srv.Addr())), 0o600); err != nil {
				t.Fatal(err)
			}
			tg := Target{Addr: srv.Addr(), Password: "pw", KnownHostsPath: kh}
			c, err := Dial(context.Background(), tg)
			if err != nil {
				t.Fatalf("Dial with a torn known_hosts line: %v", err)
			}
			c.Close()
			data, _ := os.ReadFile(kh)
			if _, err := knownhosts.New(kh); err != nil || !strings.HasSuffix(string(data), "\n") {
				t.Errorf("known_hosts after the login = %q (%v), want only whole lines", data, err)
			}
			if n := strings.Count(string(data), knownhosts.Normalize(srv.Addr())+" "); n != 1 {
				t.Errorf("new host recorded on %d intact lines, want 1: %q", n, data)
			}
			// The new host's key is pinned: another key at its address is
			// refused.
			srv.Close()
			sshtest.Start(t, sshtest.Options{Password: "pw", Addr: srv.Addr()})
			var hk *HostKeyChangedError
			if _, err := Dial(context.Background(), tg); !errors.As(err, &hk) {
				t.Errorf("new host with a changed key after the torn line: %v, want *HostKeyChangedError", err)
			}
			// The intact host too, where it was recorded.
			if strings.Contains(tc.content(old.Addr(), srv.Addr()), intact(old.Addr())) {
				if c, err := Dial(context.Background(), Target{Addr: old.Addr(), Password: "pw", KnownHostsPath: kh}); err != nil {
					t.Errorf("known host after the torn line: %v", err)
				} else {
					c.Close()
				}
				oldAddr := old.Addr()
				old.Close()
				sshtest.Start(t, sshtest.Options{Password: "pw", Addr: oldAddr})
				if _, err := Dial(context.Background(), Target{Addr: oldAddr, Password: "pw", KnownHostsPath: kh}); !errors.As(err, &hk) {
					t.Errorf("known host with a changed key: %v, want *HostKeyChangedError", err)
				}
			}
		})
	}
}
