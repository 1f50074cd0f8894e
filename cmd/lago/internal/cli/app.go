package cli

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lago-go/lago/core/config"
	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/version"
)

// app is one run of the CLI.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	environ        []string
	getenv         func(string) string
	backend        Backend
	// args are the arguments as given, for forwarding to the engine.
	args []string
	// handlers is the verb table: the command line's own verbs and the
	// backend's.
	handlers map[string]Handler

	root     *cobra.Command
	flagKeys map[*pflag.Flag]string // flag -> config key ID
	// deprecated maps a key ID to what to use instead.
	deprecated map[string]string
	extraKeys  []config.Key
	cfg        *config.Config
	host       PluginHost
	// hostErr is why plugin discovery for the command tree failed.
	hostErr error
	// armSignals starts catching SIGINT, SIGTERM and SIGHUP;
	// disarmSignals stops it.
	armSignals, disarmSignals func()
	// started is set once cobra got past parsing and argument checks;
	// errors before it are usage errors.
	started bool
}

func newApp(backend Backend, stdin io.Reader, stdout, stderr io.Writer, environ []string) *app {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	handlers := map[string]Handler{
		"generate-config": runGenerateConfig,
		"plugins":         runPlugins,
		"plugins install": runPluginsInstall,
		"plugins remove":  runPluginsRemove,
	}
	for name, h := range backend.Handlers {
		handlers[name] = h
	}
	a := &app{
		stdin: stdin, stdout: stdout, stderr: stderr,
		environ:    environ,
		getenv:     func(k string) string { return env[k] },
		backend:    backend,
		handlers:   handlers,
		flagKeys:   map[*pflag.Flag]string{},
		deprecated: map[string]string{},
	}
	a.buildRoot()
	return a
}

const rootLong = `lago builds throw-away multi-VM environments from a declarative init file.

Global options go before the verb. Long options may be abbreviated to any
unique prefix (--workdir for --workdir-path). Exit status: 0 on success, 2 for
a problem with the input or environment, 1 for any other failure.`

func (a *app) buildRoot() {
	root := &cobra.Command{
		Use:           "lago [global options] VERB [args]",
		Short:         "Build throw-away multi-VM environments with libvirt and qemu",
		Long:          rootLong,
		Version:       version.Version,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				// With TraverseChildren cobra hands an unknown verb to the
				// root instead of reporting it.
				msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
				if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
					msg += "; did you mean " + strings.Join(s, " or ") + "?"
				}
				if a.hostErr != nil {
					msg += " (" + a.hostErr.Error() + ")"
				}
				return errs.Userf("%s", msg)
			}
			// No verb: print help, exit 1.
			cmd.SetOut(a.stdout)
			_ = cmd.Help()
			return errs.Exit(errs.ExitFailure)
		},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			a.started = true
			if a.armSignals != nil {
				a.armSignals()
			}
			if err := foldListArgs(cmd, args); err != nil {
				return err
			}
			return a.loadConfig(cmd)
		},
	}
	root.SetVersionTemplate("lago {{.Version}}\n")
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return errs.User(err) })
	root.CompletionOptions.HiddenDefaultCmd = false

	// Global options are the root's own flags, given before the verb as in
	// the original (argparse subparsers); TraverseChildren parses them on
	// the way to the verb. As persistent flags they would clash with verb
	// flags of the same letter (-l is --loglevel, and snapshot's --list).
	root.TraverseChildren = true
	pf := root.Flags()
	for _, k := range config.SectionKeys(config.SectionLago) {
		if k.Flag == "" {
			continue
		}
		f := addKeyFlag(pf, k)
		a.flagKeys[f] = k.ID()
		if k.Deprecated != "" {
			a.deprecated[k.ID()] = k.Deprecated
		}
	}
	root.AddGroup(&cobra.Group{ID: "env", Title: "Verbs:"})

	for _, spec := range verbSpecs {
		root.AddCommand(a.builtinCommand(spec))
	}
	root.SetHelpCommandGroupID("env")
	root.SetCompletionCommandGroupID("env")
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	root.DisableFlagsInUseLine = true
	root.SetUsageFunc(func(c *cobra.Command) error {
		writeUsage(c.OutOrStderr(), c)
		return nil
	})
	root.SetHelpFunc(func(c *cobra.Command, _ []string) {
		writeHelp(c.OutOrStdout(), c)
	})
	a.root = root
}

