package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	builderv1 "github.com/lago-go/lago/proto/lago/builder/v1"
	"github.com/lago-go/lago/sdk"
)

func TestArgv(t *testing.T) {
	opt := func(n, v string) *builderv1.BuildOption { return &builderv1.BuildOption{Name: n, Value: v} }
	tests := []struct {
		name    string
		req     *builderv1.BuildRequest
		want    []string
		wantErr string
	}{
		{"options in order", &builderv1.BuildRequest{DiskPath: "/d.qcow2", DiskFormat: "qcow2", Options: []*builderv1.BuildOption{opt("install", "vim"), opt("selinux-relabel", ""), opt("run-command", "echo 'a b'")}},
			[]string{"--format", "qcow2", "-a", "/d.qcow2", "--install", "vim", "--selinux-relabel", "--run-command", "echo 'a b'"}, ""},
		{"one-letter names get one dash", &builderv1.BuildRequest{DiskPath: "/d", Options: []*builderv1.BuildOption{opt("m", "1024"), opt("v", ""), opt("x", ""), opt("smp", "2")}},
			[]string{"-a", "/d", "-m", "1024", "-v", "-x", "--smp", "2"}, ""},
		{"a repeated option stays repeated", &builderv1.BuildRequest{DiskPath: "/d", Options: []*builderv1.BuildOption{opt("touch", "/a"), opt("touch", "/b")}},
			[]string{"-a", "/d", "--touch", "/a", "--touch", "/b"}, ""},
		{"explicit ssh-inject kept", &builderv1.BuildRequest{DiskPath: "/d", SshPublicKey: "k", Options: []*builderv1.BuildOption{opt("ssh-inject", "bob:file:/k.pub")}},
			[]string{"-a", "/d", "--ssh-inject", "bob:file:/k.pub"}, ""},
		{"format option refused", &builderv1.BuildRequest{DiskPath: "/d", Options: []*builderv1.BuildOption{opt("format", "raw")}}, nil, "chooses the disk"},
		{"another disk refused", &builderv1.BuildRequest{DiskPath: "/d", Options: []*builderv1.BuildOption{opt("a", "/etc/other.img")}}, nil, "chooses the disk"},
		{"dash in the name refused", &builderv1.BuildRequest{DiskPath: "/d", Options: []*builderv1.BuildOption{opt("-touch", "/x")}}, nil, "not a virt-customize option"},
		{"empty ssh-inject uses the prefix key", &builderv1.BuildRequest{DiskPath: "/d", SshPublicKey: "ssh-rsa AAAA k\n", Options: []*builderv1.BuildOption{opt("ssh-inject", "")}},
			[]string{"-a", "/d", "--ssh-inject", "root:string:ssh-rsa AAAA k"}, ""},
		{"ssh-inject without key", &builderv1.BuildRequest{DiskPath: "/d", Options: []*builderv1.BuildOption{opt("ssh-inject", "")}}, nil, "public key"},
		{"not an option name", &builderv1.BuildRequest{DiskPath: "/d", Options: []*builderv1.BuildOption{opt("x --run-command", "y")}}, nil, "not a virt-customize option"},
		{"no disk", &builderv1.BuildRequest{}, nil, "no disk"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Argv(tc.req)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Argv = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// fakeTool writes a stand-in virt-customize that records its argv and
// environment and exits with the given status.
func fakeTool(t *testing.T, status int) (program, record string) {
	dir := t.TempDir()
	record = filepath.Join(dir, "argv")
	program = filepath.Join(dir, "virt-customize")
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + record + "\necho \"backend=$LIBGUESTFS_BACKEND\"\necho \"settings=$LIBGUESTFS_BACKEND_SETTINGS memsize=$LIBGUESTFS_MEMSIZE\"\necho 'step 1'\necho 'oops' >&2\nexit " + string(rune('0'+status)) + "\n"
	if err := os.WriteFile(program, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return program, record
}

func TestBuildRunsTool(t *testing.T) {
	t.Setenv("LIBGUESTFS_BACKEND", "")
	program, record := fakeTool(t, 0)
	b := &builder{}
	if err := b.Configure(context.Background(), map[string]string{"virt_customize": program}, nil); err != nil {
		t.Fatal(err)
	}
	var lines []string
	req := &builderv1.BuildRequest{Vm: "vm0", DiskPath: "/tmp/d.qcow2", Options: []*builderv1.BuildOption{{Name: "touch", Value: "/x"}}}
	if err := b.Build(context.Background(), req, func(l string) { lines = append(lines, l) }); err != nil {
		t.Fatalf("Build: %v", err)
	}
	argv, _ := os.ReadFile(record)
	if got := strings.Fields(string(argv)); !reflect.DeepEqual(got, []string{"-a", "/tmp/d.qcow2", "--touch", "/x"}) {
		t.Errorf("tool argv = %q", got)
	}
	joined := strings.Join(lines, "|")
	for _, want := range []string{"backend=direct", "step 1", "oops"} {
		if !strings.Contains(joined, want) {
			t.Errorf("log lines %q lack %q", joined, want)
		}
	}
}

// TestBuildGetsCoreLibguestfsSettings: the core's [init] libguestfs_*
// settings reach virt-customize's environment and win over the
// environment's.
func TestBuildGetsCoreLibguestfsSettings(t *testing.T) {
	t.Setenv("LIBGUESTFS_BACKEND", "libvirt")
	program, _ := fakeTool(t, 0)
	b := &builder{}
	cfg := map[string]string{"virt_customize": program, "libguestfs_backend": "direct", "libguestfs_backend_settings": "force_tcg", "libguestfs_memsize": "600"}
	if err := b.Configure(context.Background(), cfg, nil); err != nil {
		t.Fatal(err)
	}
	var lines []string
	req := &builderv1.BuildRequest{Vm: "vm0", DiskPath: "/tmp/d.qcow2"}
	if err := b.Build(context.Background(), req, func(l string) { lines = append(lines, l) }); err != nil {
		t.Fatalf("Build: %v", err)
	}
	joined := strings.Join(lines, "|")
	for _, want := range []string{"backend=direct", "settings=force_tcg memsize=600"} {
		if !strings.Contains(joined, want) {
			t.Errorf("log lines %q lack %q", joined, want)
		}
	}
}

func TestBuildFailureNamesVMAndOutput(t *testing.T) {
	program, _ := fakeTool(t, 3)
	b := &builder{program: program}
	err := b.Build(context.Background(), &builderv1.BuildRequest{Vm: "vm1", DiskPath: "/d"}, nil)
	var d sdk.Diagnostics
	if !errors.As(err, &d) {
		t.Fatalf("err = %v, want diagnostics", err)
	}
	if !strings.Contains(err.Error(), "vm1") || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "oops") {
		t.Errorf("error %q should name the VM, the status and the tool's output", err)
	}
}
