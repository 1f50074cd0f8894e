package cli

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lago-go/lago/core/config"
	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/output"
	"github.com/lago-go/lago/core/pluginhost/discovery"
	"github.com/lago-go/lago/sdk/plugininfo"
)

// needsPluginVerbs reports whether the command tree must include the verbs
// of command plugins: when the verb is not built in, or for help and
// completion. A built-in verb runs without discovering plugins at all.
func needsPluginVerbs(path []string) bool {
	if len(path) == 0 {
		return true
	}
	switch path[0] {
	case "help", "completion", cobra.ShellCompRequestCmd, cobra.ShellCompNoDescRequestCmd:
		return true
	}
	return !isBuiltin(path[0])
}

// addPluginVerbs adds a cobra command for every verb a command plugin
// declares. It uses the plugin host's describe cache, so no plugin starts.
// Problems are remembered, not fatal: help must work without plugins.
func (a *app) addPluginVerbs() {
	// Pins come from the configuration; without a valid one, run no
	// plugin binary at all (the config error surfaces when a verb runs).
	cfg, err := config.Load(a.configOptions(nil))
	if err != nil {
		a.hostErr = fmt.Errorf("configuration: %w", err)
		return
	}
	a.cfg = cfg
	comps, err := a.components(kindCommand)
	if err != nil {
		a.hostErr = err
		return
	}
	taken := map[string]bool{}
	for _, c := range a.root.Commands() {
		taken[c.Name()] = true
	}
	for _, comp := range comps {
		for _, spec := range comp.Commands {
			if taken[spec.Name] || spec.Name == "" {
				continue // built-in verbs and earlier plugins win
			}
			taken[spec.Name] = true
			cmd, err := a.pluginCommand(comp.Name, spec)
			if err != nil {
				a.hostErr = err
				continue
			}
			if !a.root.ContainsGroup(pluginGroup) {
				a.root.AddGroup(&cobra.Group{ID: pluginGroup, Title: "Verbs from command plugins:"})
			}
			a.root.AddCommand(cmd)
		}
	}
}

// components lists a kind's components, turning a panic of the plugin host
// into an error.
func (a *app) components(kind string) (comps []plugininfo.ComponentInfo, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("plugin discovery failed: %v", r)
		}
	}()
	comps, err = a.pluginHost().Components(kind)
	if err != nil {
		return nil, fmt.Errorf("plugin discovery failed: %w", err)
	}
	return comps, nil
}

func (a *app) pluginCommand(component string, spec plugininfo.CommandSpec) (*cobra.Command, error) {
	// Usage may or may not repeat the verb ("hello [--name N]" or
	// "[--name N]"); cobra wants it first exactly once.
	use := spec.Name
	if u := strings.TrimSpace(spec.Usage); u != "" {
		if u == spec.Name || strings.HasPrefix(u, spec.Name+" ") {
			use = u
		} else {
			use += " " + u
		}
	}
	args := cobra.MinimumNArgs(spec.MinArgs)
	if spec.MaxArgs >= 0 {
		args = cobra.RangeArgs(spec.MinArgs, spec.MaxArgs)
	}
	cmd := &cobra.Command{
		Use: use, Short: spec.Short, Long: spec.Long, Args: args, GroupID: pluginGroup,
		Annotations: map[string]string{"lago/plugin-component": component},
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runPluginVerb(cmd, spec, args)
		},
	}
	if cmd.Long == "" {
		cmd.Long = spec.Short
	}
	fs := cmd.Flags()
	for _, f := range spec.Flags {
		// pflag panics on a duplicate; a plugin's describe must not be able
		// to take the CLI down.
		if f.Name == "" || f.Name == "help" || fs.Lookup(f.Name) != nil {
			return nil, fmt.Errorf("plugin component %s: verb %s: flag %q is empty or declared twice", component, spec.Name, f.Name)
		}
		if f.Shorthand == "h" || len(f.Shorthand) > 1 || (f.Shorthand != "" && fs.ShorthandLookup(f.Shorthand) != nil) {
			return nil, fmt.Errorf("plugin component %s: verb %s: flag --%s: shorthand %q is invalid or taken", component, spec.Name, f.Name, f.Shorthand)
		}
		var err error
		switch f.Type {
		case "bool":
			def := false
			if f.Default != "" {
				def, err = strconv.ParseBool(f.Default)
			}
			fs.BoolP(f.Name, f.Shorthand, def, f.Usage)
		case "int":
			def := 0
			if f.Default != "" {
				def, err = strconv.Atoi(f.Default)
			}
			fs.IntP(f.Name, f.Shorthand, def, f.Usage)
		case "string-slice":
			fs.StringSliceP(f.Name, f.Shorthand, splitList(f.Default), f.Usage)
		case "string", "":
			fs.StringP(f.Name, f.Shorthand, f.Default, f.Usage)
		default:
			err = fmt.Errorf("unknown flag type %q", f.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("plugin component %s: verb %s: flag --%s: %w", component, spec.Name, f.Name, err)
		}
	}
	return cmd, nil
}

