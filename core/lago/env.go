package lago

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/lago-go/lago/core/env"
	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/prefix"
)

// InitOptions say what Init makes and where. Zero fields take the
// configuration's values ([init] and [lago] of lago.conf), as `lago init`.
type InitOptions struct {
	// InitFile is the init file (YAML or JSON); relative paths in it start
	// from its folder. Default: LagoInitFile in the current folder.
	InitFile string
	// InitFileData is the init file's content, for a program that builds
	// it; InitFile then only names it (in errors, and as the folder its
	// relative paths start from).
	InitFileData []byte
	// Workdir is the workdir to create or add a prefix to (default
	// ./.lago).
	Workdir string
	// PrefixName is the prefix's name in the workdir (default "default").
	PrefixName string
	// SetCurrent points the workdir's `current` at the new prefix even
	// when it already has one.
	SetCurrent bool
	// TemplateRepoPath and TemplateRepoName choose the template
	// repository (a path or URL wins over a name); TemplateStore is where
	// images are kept. Empty: the configuration's.
	TemplateRepoPath, TemplateRepoName, TemplateStore string
	// SkipBootstrap and SkipBuild leave the disks as the templates and
	// build steps would not have them: no hostname, password or key set,
	// no build step run.
	SkipBootstrap, SkipBuild bool
}

// Env is one environment (a prefix on disk): its VMs and networks and the
// verbs that act on them. Calls on different VMs may run concurrently;
// verbs on the whole environment (start, stop, snapshot, destroy) take the
// environment as a whole.
type Env struct {
	c    *Client
	path string
	// skipped is what Init passed over (subnets in use on the host).
	skipped string
}

// Init makes a new environment from an init file: leases its subnets,
// fetches templates, prepares and bootstraps disks. It returns once the
// prefix is initialized; nothing runs yet (Start). On failure nothing is
// left that Destroy would have to remove, except after a kill, and then
// Destroy removes it.
func (c *Client) Init(ctx context.Context, o InitOptions) (*Env, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	eo := initOptions(c.cfg)
	if o.Workdir != "" {
		eo.Workdir = o.Workdir
	}
	if o.PrefixName != "" {
		eo.PrefixName = o.PrefixName
	}
	eo.InitFile, eo.InitFileData = o.InitFile, o.InitFileData
	eo.SetCurrent = eo.SetCurrent || o.SetCurrent
	eo.SkipBootstrap = eo.SkipBootstrap || o.SkipBootstrap
	eo.SkipBuild = eo.SkipBuild || o.SkipBuild
	store := c.cfg.TemplateStore
	if o.TemplateStore != "" {
		store = o.TemplateStore
	}
	if err := c.preflight(eo.Workdir, store, !eo.SkipBootstrap); err != nil {
		return nil, err
	}
	m := c.mgr
	if o.TemplateRepoPath != "" || o.TemplateRepoName != "" || o.TemplateStore != "" {
		var err error
		if m, err = c.withTemplates(o); err != nil {
			return nil, err
		}
	}
	res, err := m.Init(ctx, eo)
	if err != nil {
		return nil, err
	}
	c.setCurrent(res.Prefix)
	return &Env{c: c, path: res.Prefix, skipped: res.SkippedMessage()}, nil
}

// Load opens an existing environment: path is a prefix, or a workdir
// (its current prefix); "" finds one as the lago command does (the
// configuration's prefix or workdir, else .lago in the current folder or
// a parent). An environment whose init did not finish can only be
// destroyed; other calls fail with ErrNotInitialized.
func (c *Client) Load(ctx context.Context, path string) (*Env, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := prefix.Find(c.findOptions(path))
	if err != nil {
		return nil, errs.User(err)
	}
	if err := checkOwner(p.Path); err != nil {
		return nil, err
	}
	c.setCurrent(p.Path)
	return &Env{c: c, path: p.Path}, nil
}

// isWorkdir reports whether path holds a workdir's `current` link.
func isWorkdir(path string) bool {
	_, err := os.Lstat(filepath.Join(path, prefix.CurrentLink))
	return err == nil
}

// Path is the prefix folder.
func (e *Env) Path() string { return e.path }

// Client is the Client the Env belongs to.
func (e *Env) Client() *Client { return e.c }

// SkippedSubnets describes the free subnets Init passed over because the
// host uses them ("" if none, or for a loaded Env).
func (e *Env) SkippedSubnets() string { return e.skipped }

// UUID is the prefix's uuid, which tags its libvirt objects.
func (e *Env) UUID() (string, error) {
	return (&prefix.Prefix{Path: e.path}).UUID()
}

// load reads the prefix's specs.
func (e *Env) load() (*env.Environment, error) {
	if err := e.c.check(); err != nil {
		return nil, err
	}
	return e.c.mgr.Load(e.path)
}

// StartOptions say which VMs start and how long to wait.
type StartOptions struct {
	// VMs are the VMs to start (names or unique suffixes); none means all.
	VMs []string
	// NoWait returns once the VMs run, without waiting for ssh.
	NoWait bool
	// Timeout is the one deadline for every VM to answer ssh (default the
	// configuration's start timeout).
	Timeout time.Duration
}