// addKeyFlag declares the flag of config key k on fs.
func addKeyFlag(fs *pflag.FlagSet, k config.Key) *pflag.Flag {
	usage := k.Help
	if len(k.Choices) > 0 {
		usage += " {" + strings.Join(k.Choices, ",") + "}"
	}
	switch k.Type {
	case config.TypeBool:
		def, _ := config.ParseBool(k.Default)
		fs.BoolP(k.Flag, k.Short, def, usage)
	case config.TypeInt:
		var def int
		fmt.Sscan(k.Default, &def)
		fs.IntP(k.Flag, k.Short, def, usage)
	default:
		fs.StringP(k.Flag, k.Short, k.Default, usage)
	}
	f := fs.Lookup(k.Flag)
	if k.Hidden {
		f.Hidden = true
	}
	return f
}

func (a *app) builtinCommand(spec verbSpec) *cobra.Command {
	name := spec.Name
	cmd := &cobra.Command{
		Use:     strings.TrimSpace(name + " " + spec.Use),
		Short:   spec.Short,
		Long:    spec.Long,
		Args:    spec.Args,
		GroupID: "env",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runBuiltin(cmd, spec, args)
		},
	}
	if spec.Long == "" {
		cmd.Long = spec.Short + "."
	}
	if spec.ConfigKeys != "" {
		for _, k := range config.SectionKeys(spec.ConfigKeys) {
			if k.Flag != "" {
				a.flagKeys[addKeyFlag(cmd.Flags(), k)] = k.ID()
			}
		}
	}
	if spec.Flags != nil {
		spec.Flags(cmd.Flags())
	}
	for _, sub := range spec.Subverbs {
		sub.Name = name + " " + sub.Name
		c := a.builtinCommand(sub)
		c.Use = strings.TrimPrefix(c.Use, name+" ")
		c.GroupID = ""
		cmd.AddCommand(c)
	}
	cmd.Annotations = map[string]string{}
	if spec.NoInterspersed {
		cmd.Flags().SetInterspersed(false)
		cmd.Annotations[annotNoInterspersed] = "true"
	}
	if spec.ListArgs != "" {
		cmd.Annotations[annotListArgs] = spec.ListArgs
	}
	if spec.ConfigKeys == "" && !spec.Meta {
		// Every option of a verb may also be set in the verb's config
		// section, as in the original ([destroy] yes = True).
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			k := config.Key{Section: name, Name: optKey(f.Name), Default: f.DefValue, Help: f.Usage, Flag: f.Name, Short: f.Shorthand}
			switch f.Value.Type() {
			case "bool":
				k.Type = config.TypeBool
				// Python's spelling, as the original wrote its config.
				if b, err := config.ParseBool(f.DefValue); err == nil && b {
					k.Default = "True"
				} else {
					k.Default = "False"
				}
			case "int":
				k.Type = config.TypeInt
			case "stringSlice", "stringArray":
				k.Type = config.TypeList
				k.Default = strings.Join(sliceValue(f), ",")
			}
			a.extraKeys = append(a.extraKeys, k)
			a.flagKeys[f] = k.ID()
		})
	}
	return cmd
}

// Command annotations.
const (
	annotNoInterspersed = "lago/no-interspersed"
	// annotListArgs names the list flag that takes the positionals too.
	annotListArgs = "lago/list-args"
)

// foldListArgs appends the positionals of a verb like `ansible_hosts -k a b`
// to its list flag, as the original's nargs='*' options took them; it runs
// before the configuration is loaded so the config sees the whole list.
func foldListArgs(cmd *cobra.Command, args []string) error {
	name := cmd.Annotations[annotListArgs]
	if name == "" || len(args) == 0 {
		return nil
	}
	f := cmd.Flags().Lookup(name)
	if !f.Changed {
		return errs.Userf("lago %s: unexpected arguments %q (they may only follow --%s)", cmd.Name(), args, name)
	}
	if err := f.Value.(pflag.SliceValue).Replace(append(sliceValue(f), args...)); err != nil {
		return errs.User(fmt.Errorf("lago %s: --%s: %w", cmd.Name(), name, err))
	}
	return nil
}

