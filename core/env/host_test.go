package env

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// localSSH runs argv on this machine, standing in for a guest so the
// Host service's file copies are tested with real bytes.
type localSSH struct{}

func (localSSH) WaitReady(context.Context, SSHTarget) error { return nil }

func (localSSH) Run(ctx context.Context, _ SSHTarget, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), nil
	}
	return 0, err
}

func TestHostService(t *testing.T) {
	f := newFixture(t)
	f.ssh = nil
	m := New(Options{DefaultProvider: "local"}, Deps{Providers: f.manager(Options{}).deps.Providers, SSH: localSSH{}})
	var progress bytes.Buffer
	h := &HostService{M: m, Prefix: func() (string, error) { return f.prefix, nil }, Stderr: &progress}
	ctx := context.Background()

	var out, errb bytes.Buffer
	code, err := h.Exec(ctx, "vm0", []string{"sh", "-c", "cat; echo oops >&2; exit 3"}, []byte("in"), &out, &errb)
	if err != nil || code != 3 || out.String() != "in" || errb.String() != "oops\n" {
		t.Fatalf("Exec = %d, %v, %q, %q", code, err, out.String(), errb.String())
	}

	dir := t.TempDir()
	src, remote, back := filepath.Join(dir, "src"), filepath.Join(dir, "remote file"), filepath.Join(dir, "back")
	payload := strings.Repeat("lago\x00", 10000)
	if err := os.WriteFile(src, []byte(payload), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.CopyTo(ctx, "vm0", src, remote); err != nil {
		t.Fatalf("CopyTo: %v", err)
	}
	if err := h.CopyFrom(ctx, "vm0", remote, back); err != nil {
		t.Fatalf("CopyFrom: %v", err)
	}
	if got, _ := os.ReadFile(back); string(got) != payload {
		t.Fatalf("round trip changed the file (%d bytes, want %d)", len(got), len(payload))
	}
	err = h.CopyFrom(ctx, "vm0", filepath.Join(dir, "missing"), filepath.Join(dir, "never"))
	if !errors.Is(err, ErrNoSuchPath) || !strings.Contains(err.Error(), "vm0") {
		t.Fatalf("CopyFrom of a missing file = %v, want ErrNoSuchPath naming vm0", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "never")); !os.IsNotExist(err) {
		t.Fatal("a failed copy left a local file")
	}

	env, err := h.Environment(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		VMs []struct {
			Name string `json:"name"`
		} `json:"vms"`
	}
	if err := json.Unmarshal(env.GetEnvironmentJson(), &doc); err != nil || len(doc.VMs) != 3 || env.GetPrefixPath() == "" || env.GetUuid() == "" {
		t.Fatalf("Environment = %+v (%v)", env, err)
	}
	if err := h.Progress(ctx, "building", 0.5); err != nil || progress.String() != "lago: building (50%)\n" {
		t.Fatalf("Progress wrote %q (%v)", progress.String(), err)
	}
}