// runPluginVerb sends the verb to its command plugin and streams the
// output; the plugin's exit code becomes lago's.
func (a *app) runPluginVerb(cmd *cobra.Command, spec plugininfo.CommandSpec, args []string) error {
	if a.backend.Forward != nil {
		return a.forward(false)
	}
	req := CommandRequest{Verb: spec.Name, Args: args, Flags: map[string]string{}, Global: map[string]string{}}
	cmd.LocalFlags().VisitAll(func(f *pflag.Flag) { req.Flags[f.Name] = flagString(f) })
	for _, k := range config.SectionKeys(config.SectionLago) {
		req.Global[k.Name] = a.cfg.String(k.Section, k.Name)
	}
	if wd, err := os.Getwd(); err == nil {
		req.WorkingDir = wd
	}
	code, err := a.pluginHost().RunCommand(cmd.Context(), req, a.stdout, a.stderr)
	if err != nil {
		return fmt.Errorf("plugin verb %s: %w", spec.Name, err)
	}
	if code != 0 {
		return errs.Exit(code)
	}
	return nil
}

const pluginGroup = "plugin"

// outputPlugins lets core/output reach output plugins through the host.
type outputPlugins struct{ a *app }

func (o outputPlugins) OutputNames() ([]string, error) {
	comps, err := o.a.components(kindOutput)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(comps))
	for _, c := range comps {
		names = append(names, c.Name)
	}
	return names, nil
}

func (o outputPlugins) Output(ctx context.Context, name string) (output.PluginFormat, error) {
	return o.a.pluginHost().Output(ctx, name)
}

// runGenerateConfig prints the effective configuration, with the settings
// every provider plugin describes under the sections of its instances.
// The settings come from the describe cache (or a `describe` run on a
// miss), as `lago plugins` gets them: no plugin process is started.
func runGenerateConfig(_ context.Context, inv *Invocation) error {
	verbose, _ := inv.Flags.GetBool("verbose")
	settings, err := providerSettings(inv.app)
	if err != nil {
		// The core's keys are still worth printing.
		fmt.Fprintf(inv.Stderr, "lago: warning: the plugins' settings are not listed: %v\n", err)
	}
	return inv.Config.WriteINIWith(inv.Stdout, config.INIOptions{Verbose: verbose, ProviderSettings: settings})
}

// kindProvider is plugininfo.KindProvider.
const kindProvider = "provider"

// providerSettings maps each usable provider component to the settings its
// plugin describes; on error, an empty map (no listing, but a note).
func providerSettings(a *app) (map[string][]config.PluginSetting, error) {
	out := map[string][]config.PluginSetting{}
	comps, err := a.components(kindProvider)
	if err != nil {
		return out, err
	}
	for _, c := range comps {
		if _, dup := out[c.Name]; dup {
			continue // the first plugin serving a component wins, as at run time
		}
		fields := make([]config.PluginSetting, 0, len(c.ConfigSchema))
		for _, f := range c.ConfigSchema {
			fields = append(fields, config.PluginSetting{Name: f.Name, Type: f.Type, Default: f.Default, Help: f.Description, Required: f.Required})
		}
		out[c.Name] = fields
	}
	return out, nil
}

// runPlugins lists plugin binaries and components: a table in the default
// format, a document in any other.
func runPlugins(ctx context.Context, inv *Invocation) error {
	infos, err := discover(inv.Host())
	if err != nil {
		return errs.User(err)
	}
	if inv.Config.OutFormat == output.FormatDefault {
		return pluginTable(inv, infos)
	}
	list := make([]any, 0, len(infos))
	for _, p := range infos {
		m := output.NewMap().Set("name", p.Name).Set("version", p.Version).Set("path", p.Path).
			Set("status", pluginStatus(p)).Set("reason", pluginReason(p)).
			Set("pin", p.Pin).Set("sha256", p.SHA256)
		comps := make([]any, 0, len(p.Components))
		for _, c := range p.Components {
			comps = append(comps, output.NewMap().Set("name", c.Name).Set("kind", c.Kind).Set("description", c.Description))
		}
		m.Set("components", comps)
		list = append(list, m)
	}
	return inv.Render(ctx, output.NewMap().Set("plugins", list))
}

func discover(h PluginHost) (infos []discovery.Info, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("plugin discovery failed: %v", r)
		}
	}()
	infos, err = h.Discover()
	if err != nil {
		return nil, fmt.Errorf("plugin discovery failed: %w", err)
	}
	return infos, nil
}

func pluginStatus(p discovery.Info) string {
	switch {
	case p.Refused:
		return "refused"
	case p.Shadowed:
		return "shadowed"
	}
	return "ok"
}

func pluginReason(p discovery.Info) string {
	if p.Shadowed && p.Reason == "" {
		return "shadowed by " + p.ShadowedBy
	}
	return p.Reason
}

func pluginTable(inv *Invocation, infos []discovery.Info) error {
	tw := tabwriter.NewWriter(inv.Stdout, 0, 4, 2, ' ', 0)
	// PIN is the sha256 the binary must have ([plugins] in lago.conf, or
	// its folder's pins file), abbreviated; "-" when it is not pinned.
	fmt.Fprintln(tw, "PLUGIN\tVERSION\tCOMPONENT\tKIND\tSTATUS\tPIN\tPATH")
	for _, p := range infos {
		status := pluginStatus(p)
		if r := pluginReason(p); r != "" {
			status += " (" + r + ")"
		}
		comps := append([]plugininfo.ComponentInfo(nil), p.Components...)
		sort.SliceStable(comps, func(i, j int) bool { return comps[i].Kind < comps[j].Kind })
		if len(comps) == 0 {
			comps = []plugininfo.ComponentInfo{{Name: "-", Kind: "-"}}
		}
		for _, c := range comps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, orDash(p.Version), c.Name, c.Kind, status, orDash(discovery.ShortHash(p.Pin)), p.Path)
		}
	}
	if len(infos) == 0 {
		fmt.Fprintln(inv.Stderr, "no plugins found")
	}
	return tw.Flush()
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
