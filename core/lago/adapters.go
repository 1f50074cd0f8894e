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
	"time"

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
// virt-customize plugin): the tool's lines go to the request's log file
// (the prefix's lago.log) and, as progress, to Log (may be nil).
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
	var file io.Writer
	if req.LogFile != "" {
		// 0600 as the plugin lines of the same log; a log that cannot be
		// opened must not fail the build.
		if f, err := os.OpenFile(req.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
			defer f.Close()
			file = f
		}
	}
	log := func(line string) {
		if file != nil {
			// One write per line: O_APPEND keeps the lines of parallel
			// builds and of the plugins' own log whole.
			fmt.Fprintf(file, "%s [INFO]  build %s %s: %s\n", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), req.Step.Builder, req.VM, line)
		}
		if b.Log != nil {
			b.Log(req.VM, line)
		}
	}
	began := time.Now()
	log(fmt.Sprintf("%s on %s", req.Step.Builder, req.DiskPath))
	err := b.Builder.Build(ctx, r, log)
	if err != nil {
		log(fmt.Sprintf("%s failed after %s", req.Step.Builder, time.Since(began).Round(100*time.Millisecond)))
		return err
	}
	log(fmt.Sprintf("%s done in %s", req.Step.Builder, time.Since(began).Round(100*time.Millisecond)))
	return nil
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
	// EnvFunc, when set, adds more (the libguestfs settings, worked out
	// on first use: finding out whether KVM works takes a moment).
	EnvFunc func() []string
	// Output receives the tool's output (may be nil).
	Output io.Writer
}

var _ env.Bootstrapper = virtSysprepAll{}

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
	if v.EnvFunc != nil {
		cmd.Env = append(cmd.Env, v.EnvFunc()...)
	}
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
