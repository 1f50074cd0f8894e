package lago

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/lago-go/lago/sdk"

	"github.com/lago-go/lago/core/config"
	"github.com/lago-go/lago/core/env"
	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/lease"
	"github.com/lago-go/lago/core/pluginhost"
	"github.com/lago-go/lago/core/template"
)

// This file wires env to the real configuration, plugin host, lease store
// and template store: the one place where the orchestrator meets the real
// pieces (env itself knows them only by its small interfaces).

// envOptions maps the configuration onto env.Options.
func envOptions(c *config.Config) env.Options {
	o := env.Options{
		DefaultProvider:     c.DefaultVMProvider,
		DefaultVMType:       c.DefaultVMType,
		SSHUser:             c.SSHUser,
		SSHPassword:         c.SSHPassword,
		DefaultRootPassword: c.DefaultRootPassword,
		StartTimeout:        c.StartTimeout,
		StartParallelism:    c.StartParallelism,
	}
	for name := range c.Providers {
		o.ProviderInstances = append(o.ProviderInstances, name)
	}
	return o
}

// initOptions maps the [init] settings (and the workdir and
// prefix name) onto env.InitOptions; the CLI sets InitFile and, from its
// positional arguments, Workdir.
func initOptions(c *config.Config) env.InitOptions {
	return env.InitOptions{
		Workdir:       c.WorkdirPath,
		PrefixName:    c.PrefixName,
		SetCurrent:    c.SetCurrent,
		SkipBootstrap: c.SkipBootstrap,
		SkipBuild:     c.SkipBuild,
	}
}

// pluginProviders resolves provider instances of the configuration to
// provider components served by plugins, each instance once.
func pluginProviders(pm *pluginhost.Host, c *config.Config) env.ProviderResolver {
	var mu sync.Mutex
	cache := map[string]sdk.Provider{}
	return func(ctx context.Context, instance string) (sdk.Provider, error) {
		mu.Lock()
		defer mu.Unlock()
		if p, ok := cache[instance]; ok {
			return p, nil
		}
		inst, err := c.Provider(instance)
		if err != nil {
			return nil, err
		}
		p, err := pm.Provider(ctx, inst.Plugin, inst.Settings)
		if err != nil {
			return nil, fmt.Errorf("provider instance %q (plugin %s): %w", instance, inst.Plugin, err)
		}
		cache[instance] = p
		return p, nil
	}
}

// pluginBuilders implements env.Builder by handing each build step to the
// builder component it names ("virt-customize"), started through pm, and
// env.BuilderLister with the builder components discovery finds, so init
// refuses an unknown builder before it creates anything.
type pluginBuilders struct {
	Plugins *pluginhost.Host
	// Progress receives the tools' output as "lago: <vm>: <line>" lines
	// while a step runs (may be nil); the prefix log gets it in full.
	Progress io.Writer
	// mu keeps lines of VMs building in parallel whole.
	mu *sync.Mutex
	// Libguestfs are the [init] libguestfs_* settings, given to a builder
	// whose configuration schema has the matching keys.
	Libguestfs libguestfsSettings
}

var (
	_ env.Builder       = pluginBuilders{}
	_ env.BuilderLister = pluginBuilders{}
)

// BuilderNames implements env.BuilderLister.
func (b pluginBuilders) BuilderNames(context.Context) ([]string, error) {
	comps, err := b.Plugins.Components(sdk.KindBuilder)
	if err != nil {
		return nil, fmt.Errorf("discover builder plugins: %w", err)
	}
	names := make([]string, 0, len(comps))
	for _, c := range comps {
		names = append(names, c.Name)
	}
	return names, nil
}

// Build implements env.Builder.
func (b pluginBuilders) Build(ctx context.Context, req env.BuildRequest) error {
	bl, err := b.Plugins.Builder(ctx, req.Step.Builder, b.builderConfig(req.Step.Builder))
	if err != nil {
		return fmt.Errorf("builder %q: %w", req.Step.Builder, err)
	}
	return pluginBuilder{Builder: bl, Log: b.progressLine}.Build(ctx, req)
}

