package env

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"

	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/initfile"
	"github.com/lago-go/lago/core/lease"
	"github.com/lago-go/lago/core/prefix"
	"github.com/lago-go/lago/core/spec"

	"github.com/lago-go/lago/sdk"
)

// InitOptions are the arguments of `lago init`.
type InitOptions struct {
	// Workdir is the workdir to create or add to (default $PWD/.lago).
	Workdir string
	// PrefixName is the prefix to create in it ("" or "current" mean
	// "default").
	PrefixName string
	// InitFile is the init file (default $PWD/LagoInitFile).
	InitFile string
	// InitFileData, when not nil, is the init file's content: InitFile
	// then only names it in errors and is the folder relative paths in it
	// start from.
	InitFileData []byte
	// SetCurrent points `current` at the new prefix even when the workdir
	// already has a current one.
	SetCurrent    bool
	SkipBootstrap bool
	SkipBuild     bool
}

// InitResult says what Init made.
type InitResult struct {
	Prefix string
	UUID   string
	// Subnets maps each nat net to its leased subnet.
	Subnets map[string]netip.Prefix
	// Skipped lists free subnets passed over because a hypervisor host
	// uses them, with who uses them; the CLI tells the user.
	Skipped []lease.Skipped
}

// SkippedMessage describes the skipped subnets in one line ("" if none).
func (r *InitResult) SkippedMessage() string {
	if r == nil || len(r.Skipped) == 0 {
		return ""
	}
	parts := make([]string, 0, len(r.Skipped))
	for _, s := range r.Skipped {
		parts = append(parts, fmt.Sprintf("%s (%s)", s.Subnet, s.Reason))
	}
	return "skipped subnets in use on the host: " + strings.Join(parts, ", ")
}

// Init steps, in order; a kill after any of them leaves a prefix that
// Destroy removes completely.
const (
	stepParsed    = iota + 1 // init file parsed and validated: no side effects
	stepTemplates            // templates in the shared store (outside the prefix)
	stepPrefix               // prefix folder with uuid and keys, no `initialized`
	stepLeased               // subnets leased
	stepSpecs                // specs written
	stepDisks                // disks prepared by the providers
	stepBuilt                // build steps and bootstrap done
	stepDone                 // `initialized` written, current set
)

