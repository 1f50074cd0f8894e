package ssh

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	xssh "golang.org/x/crypto/ssh"
)

// TestAppendKnownHostKeepsTheFirstKey: two first logins to one host race;
// the second to record finds the host already recorded with another key
// (the other connection, or an interceptor): it must not add a second key
// for the host, which would make both trusted from then on.
func TestAppendKnownHostKeepsTheFirstKey(t *testing.T) {
	newKey := func() xssh.PublicKey {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k, err := xssh.NewPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	first, second := newKey(), newKey()
	if err := appendKnownHost(path, "192.0.2.7:22", first); err != nil {
		t.Fatal(err)
	}
	if err := appendKnownHost(path, "192.0.2.7:22", first); err != nil {
		t.Fatalf("recording the same key again: %v", err)
	}
	err := appendKnownHost(path, "192.0.2.7:22", second)
	var hk *HostKeyChangedError
	if !errors.As(err, &hk) {
		t.Fatalf("recording a second key for a recorded host: %v, want *HostKeyChangedError", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 1 {
		t.Fatalf("known_hosts has %d lines, want the first key's only:\n%s", n, b)
	}
}
