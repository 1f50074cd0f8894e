package lago

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	builderv1 "github.com/lago-go/lago/proto/lago/builder/v1"

	"github.com/lago-go/lago/core/env"
	"github.com/lago-go/lago/core/spec"
	"github.com/lago-go/lago/core/template"
)

func mustMkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

type recBuilder struct{ req *builderv1.BuildRequest }

func (r *recBuilder) Build(ctx context.Context, req *builderv1.BuildRequest, log func(string)) error {
	r.req = req
	log("working")
	return nil
}

func TestPluginBuilderKeepsOrderAndRepeatsLists(t *testing.T) {
	rb := &recBuilder{}
	var lines []string
	b := pluginBuilder{Builder: rb, Log: func(vm, line string) { lines = append(lines, vm+": "+line) }}
	step := spec.BuildStep{Builder: "virt-customize", Options: []spec.BuildOption{
		{Name: "ssh-inject", Values: []string{""}},
		{Name: "touch", Values: []string{"/a", "/b"}, IsList: true},
		{Name: "selinux-relabel"},
	}}
	if err := b.Build(context.Background(), env.BuildRequest{VM: "vm0", DiskPath: "/p/d.qcow2", DiskFormat: "qcow2", Step: step, PublicKey: "ssh-rsa AAA"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range rb.req.Options {
		got = append(got, o.Name+"="+o.Value)
	}
	want := []string{"ssh-inject=", "touch=/a", "touch=/b", "selinux-relabel="}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("options = %v, want %v", got, want)
	}
	if rb.req.SshPublicKey != "ssh-rsa AAA" || rb.req.DiskPath != "/p/d.qcow2" || rb.req.Vm != "vm0" {
		t.Errorf("request = %v", rb.req)
	}
	if len(lines) != 3 || lines[0] != "vm0: virt-customize on /p/d.qcow2" || lines[1] != "vm0: working" || !strings.HasPrefix(lines[2], "vm0: virt-customize done in ") {
		t.Errorf("log lines = %v", lines)
	}
}

func TestVirtSysprepArgvAndPasswordFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	// A stand-in virt-sysprep that records its arguments one a line and
	// the password file's content.
	script := "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done > \"$OUT\"\n" +
		"while [ $# -gt 0 ]; do if [ \"$1\" = --root-password ]; then cat \"${2#file:}\" > \"$OUT.pw\"; fi; shift; done\n"
	bin := filepath.Join(dir, "virt-sysprep")
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	v := virtSysprep{Binary: bin, Env: []string{"OUT=" + out}}
	req := env.BootstrapRequest{VM: "vm0", DiskPath: "/p/images/vm0 root.qcow2", DiskFormat: "qcow2", Hostname: "vm0",
		RootPassword: "s3cret; rm -rf /", PublicKeyPath: "/p/id_rsa.pub"}
	if err := v.Bootstrap(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Split(strings.TrimSpace(string(b)), "\n")
	want := []string{"--format", "qcow2", "-a", "/p/images/vm0 root.qcow2", "--hostname", "vm0", "--root-password", "", "--ssh-inject", "root:file:/p/id_rsa.pub"}
	if len(args) != len(want) {
		t.Fatalf("argv = %q, want %q", args, want)
	}
	for i := range want {
		if i == 7 {
			if !strings.HasPrefix(args[i], "file:") {
				t.Errorf("root password passed as %q, want a file:", args[i])
			}
			continue
		}
		if args[i] != want[i] {
			t.Errorf("argv[%d] = %q, want %q", i, args[i], want[i])
		}
	}
	pw, err := os.ReadFile(out + ".pw")
	if err != nil || string(pw) != req.RootPassword {
		t.Errorf("password file held %q (%v)", pw, err)
	}
	if _, err := os.Stat(strings.TrimPrefix(args[7], "file:")); !os.IsNotExist(err) {
		t.Errorf("password file left behind: %v", err)
	}
}

func TestVirtSysprepFailureQuotesOutput(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "virt-sysprep")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho 'libguestfs: error: no OS found' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := virtSysprep{Binary: bin}.Bootstrap(context.Background(), env.BootstrapRequest{DiskPath: "/x"})
	if err == nil || !strings.Contains(err.Error(), "no OS found") {
		t.Fatalf("error = %v, want the tool's message", err)
	}
}

func TestStoreTemplatesFromFileRepo(t *testing.T) {
	dir := t.TempDir()
	images := filepath.Join(dir, "images")
	mustMkdir(t, images)
	data := []byte("QFI\xfb pretend qcow2")
	mustWrite(t, filepath.Join(images, "tiny.qcow2"), string(data))
	mustWrite(t, filepath.Join(images, "tiny.qcow2.hash"), fmt.Sprintf("%x", sha1.Sum(data)))
	mustWrite(t, filepath.Join(images, "tiny.qcow2.metadata"), `{"distro": "tinylinux", "root-password": "123456"}`)
	repo := fmt.Sprintf(`{"name": "testrepo",
 "sources": {"local": {"type": "file", "args": {"root": %q}}},
 "templates": {"tiny": {"versions": {"v1": {"source": "local", "handle": "tiny.qcow2", "timestamp": 1},
                                     "v2": {"source": "local", "handle": "tiny.qcow2", "timestamp": 2}}}}}`, images)
	repoPath := filepath.Join(dir, "repo.metadata")
	mustWrite(t, repoPath, repo)
	st := &storeTemplates{Store: &template.Store{Dir: filepath.Join(dir, "store"), NoSync: true}, Repo: template.Options{Path: repoPath}}
	img, err := st.Get(context.Background(), env.TemplateRef{Name: "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	if img.Key != "testrepo:tiny:v2" || img.Format != "qcow2" || img.Metadata["distro"] != "tinylinux" ||
		filepath.Dir(img.Path) != filepath.Join(dir, "store") {
		t.Errorf("image = %+v", img)
	}
	if _, err := st.Get(context.Background(), env.TemplateRef{Name: "nope"}); !errors.Is(err, ErrTemplateNotFound) {
		t.Errorf("Get of a missing template: %v, want ErrTemplateNotFound", err)
	}
	if _, err := st.Get(context.Background(), env.TemplateRef{Name: "tiny", Version: "v9"}); !errors.Is(err, ErrTemplateNotFound) {
		t.Errorf("Get of a missing version: %v, want ErrTemplateNotFound", err)
	}
}