func sliceValue(f *pflag.Flag) []string {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return sv.GetSlice()
	}
	return nil
}

// flagString is the config form of a flag's value.
func flagString(f *pflag.Flag) string {
	if _, ok := f.Value.(pflag.SliceValue); ok {
		return strings.Join(sliceValue(f), ",")
	}
	return f.Value.String()
}

// loadConfig loads the configuration with the flags the user gave to cmd.
func (a *app) loadConfig(cmd *cobra.Command) error {
	flags := map[string]config.FlagValue{}
	visit := func(f *pflag.Flag) {
		id, ok := a.flagKeys[f]
		if !ok || !f.Changed {
			return
		}
		flags[id] = config.FlagValue{Value: flagString(f), Flag: "--" + f.Name}
		if d := a.deprecated[id]; d != "" {
			fmt.Fprintf(a.stderr, "lago: warning: --%s is deprecated: %s\n", f.Name, d)
		}
	}
	a.root.Flags().VisitAll(visit)
	if cmd != a.root {
		cmd.LocalFlags().VisitAll(visit)
	}
	cfg, err := config.Load(a.configOptions(flags))
	if err != nil {
		return err
	}
	a.cfg = cfg
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(a.stderr, "lago: warning: %s\n", w)
	}
	return nil
}

func (a *app) configOptions(flags map[string]config.FlagValue) config.Options {
	return config.Options{
		Files:    config.DefaultFiles(a.getenv),
		Required: config.RequiredFiles(a.getenv),
		Environ:  a.environ,
		Flags:    flags,
		Extra:    a.extraKeys,
		Sections: builtinNames(),
	}
}

// runBuiltin checks the verb's required options and list arguments, then
// calls its handler.
func (a *app) runBuiltin(cmd *cobra.Command, spec verbSpec, args []string) error {
	if spec.ListArgs != "" {
		args = nil // folded into the list flag by foldListArgs
	}
	inv := a.invocation(cmd, spec.Name, args)
	for _, r := range spec.Required {
		if inv.Opt(r) == "" {
			return errs.Userf("lago %s: --%s is required", spec.Name, r)
		}
	}
	h, ok := a.handlers[spec.Name]
	if !ok {
		if a.backend.Forward != nil {
			return a.forward(spec.Provider)
		}
		h = NotImplemented
	}
	return h(cmd.Context(), inv)
}

func (a *app) invocation(cmd *cobra.Command, verb string, args []string) *Invocation {
	return &Invocation{
		Verb: verb, Args: args, Flags: cmd.Flags(), Config: a.cfg, app: a,
		Stdin: a.stdin, Stdout: a.stdout, Stderr: a.stderr,
	}
}

// pluginHost returns the plugin host, creating it on first use with the
// plugin pins of the loaded configuration.
func (a *app) pluginHost() PluginHost {
	if a.host == nil {
		var pins map[string]string
		level := "info"
		if a.cfg != nil {
			pins = a.cfg.PluginPins
			level = a.cfg.LogLevel
		}
		o := a.hostOptions(pins, level)
		o.Config = a.cfg
		a.host = a.backend.NewHost(o)
	}
	return a.host
}

func (a *app) closeHost() {
	if a.host != nil {
		a.host.Close()
	}
}

// exitCode maps the error of a run to the exit status; usage errors
// (before the verb ran) are Lago errors.
func (a *app) exitCode(err error) int {
	if err != nil && !a.started && !errs.IsUser(err) {
		var ee *errs.ExitError
		if !errors.As(err, &ee) {
			return errs.ExitLago
		}
	}
	return errs.ExitCode(err)
}

// builtinNames returns the names of the built-in verbs, sorted.
func builtinNames() []string {
	out := make([]string, 0, len(verbSpecs))
	for _, s := range verbSpecs {
		out = append(out, s.Name)
	}
	sort.Strings(out)
	return out
}