// Init creates a prefix from an init file, all or nothing: when any step
// fails or ctx ends, every provider object, lease and file it made is
// removed again, and the original error returned. Steps with side effects
// outside the prefix come as late as possible (templates go to a shared
// cache that is fine to keep), and the prefix's uuid exists before anything
// is leased or created, so that a kill -9 at any moment leaves a prefix
// that Destroy removes completely.
func (m *Manager) Init(ctx context.Context, o InitOptions) (*InitResult, error) {
	paths, err := initPaths(o)
	if err != nil {
		return nil, err
	}
	// 1. Parse and validate: no side effects.
	iopts := initfile.Options{PrefixPath: paths.prefix, WorkdirPath: paths.workdir}
	var cfg *initfile.Config
	if o.InitFileData != nil {
		cfg, err = initfile.Parse(paths.initFile, o.InitFileData, iopts)
	} else {
		cfg, err = initfile.Load(paths.initFile, iopts)
	}
	if err != nil {
		return nil, errs.User(fmt.Errorf("init file: %w", err))
	}
	if _, err := os.Lstat(paths.prefix); err == nil {
		if _, err := os.Stat(filepath.Join(paths.prefix, fileInitialized)); err == nil {
			return nil, errs.User(fmt.Errorf("prefix %s is already initialized: %w", paths.prefix, ErrPrefixExists))
		}
		return nil, errs.User(fmt.Errorf("prefix %s exists but is not initialized (a failed or running init?): remove it with lago destroy: %w", paths.prefix, ErrPrefixExists))
	}
	if !o.SkipBuild {
		if err := m.checkBuilders(ctx, cfg, paths.initFile); err != nil {
			return nil, err
		}
	}
	instances := m.initInstances(cfg)
	provs, err := m.resolveAll(ctx, instances)
	if err != nil {
		return nil, errs.User(err)
	}
	if m.deps.Leaser == nil {
		return nil, errors.New("init: no lease store configured")
	}
	types, err := m.vmTypes(ctx, specPtrs(cfg.VMs), "init file "+paths.initFile, cfg)
	if err != nil {
		return nil, err
	}
	if err := m.hook(stepParsed); err != nil {
		return nil, err
	}

	// 2. Templates into the shared store.
	images, err := m.fetchTemplates(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := m.hook(stepTemplates); err != nil {
		return nil, err
	}

	// 3. The prefix folder, uuid first.
	createdWorkdir := false
	if _, err := os.Stat(paths.workdir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(paths.workdir, 0o755); err != nil {
			return nil, fmt.Errorf("create workdir %s: %w", paths.workdir, err)
		}
		createdWorkdir = true
	}
	// Leases and provider tags name the prefix by its real path, the one
	// Destroy and the lease store's liveness check will see.
	if real, err := filepath.EvalSymlinks(paths.workdir); err == nil {
		paths.prefix = filepath.Join(real, filepath.Base(paths.prefix))
	}
	res := &InitResult{Prefix: paths.prefix, Subnets: map[string]netip.Prefix{}}
	pfx, err := createPrefix(paths.prefix)
	if err != nil {
		if errs.IsUser(err) || pfx == nil {
			// Someone else's prefix, or nothing made: not ours to remove
			// (but a workdir made for it goes).
			if createdWorkdir {
				_ = os.Remove(paths.workdir)
			}
			return nil, err
		}
		return nil, m.undoInit(ctx, paths, createdWorkdir, instances, err)
	}
	uuid, err := pfx.UUID()
	if err != nil {
		return nil, m.undoInit(ctx, paths, createdWorkdir, instances, err)
	}
	res.UUID = uuid
	m.log().Info("created prefix", "path", paths.prefix, "uuid", uuid)
	fail := func(err error) (*InitResult, error) {
		return nil, m.undoInit(ctx, paths, createdWorkdir, instances, err)
	}
	// A workdir made by this init gets its `current` link now, so a kill
	// from here on leaves a prefix that discovery (and so destroy) finds.
	if createdWorkdir {
		if err := SetCurrent(paths.workdir, filepath.Base(paths.prefix)); err != nil {
			return fail(err)
		}
	}
	if err := m.hook(stepPrefix); err != nil {
		return nil, err
	}

	// 4. Lease subnets, skipping those the providers' hosts use.
	gateways, err := m.leaseSubnets(ctx, cfg, paths.prefix, uuid, provs, res)
	if err != nil {
		return fail(err)
	}
	if err := m.hook(stepLeased); err != nil {
		return nil, err
	}

	// 5. Allocate and write the specs.
	nets, vms, err := cfg.Allocate(gateways)
	if err != nil {
		return fail(errs.User(fmt.Errorf("init file %s: %w", paths.initFile, err)))
	}
	for i := range vms {
		applyTemplateMetadata(&vms[i], images)
	}
	if err := m.normalizeVMs(ctx, types, vms); err != nil {
		return fail(err)
	}
	for i := range vms {
		if err := copyDeployScripts(pfx, &vms[i]); err != nil {
			return fail(err)
		}
	}
	if err := writeSpecs(pfx, nets, vms); err != nil {
		return fail(err)
	}
	e, err := loadLenient(paths.prefix)
	if err != nil {
		return fail(err)
	}
	if err := m.validate(ctx, e, provs); err != nil {
		return fail(err)
	}
	if err := m.hook(stepSpecs); err != nil {
		return nil, err
	}

	// 6. Disks, in parallel.
	bound, err := m.bindVMs(e, e.VMs)
	if err != nil {
		return fail(err)
	}
	err = parallel(ctx, len(bound), m.opts.DiskParallelism, func(ctx context.Context, i int) error {
		b := bound[i]
		m.log().Info("preparing disks", "vm", b.spec.Name, "provider", b.instance)
		got, err := provs[b.instance].PrepareDisks(ctx, e.Ref(), b.pv)
		if err != nil {
			return fmt.Errorf("prepare disks of vm %s: %w", b.spec.Name, err)
		}
		// Build and bootstrap work on the disks as the provider made them.
		for _, pd := range got {
			for _, d := range b.pv.Disks {
				if d.Name == pd.GetName() && pd.GetPath() != "" {
					d.Path = pd.GetPath()
					if pd.GetFormat() != "" {
						d.Format = pd.GetFormat()
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	if err := m.hook(stepDisks); err != nil {
		return nil, err
	}

	// 7. Build steps, then bootstrap.
	if err := m.buildAndBootstrap(ctx, e, bound, o); err != nil {
		return fail(err)
	}
	if err := saveSpecs(pfx, e); err != nil { // the root passwords bootstrap set
		return fail(err)
	}
	if err := m.hook(stepBuilt); err != nil {
		return nil, err
	}

	// 8. Mark it initialized, last.
	if err := pfx.MarkInitialized(); err != nil {
		return fail(err)
	}
	cur, _ := CurrentPrefix(paths.workdir)
	if o.SetCurrent || cur == "" || !dirExists(filepath.Join(paths.workdir, cur)) {
		if err := SetCurrent(paths.workdir, filepath.Base(paths.prefix)); err != nil {
			return fail(err)
		}
	}
	if err := m.hook(stepDone); err != nil {
		return nil, err
	}
	return res, nil
}

// testHook, when set (by tests), runs after each init step; an error
// makes Init return at once without cleaning up, as a kill -9 would.
type testHook func(step int) error

func (m *Manager) hook(step int) error {
	if m.afterStep == nil {
		return nil
	}
	return m.afterStep(step)
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

type initPathSet struct{ workdir, prefix, initFile string }

func initPaths(o InitOptions) (initPathSet, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return initPathSet{}, fmt.Errorf("init: %w", err)
	}
	p := initPathSet{workdir: o.Workdir, initFile: o.InitFile}
	if p.workdir == "" {
		p.workdir = filepath.Join(cwd, ".lago")
	}
	if p.initFile == "" {
		p.initFile = filepath.Join(cwd, "LagoInitFile")
	}
	if p.workdir, err = filepath.Abs(p.workdir); err != nil {
		return p, fmt.Errorf("init: %w", err)
	}
	if p.initFile, err = filepath.Abs(p.initFile); err != nil {
		return p, fmt.Errorf("init: %w", err)
	}
	name := o.PrefixName
	if name == "" || name == CurrentLink {
		name = DefaultPrefixName
	}
	if filepath.Base(name) != name || strings.HasPrefix(name, ".") {
		return p, userErrorf("bad prefix name %q", name)
	}
	p.prefix = filepath.Join(p.workdir, name)
	if real, err := filepath.EvalSymlinks(p.workdir); err == nil {
		p.prefix = filepath.Join(real, name)
	}
	return p, nil
}

// initInstances lists the provider instances the init file's VMs use.
func (m *Manager) initInstances(cfg *initfile.Config) []string {
	seen := map[string]bool{}
	var out []string
	for i := range cfg.VMs {
		p := m.vmProvider(&cfg.VMs[i])
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		out = []string{m.opts.DefaultProvider}
	}
	sort.Strings(out)
	return out
}

// undoInit removes what a failed Init made, on a context that survives
// ctx's cancellation, and returns the original error (with any cleanup
// failure joined).
func (m *Manager) undoInit(ctx context.Context, paths initPathSet, createdWorkdir bool, instances []string, cause error) error {
	m.log().Warn("init failed; removing what it made", "prefix", paths.prefix, "err", cause)
	cctx, cancel := detached(ctx)
	defer cancel()
	var cleanup []error
	if e, err := loadLenient(paths.prefix); err == nil {
		// Ask the instances the init file named as well as any the specs
		// name; a missing spec must not hide a provider.
		if err := m.teardown(cctx, e, instances...); err != nil {
			cleanup = append(cleanup, err)
		} else if err := prefix.Remove(&prefix.Prefix{Path: paths.prefix}); err != nil {
			cleanup = append(cleanup, err)
		}
	} else if !errs.IsUser(err) {
		cleanup = append(cleanup, err)
	}
	if createdWorkdir {
		if names, err := ListPrefixes(paths.workdir); err == nil && len(names) == 0 {
			if err := removePath(paths.workdir); err != nil {
				cleanup = append(cleanup, err)
			}
		}
	}
	err := fmt.Errorf("init prefix %s: %w", paths.prefix, cause)
	if len(cleanup) > 0 {
		return errors.Join(err, fmt.Errorf("clean up after failed init (run lago destroy): %w", errors.Join(cleanup...)))
	}
	return err
}

// imageKey identifies a template as a disk names it.
func imageKey(d *spec.Disk) TemplateRef {
	return TemplateRef{Repo: d.TemplateRepo, Name: d.TemplateName, Version: d.TemplateVersion}
}

// isStoreTemplate reports whether a disk's image comes from the template
// store (rather than a qcow2 file of the user's).
func isStoreTemplate(d *spec.Disk) bool {
	return d.Type == spec.DiskTemplate && d.TemplateName != "" && (d.TemplateType == "" || d.TemplateType == "lago")
}

// fetchTemplates gets every template the init file uses into the store,
// each once.
func (m *Manager) fetchTemplates(ctx context.Context, cfg *initfile.Config) (map[TemplateRef]Image, error) {
	images := map[TemplateRef]Image{}
	for vi := range cfg.VMs {
		for di := range cfg.VMs[vi].Disks {
			d := &cfg.VMs[vi].Disks[di]
			if !isStoreTemplate(d) {
				continue
			}
			k := imageKey(d)
			if _, ok := images[k]; ok {
				continue
			}
			if m.deps.Templates == nil {
				return nil, errors.New("init: no template store configured")
			}
			img, err := m.deps.Templates.Get(ctx, k)
			if err != nil {
				return nil, fmt.Errorf("get template %s of vm %s disk %s: %w", k.Name, cfg.VMs[vi].Name, d.Name, err)
			}
			images[k] = img
		}
	}
	return images, nil
}

// applyTemplateMetadata copies the template's metadata into the VM spec
// (the first disk's distro shows in status).
func applyTemplateMetadata(vm *spec.VM, images map[TemplateRef]Image) {
	for di := range vm.Disks {
		d := &vm.Disks[di]
		if !isStoreTemplate(d) {
			continue
		}
		img, ok := images[imageKey(d)]
		if !ok {
			continue
		}
		d.TemplateImage = &spec.TemplateImage{Path: img.Path, Key: img.Key, Hash: img.Hash, Format: img.Format}
		if len(img.Metadata) > 0 {
			d.Metadata = map[string]any{}
			for k, v := range img.Metadata {
				d.Metadata[k] = v
			}
		}
		if di == 0 && vm.Distro == "" {
			vm.Distro = img.Metadata["distro"]
		}
	}
}

// leaseSubnets leases one subnet per nat net, all at once, never one a
// provider's host already uses.
func (m *Manager) leaseSubnets(ctx context.Context, cfg *initfile.Config, prefixPath, uuid string, provs map[string]providerHandle, res *InitResult) (map[string]string, error) {
	reqs := cfg.SubnetRequests()
	if len(reqs) == 0 {
		return map[string]string{}, nil
	}
	var mu sync.Mutex
	var used []*providerv1.UsedSubnet
	names := make([]string, 0, len(provs))
	for n := range provs {
		names = append(names, n)
	}
	sort.Strings(names)
	err := parallel(ctx, len(names), 0, func(ctx context.Context, i int) error {
		u, err := provs[names[i]].UsedSubnets(ctx)
		if errors.Is(err, sdk.ErrNotImplemented) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list subnets used on provider %q: %w", names[i], err)
		}
		mu.Lock()
		used = append(used, u...)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	skip := func(p netip.Prefix) (string, bool) {
		for _, u := range used {
			q, err := netip.ParsePrefix(u.GetCidr())
			if err != nil {
				if a, aerr := netip.ParseAddr(u.GetCidr()); aerr == nil {
					q = netip.PrefixFrom(a, a.BitLen())
				} else {
					continue
				}
			}
			if q.Overlaps(p) {
				return u.GetReason(), true
			}
		}
		return "", false
	}
	lreqs := make([]lease.Request, len(reqs))
	for i, r := range reqs {
		lreqs[i].Skip = skip
		if r.Gw != "" {
			a, err := netip.ParseAddr(r.Gw)
			if err != nil {
				return nil, userErrorf("net %s: bad gw %q", r.Net, r.Gw)
			}
			lreqs[i].Gateway = a
		}
	}
	leases, err := m.deps.Leaser.AcquireN(ctx, filepath.Join(prefixPath, fileUUID), uuid, lreqs)
	if err != nil {
		if errors.Is(err, lease.ErrFull) || errors.Is(err, lease.ErrTaken) || errors.Is(err, lease.ErrOutOfRange) {
			err = errs.User(err)
		}
		return nil, fmt.Errorf("lease subnets: %w", err)
	}
	gws := map[string]string{}
	seen := map[netip.Prefix]bool{}
	for i, l := range leases {
		gws[reqs[i].Net] = l.Gateway.String()
		m.log().Info("leased subnet", "net", reqs[i].Net, "subnet", l.Subnet.String())
		res.Subnets[reqs[i].Net] = l.Subnet
		for _, s := range l.Skipped {
			if !seen[s.Subnet] {
				seen[s.Subnet] = true
				res.Skipped = append(res.Skipped, s)
			}
		}
	}
	return gws, nil
}

// validate asks each provider about the specs it will run.
func (m *Manager) validate(ctx context.Context, e *Environment, provs map[string]providerHandle) error {
	for inst, p := range provs {
		var vms []*providerv1.VM
		netNames := map[string]bool{}
		for _, vm := range e.VMs {
			if m.vmProvider(vm) != inst {
				continue
			}
			pv, err := toProviderVM(e, vm)
			if err != nil {
				return err
			}
			vms = append(vms, pv)
			for _, n := range vm.NICs {
				netNames[n.Net] = true
			}
		}
		var nets []*providerv1.Network
		for _, n := range e.Nets {
			if netNames[n.Name] {
				nets = append(nets, toProviderNet(e, n))
			}
		}
		err := p.ValidateSpec(ctx, e.Ref(), nets, vms)
		if errors.Is(err, sdk.ErrNotImplemented) {
			continue
		}
		if err != nil {
			return errs.User(fmt.Errorf("provider %q rejects the environment: %w", inst, err))
		}
	}
	return nil
}

// buildAndBootstrap runs each VM's build steps (VMs in parallel, bounded,
// each VM's steps in order), then bootstraps the first disks of all VMs in
// one batch: the bootstrapper can then prepare them all in one libguestfs
// appliance instead of starting one per VM.
func (m *Manager) buildAndBootstrap(ctx context.Context, e *Environment, bound []boundVM, o InitOptions) error {
	pub, err := os.ReadFile(e.KeyPath() + ".pub")
	if err != nil {
		return fmt.Errorf("read prefix public key: %w", err)
	}
	if !o.SkipBuild {
		err := parallel(ctx, len(bound), m.opts.DiskParallelism, func(ctx context.Context, i int) error {
			return m.buildVM(ctx, e, bound[i], strings.TrimSpace(string(pub)))
		})
		if err != nil {
			return err
		}
	}
	if o.SkipBootstrap {
		return nil
	}
	var reqs []BootstrapRequest
	var vms []boundVM
	for _, b := range bound {
		if !b.spec.DoBootstrap() || len(b.spec.Disks) == 0 {
			continue
		}
		first := b.spec.Disks[0]
		if first.Type == spec.DiskEmpty || first.Type == spec.DiskISO {
			continue
		}
		if !localFile(b.pv.Disks[0].Path) {
			// A remote provider's volume cannot be bootstrapped from here:
			// the guest keeps its template's root password and gets no
			// prefix key, so ssh falls back to the password.
			m.log().Warn("not bootstrapping: the disk is not a local file", "vm", b.spec.Name, "provider", b.instance, "disk", b.pv.Disks[0].Path)
			continue
		}
		user := b.spec.SSHUser
		if user == "" {
			user = m.opts.SSHUser
		}
		reqs = append(reqs, BootstrapRequest{
			VM: b.spec.Name, DiskPath: b.pv.Disks[0].Path, DiskFormat: b.pv.Disks[0].Format,
			Hostname: b.spec.Name, PublicKeyPath: e.KeyPath() + ".pub", SSHUser: user,
			RootPassword: prefix.RootPassword(b.spec, m.opts.DefaultRootPassword, prefix.BootstrapRootPassword),
		})
		vms = append(vms, b)
	}
	if len(reqs) == 0 {
		return nil
	}
	if m.deps.Bootstrap == nil {
		return fmt.Errorf("bootstrap vm %s: no bootstrapper configured", reqs[0].VM)
	}
	names := make([]string, len(reqs))
	for i, r := range reqs {
		names[i] = r.VM
	}
	m.log().Info("bootstrapping", "vms", strings.Join(names, ","))
	began := time.Now()
	progress := func(ev BootstrapEvent) {
		switch {
		case ev.Done && ev.VM == "":
			m.log().Info("bootstrap", "step", ev.Step, "took", ev.Took.Round(100*time.Millisecond))
		case ev.Done:
			m.log().Info("bootstrapped", "vm", ev.VM, "took", ev.Took.Round(100*time.Millisecond))
		case ev.VM == "":
			m.log().Info("bootstrap", "step", ev.Step)
		default:
			m.log().Info("bootstrap", "vm", ev.VM, "step", ev.Step)
		}
	}
	if err := m.deps.Bootstrap.BootstrapAll(ctx, reqs, progress); err != nil {
		var be *BootstrapError
		if errors.As(err, &be) {
			return err
		}
		return fmt.Errorf("bootstrap vms %s: %w", strings.Join(names, ", "), err)
	}
	m.log().Info("bootstrap done", "vms", len(reqs), "took", time.Since(began).Round(100*time.Millisecond))
	for i, b := range vms {
		b.spec.RootPassword = reqs[i].RootPassword
		b.spec.Bootstrapped = true
	}
	return nil
}

// buildVM runs the build steps of one VM's disks, in order.
func (m *Manager) buildVM(ctx context.Context, e *Environment, b boundVM, pub string) error {
	for di, d := range b.spec.Disks {
		for si, step := range d.Build {
			if m.deps.Builder == nil {
				return fmt.Errorf("build vm %s disk %s: no builder configured", b.spec.Name, d.Name)
			}
			if !localFile(b.pv.Disks[di].Path) {
				return userErrorf("build vm %s disk %s: provider %q keeps the disk at %q, not in a local file the builder can change; drop the build steps or use a local provider",
					b.spec.Name, d.Name, b.instance, b.pv.Disks[di].Path)
			}
			m.log().Info("building disk", "vm", b.spec.Name, "disk", d.Name, "step", si+1, "builder", step.Builder)
			began := time.Now()
			err := m.deps.Builder.Build(ctx, BuildRequest{
				VM: b.spec.Name, DiskPath: b.pv.Disks[di].Path, DiskFormat: b.pv.Disks[di].Format,
				Step: step, PublicKey: pub, LogFile: e.dir().LogPath(),
			})
			if err != nil {
				return fmt.Errorf("build vm %s disk %s step %d (%s): %w", b.spec.Name, d.Name, si+1, step.Builder, err)
			}
			m.log().Info("built disk", "vm", b.spec.Name, "disk", d.Name, "step", si+1, "took", time.Since(began).Round(time.Millisecond))
		}
	}
	return nil
}

// checkBuilders refuses, before anything is made, build steps init could
// not run: any at all when no builder is configured, and those naming a
// builder no plugin serves (when the builder can list them). The error
// names the init file and each step's place in it.
func (m *Manager) checkBuilders(ctx context.Context, cfg *initfile.Config, initFile string) error {
	type place struct{ path, builder string }
	var steps []place
	for vi := range cfg.VMs {
		vm := &cfg.VMs[vi]
		for di, d := range vm.Disks {
			for si, st := range d.Build {
				steps = append(steps, place{fmt.Sprintf("domains.%s.disks[%d].build[%d]", vm.Name, di, si), st.Builder})
			}
		}
	}
	if len(steps) == 0 {
		return nil
	}
	if m.deps.Builder == nil {
		return cfg.Errorf(steps[0].path, errors.New("build steps need a builder, and none is configured"))
	}
	lister, ok := m.deps.Builder.(BuilderLister)
	if !ok {
		return nil
	}
	names, err := lister.BuilderNames(ctx)
	if err != nil {
		return fmt.Errorf("list builders: %w", err)
	}
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	sort.Strings(names)
	have := "no plugin serves a builder"
	if len(names) > 0 {
		have = "known builders: " + strings.Join(names, ", ")
	}
	var bad []error
	for _, s := range steps {
		if !known[s.builder] {
			bad = append(bad, cfg.Errorf(s.path, fmt.Errorf("%w %q (%s)", ErrUnknownBuilder, s.builder, have)))
		}
	}
	if len(bad) > 0 {
		return errs.User(errors.Join(bad...))
	}
	return nil
}

// ErrUnknownBuilder is returned (wrapped) by Init when a build step names
// a builder no plugin serves.
var ErrUnknownBuilder = errors.New("unknown builder")

// localFile reports whether a prepared disk is a file on this host (a
// remote provider answers with a volume name instead).
func localFile(path string) bool {
	if !filepath.IsAbs(path) {
		return false
	}
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}
