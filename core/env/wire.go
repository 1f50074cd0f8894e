package env

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/lago-go/lago/sdk"

	"github.com/lago-go/lago/core/config"
	"github.com/lago-go/lago/core/lease"
	"github.com/lago-go/lago/core/pluginhost"
	lagossh "github.com/lago-go/lago/core/ssh"
	"github.com/lago-go/lago/core/template"
)

// This file wires env to the real configuration and plugin host, so the
// CLI needs one call per piece.

// OptionsFromConfig maps the configuration onto Options.
func OptionsFromConfig(c *config.Config) Options {
	o := Options{
		DefaultProvider:     c.DefaultVMProvider,
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

// InitOptionsFromConfig maps the [init] settings (and the workdir and
// prefix name) onto InitOptions; the CLI sets InitFile and, from its
// positional arguments, Workdir.
func InitOptionsFromConfig(c *config.Config) InitOptions {
	return InitOptions{
		Workdir:       c.WorkdirPath,
		PrefixName:    c.PrefixName,
		SetCurrent:    c.SetCurrent,
		SkipBootstrap: c.SkipBootstrap,
		SkipBuild:     c.SkipBuild,
	}
}

// PluginProviders resolves provider instances of the configuration to
// provider components served by plugins, each instance once.
func PluginProviders(pm *pluginhost.Manager, c *config.Config) ProviderResolver {
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

// PluginBuilders implements Builder by handing each build step to the
// builder component it names ("virt-customize"), started through pm.
type PluginBuilders struct {
	Plugins *pluginhost.Manager
	Log     func(vm, line string)
}

// Build implements Builder.
func (b PluginBuilders) Build(ctx context.Context, req BuildRequest) error {
	bl, err := b.Plugins.Builder(ctx, req.Step.Builder, nil)
	if err != nil {
		return fmt.Errorf("builder %q: %w", req.Step.Builder, err)
	}
	return PluginBuilder{Builder: bl, Log: b.Log}.Build(ctx, req)
}

// RealDeps returns the Deps of the real packages: providers and builders
// from plugins, the lease store of lease_dir, the template store and
// repositories of the [init] settings, virt-sysprep for bootstrap and
// core/ssh. progress may be nil.
func RealDeps(pm *pluginhost.Manager, c *config.Config, progress template.Progress) Deps {
	return Deps{
		Providers: PluginProviders(pm, c),
		Leaser:    &lease.Store{Dir: c.LeaseDir},
		Templates: &StoreTemplates{
			Store:    &template.Store{Dir: c.TemplateStore},
			Repo:     template.Options{Path: c.TemplateRepoPath, Name: c.TemplateRepoName, ReposDir: c.TemplateRepos},
			Progress: progress,
		},
		Builder:   PluginBuilders{Plugins: pm},
		Bootstrap: VirtSysprep{},
		SSH:       sshClient(c),
	}
}

// sshClient is the real SSH: with ssh_persist set, commands reuse a per-VM
// connection kept by this very binary run as `__ssh-mux`.
func sshClient(c *config.Config) SSHClient {
	exe, err := os.Executable()
	if err != nil || c.SSHPersist <= 0 {
		return SSHClient{}
	}
	return SSHClient{Persist: c.SSHPersist, MuxCommand: []string{exe, MuxVerb}}
}

// MuxVerb is the hidden verb of the engine that runs an ssh mux.
const MuxVerb = lagossh.MuxVerb