// builderConfig is the libguestfs settings a builder declares in its
// configuration schema (the virt-customize builder's libguestfs_* keys).
func (b pluginBuilders) builderConfig(name string) map[string]string {
	comps, err := b.Plugins.Components(sdk.KindBuilder)
	if err != nil {
		return nil
	}
	var cfg map[string]string
	for _, c := range comps {
		if c.Name != name {
			continue
		}
		all := b.Libguestfs.Config()
		for _, f := range c.ConfigSchema {
			if v, ok := all[f.Name]; ok {
				if cfg == nil {
					cfg = map[string]string{}
				}
				cfg[f.Name] = v
			}
		}
	}
	return cfg
}

func (b pluginBuilders) progressLine(vm, line string) {
	if b.Progress == nil {
		return
	}
	if b.mu != nil {
		b.mu.Lock()
		defer b.mu.Unlock()
	}
	fmt.Fprintf(b.Progress, "lago: %s: %s\n", vm, line)
}

// realDeps returns the env.Deps of the real packages: providers and builders
// from plugins, the lease store of lease_dir, the template store and
// repositories of the [init] settings and virt-sysprep for bootstrap; the
// Client adds the SSH. progress (template downloads) and out (the build
// tools' lines) may be nil.
func realDeps(pm *pluginhost.Host, c *config.Config, progress template.Progress, out io.Writer) env.Deps {
	var templates env.Templates
	if st, err := templatesFromConfig(c, progress); err == nil {
		templates = st
	} else {
		templates = failingTemplates{err: err}
	}
	gfs := libguestfsFromConfig(c)
	return env.Deps{
		Providers: pluginProviders(pm, c),
		Leaser:    &lease.Store{Dir: c.LeaseDir},
		Templates: templates,
		Builder:   pluginBuilders{Plugins: pm, Progress: out, mu: new(sync.Mutex), Libguestfs: gfs},
		Bootstrap: terminalBootstrap{Bootstrapper: bootstrapperFromConfig(c, gfs), Out: out, mu: new(sync.Mutex)},
	}
}

// bootstrapperFromConfig is the [init] bootstrap_tool: guestfish (one
// appliance for every disk) or the original's virt-sysprep per disk, both
// run with the libguestfs settings.
func bootstrapperFromConfig(c *config.Config, gfs libguestfsSettings) env.Bootstrapper {
	if c.String(config.SectionInit, "bootstrap_tool") == "virt-sysprep" {
		return virtSysprepAll{virtSysprep{EnvFunc: gfs.Env}}
	}
	return &guestfishBootstrap{EnvFunc: gfs.Env}
}

// templatesFromConfig maps the [init] template settings onto a
// storeTemplates. A template_repo_path given in a file, the environment or
// on the command line wins over template_repo_name, as in the original
// (which loads the repository from the path whenever one is set); only the
// default path gives way to a name. progress may be nil.
func templatesFromConfig(c *config.Config, progress template.Progress) (*storeTemplates, error) {
	name := c.TemplateRepoName
	if v, ok := c.Get(config.SectionInit, "template_repo_path"); ok && v.Source.Kind != config.FromDefault && v.Value != "" {
		name = ""
	}
	duration := func(key string) time.Duration {
		// Load has vetted the durations of declared keys.
		d, _ := config.ParseDuration(c.String(config.SectionInit, key))
		return d
	}
	maxSize := int64(0)
	if v, ok := c.Get(config.SectionInit, "template_max_image_size"); ok {
		n, err := config.ParseSize(v.Value)
		if err != nil {
			return nil, errs.Userf("%s: invalid value %q for template_max_image_size in [init]: %w", v.Source, v.Value, err)
		}
		// In the store 0 means the default; in the setting, no limit.
		maxSize = n
		if n == 0 {
			maxSize = -1
		}
	}
	stall := duration("template_stall_timeout")
	return &storeTemplates{
		Store: &template.Store{Dir: c.TemplateStore, StallTimeout: stall, MaxImageSize: maxSize},
		Repo: template.Options{
			Path: c.TemplateRepoPath, Name: name, ReposDir: c.TemplateRepos,
			ConnectTimeout:  duration("template_connect_timeout"),
			ResponseTimeout: duration("template_response_timeout"),
			StallTimeout:    stall,
		},
		Progress: progress,
	}, nil
}

// failingTemplates stands for the templates when their settings are
// wrong: init fails on the first disk that needs a template, with the
// setting's origin, and environments without templates still work.
type failingTemplates struct{ err error }

func (f failingTemplates) Get(context.Context, env.TemplateRef) (env.Image, error) {
	return env.Image{}, f.err
}