// Start starts the networks the VMs need, then the VMs, and waits until
// each answers ssh. A VM that stops or panics while booting fails it at
// once, with its serial console's last lines.
func (e *Env) Start(ctx context.Context, o StartOptions) error {
	if err := e.c.check(); err != nil {
		return err
	}
	err := e.withVMTypeHooks(func() error {
		return e.c.mgr.Start(ctx, e.path, o.VMs, env.StartOptions{NoWait: o.NoWait, Timeout: o.Timeout, Parallelism: e.c.cfg.StartParallelism})
	})
	return e.c.explainStart(e.path, err)
}

// Stop powers the VMs off at once (all when none are named), then the
// networks no running VM uses.
func (e *Env) Stop(ctx context.Context, vms ...string) error {
	if err := e.c.check(); err != nil {
		return err
	}
	return e.c.mgr.Stop(ctx, e.path, vms)
}

// Shutdown asks the guests to shut down (or reboot) and waits for it.
func (e *Env) Shutdown(ctx context.Context, reboot bool, vms ...string) error {
	if err := e.c.check(); err != nil {
		return err
	}
	return e.c.mgr.Shutdown(ctx, e.path, vms, reboot)
}

// Cleanup stops everything the environment runs and frees its resources
// but keeps the prefix (lago cleanup).
func (e *Env) Cleanup(ctx context.Context) error {
	if err := e.c.check(); err != nil {
		return err
	}
	return e.c.mgr.Cleanup(ctx, e.path)
}

// Destroy removes the environment completely: VMs, networks, leases,
// files. It also removes what a killed Init left.
func (e *Env) Destroy(ctx context.Context) error {
	if err := e.c.check(); err != nil {
		return err
	}
	p, err := prefix.Find(prefix.FindOptions{PrefixPath: e.path})
	if err != nil {
		if errors.Is(err, prefix.ErrNotFound) {
			return nil // already gone
		}
		return err
	}
	return e.c.mgr.DestroyPrefix(ctx, p)
}

// Snapshot takes a snapshot called name of every VM.
func (e *Env) Snapshot(ctx context.Context, name string) error {
	if err := e.c.check(); err != nil {
		return err
	}
	return e.c.mgr.Snapshot(ctx, e.path, name)
}

// Revert returns every VM to the snapshot called name.
func (e *Env) Revert(ctx context.Context, name string) error {
	if err := e.c.check(); err != nil {
		return err
	}
	return e.c.mgr.Revert(ctx, e.path, name)
}

// Snapshots lists each VM's snapshots, oldest first.
func (e *Env) Snapshots(ctx context.Context) (map[string][]string, error) {
	if err := e.c.check(); err != nil {
		return nil, err
	}
	return e.c.mgr.ListSnapshots(ctx, e.path)
}

// Deploy runs every VM's deploy scripts (metadata.deploy-scripts), VMs in
// parallel, their output to stdout and stderr.
func (e *Env) Deploy(ctx context.Context, stdout, stderr io.Writer) error {
	if err := e.c.check(); err != nil {
		return err
	}
	return e.c.mgr.Deploy(ctx, e.path, orDiscard(stdout), orDiscard(stderr))
}

// Console attaches in and out to a VM's serial console until ctx ends or
// in reaches EOF.
func (e *Env) Console(ctx context.Context, vm string, in io.Reader, out io.Writer) error {
	if err := e.c.check(); err != nil {
		return err
	}
	return e.c.mgr.Console(ctx, e.path, vm, in, out)
}

// VMs returns the environment's VMs as the specs on disk say (no provider
// is asked; State is empty: see Status or VM.State).
func (e *Env) VMs() ([]*VM, error) {
	en, err := e.load()
	if err != nil {
		return nil, err
	}
	out := make([]*VM, 0, len(en.VMs))
	for _, v := range en.VMs {
		out = append(out, newVM(e, v, ""))
	}
	return out, nil
}

// VM returns the VM called name (or the one VM whose name ends in name,
// as the CLI accepts).
func (e *Env) VM(name string) (*VM, error) {
	vms, err := e.VMs()
	if err != nil {
		return nil, err
	}
	var found []*VM
	for _, v := range vms {
		if v.Name == name {
			return v, nil
		}
		if strings.HasSuffix(v.Name, name) {
			found = append(found, v)
		}
	}
	if len(found) == 1 {
		return found[0], nil
	}
	names := make([]string, 0, len(vms))
	for _, v := range vms {
		names = append(names, v.Name)
	}
	sort.Strings(names)
	if len(found) > 1 {
		return nil, errs.User(fmt.Errorf("%w: %q matches more than one VM (%s)", ErrNoSuchVM, name, strings.Join(names, ", ")))
	}
	return nil, errs.User(fmt.Errorf("%w: %q (the environment has %s)", ErrNoSuchVM, name, strings.Join(names, ", ")))
}

// Networks returns the environment's networks as the specs on disk say.
func (e *Env) Networks() ([]*Network, error) {
	en, err := e.load()
	if err != nil {
		return nil, err
	}
	out := make([]*Network, 0, len(en.Nets))
	for _, n := range en.Nets {
		out = append(out, newNetwork(n, ""))
	}
	return out, nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
