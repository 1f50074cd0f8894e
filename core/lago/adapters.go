package lago

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"

	builderv1 "github.com/lago-go/lago/proto/lago/builder/v1"
	"github.com/lago-go/lago/sdk"

	"github.com/lago-go/lago/core/env"
	"github.com/lago-go/lago/core/template"
)

// This file adapts the real packages to env's small interfaces.

// storeTemplates implements env.Templates with core/template: images come
// from the repository Repo names (or, for a disk naming its own
// repository, the one of that name under Repo.ReposDir), cached in Store.
type storeTemplates struct {
	Store    *template.Store
	Repo     template.Options
	Progress template.Progress

	mu    sync.Mutex
	repos map[string]*template.Repo
}

var _ env.Templates = (*storeTemplates)(nil)

// Get implements env.Templates.
func (s *storeTemplates) Get(ctx context.Context, ref env.TemplateRef) (env.Image, error) {
	repo, err := s.repo(ctx, ref.Repo)
	if err != nil {
		return env.Image{}, err
	}
	img, err := s.Store.Get(ctx, repo, ref.Name, ref.Version, s.Progress)
	if err != nil {
		return env.Image{}, err
	}
	return env.Image{Path: img.Path, Key: img.Key, Hash: img.Hash, Format: img.Format, Metadata: img.Metadata}, nil
}

func (s *storeTemplates) repo(ctx context.Context, name string) (*template.Repo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.repos[name]; ok {
		return r, nil
	}
	o := s.Repo
	if name != "" {
		o.Name = name
	}
	r, err := template.OpenRepo(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("open template repository: %w", err)
	}
	if s.repos == nil {
		s.repos = map[string]*template.Repo{}
	}
	s.repos[name] = r
	return r, nil
}

// pluginBuilder implements env.Builder with a builder component (the
// virt-customize plugin), logging its progress lines to Log (may be nil).
type pluginBuilder struct {
	Builder sdk.Builder
	Log     func(vm, line string)
}

var _ env.Builder = pluginBuilder{}

// Build implements env.Builder. Options keep the init file's order; a list
// value repeats its option.
func (b pluginBuilder) Build(ctx context.Context, req env.BuildRequest) error {
	r := &builderv1.BuildRequest{Vm: req.VM, DiskPath: req.DiskPath, DiskFormat: req.DiskFormat, SshPublicKey: req.PublicKey}
	for _, o := range req.Step.Options {
		if len(o.Values) == 0 {
			r.Options = append(r.Options, &builderv1.BuildOption{Name: o.Name})
		}
		for _, v := range o.Values {
			r.Options = append(r.Options, &builderv1.BuildOption{Name: o.Name, Value: v})
		}
	}
	log := func(string) {}
	if b.Log != nil {
		log = func(line string) { b.Log(req.VM, line) }
	}
	return b.Builder.Build(ctx, r, log)
}

// virtSysprep implements env.Bootstrapper by running virt-sysprep on the
// disk: it sets the hostname and root password and injects the prefix's
// key for root. The password goes through a 0600 file, not argv, so it
// does not show in ps.
type virtSysprep struct {
	// Binary defaults to "virt-sysprep".
	Binary string
	// Env is added to the process environment (for example
	// LIBGUESTFS_BACKEND=direct).
	Env []string
	// Output receives the tool's output (may be nil).
	Output io.Writer
}

var _ env.Bootstrapper = virtSysprep{}

// Args returns virt-sysprep's argv (without the binary) for req, with the
// root password read from passwordFile.
func (v virtSysprep) Args(req env.BootstrapRequest, passwordFile string) []string {
	// virt-sysprep applies --format to the -a options after it, and
	// refuses a --format that follows the last -a.
	var args []string
	if req.DiskFormat != "" {
		args = append(args, "--format", req.DiskFormat)
	}
	args = append(args, "-a", req.DiskPath)
	if req.Hostname != "" {
		args = append(args, "--hostname", req.Hostname)
	}
	if passwordFile != "" {
		args = append(args, "--root-password", "file:"+passwordFile)
	}
	if req.PublicKeyPath != "" {
		args = append(args, "--ssh-inject", "root:file:"+req.PublicKeyPath)
	}
	return args
}

// Bootstrap implements env.Bootstrapper.
func (v virtSysprep) Bootstrap(ctx context.Context, req env.BootstrapRequest) error {
	bin := v.Binary
	if bin == "" {
		bin = "virt-sysprep"
	}
	pwFile := ""
	if req.RootPassword != "" {
		f, err := os.CreateTemp("", "lago-root-password-*")
		if err != nil {
			return fmt.Errorf("write root password file: %w", err)
		}
		pwFile = f.Name()
		defer os.Remove(pwFile)
		_, werr := f.WriteString(req.RootPassword)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("write root password file: %w", werr)
		}
	}
	cmd := exec.CommandContext(ctx, bin, v.Args(req, pwFile)...)
	cmd.Env = append(os.Environ(), v.Env...)
	var tail tailBuffer
	cmd.Stdout, cmd.Stderr = &tail, &tail
	if v.Output != nil {
		cmd.Stdout, cmd.Stderr = io.MultiWriter(&tail, v.Output), io.MultiWriter(&tail, v.Output)
	}
	if err := cmd.Run(); err != nil {
		if errors.Is(ctx.Err(), context.Canceled) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("virt-sysprep on %s: %w", req.DiskPath, ctx.Err())
		}
		return fmt.Errorf("virt-sysprep on %s: %w: %s", req.DiskPath, err, strings.TrimSpace(tail.String()))
	}
	return nil
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 4096 {
		t.buf = t.buf[len(t.buf)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
