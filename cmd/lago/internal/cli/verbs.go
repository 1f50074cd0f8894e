package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lago-go/lago/core/config"
	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/output"
)

// Handler runs one verb. It returns an errs Lago error for problems of the
// user's input or environment (exit 2), errs.Exit(code) to pass an exit
// status through, or any other error for failures (exit 1). Cleanups it
// defers run when ctx is cancelled by SIGINT, SIGTERM or SIGHUP.
type Handler func(ctx context.Context, inv *Invocation) error

// Invocation is everything a verb handler receives.
type Invocation struct {
	// Verb is the verb's name as registered ("copy-to-vm").
	Verb string
	// Args are the positional arguments, with trailing list values
	// (`ansible_hosts -k a b`) already folded into the list option.
	Args []string
	// Flags are the verb's own parsed flags; prefer the Opt accessors,
	// which also honour the verb's config section.
	Flags *pflag.FlagSet
	// Config is the effective configuration (defaults < files < env <
	// flags); the verb's options live in its section ([init], [start],
	// [destroy], ...).
	Config *config.Config
	app    *app
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// section is the config section of the verb's options.
func (inv *Invocation) section() string { return inv.Verb }

func optKey(name string) string { return strings.ReplaceAll(name, "-", "_") }

// Opt returns the effective value of the verb option name (its flag name,
// "dst-dir"): the flag if given, else the verb's config section, else the
// default.
func (inv *Invocation) Opt(name string) string {
	return inv.Config.String(inv.section(), optKey(name))
}

// OptBool is Opt for boolean options.
func (inv *Invocation) OptBool(name string) bool { return inv.Config.Bool(inv.section(), optKey(name)) }

// OptInt is Opt for integer options.
func (inv *Invocation) OptInt(name string) int { return inv.Config.Int(inv.section(), optKey(name)) }

// OptList is Opt for list options: comma or blank separated words.
func (inv *Invocation) OptList(name string) []string {
	return splitList(inv.Opt(name))
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

// Host returns the plugin host, creating it on first use.
func (inv *Invocation) Host() PluginHost { return inv.app.pluginHost() }

// Render prints doc to Stdout in the --out-format format: a built-in one
// or one served by an output plugin.
func (inv *Invocation) Render(ctx context.Context, doc any) error {
	if _, builtin := output.Builtin(inv.Config.OutFormat); !builtin && inv.app.backend.Forward != nil {
		return inv.app.forward(false)
	}
	f, err := output.Lookup(ctx, inv.Config.OutFormat, outputPlugins{inv.app})
	if err != nil {
		return err
	}
	b, err := f.Format(ctx, doc)
	if err != nil {
		return fmt.Errorf("render %s output: %w", inv.Config.OutFormat, err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	_, err = inv.Stdout.Write(b)
	return err
}

// NotImplemented is the handler of verbs whose engine is not wired yet.
func NotImplemented(_ context.Context, inv *Invocation) error {
	return errs.Userf("lago %s: not implemented yet", inv.Verb)
}

// verbSpec declares a built-in verb's command line.
type verbSpec struct {
	Name  string
	Use   string // after the verb name
	Short string
	Long  string
	Args  cobra.PositionalArgs
	// Flags declares the verb's own flags.
	Flags func(fs *pflag.FlagSet)
	// ConfigKeys, when set, names the built-in config section whose keys
	// with a Flag become this verb's flags ([init], [start]).
	ConfigKeys string
	// NoInterspersed stops flag parsing at the first positional, so
	// `lago shell vm0 ls -l` passes -l to the remote command.
	NoInterspersed bool
	// ListArgs names a list flag that also takes the positionals, as the
	// original's nargs='*' options did (`ansible_hosts -k vm-type groups`).
	ListArgs string
	// Required names options that must be set by flag or config.
	Required []string
	// Meta verbs are about lago itself; their flags are not configurable.
	// The command line runs them itself (generate-config, plugins), in
	// the front-end too.
	Meta bool
	// Provider verbs talk to VM providers (ForwardRequest.Provider): the
	// front-end starts the default provider instance's plugin before it
	// execs the engine, so its start-up overlaps the engine's (package
	// prestart).
	Provider bool
	// Subverbs are verbs below this one (`plugins install`); their
	// handlers are keyed "<verb> <subverb>", as is Invocation.Verb.
	Subverbs []verbSpec
}

var verbSpecs = []verbSpec{
	{Name: "init", Provider: true, Use: "[WORKDIR] [INITFILE]", Short: "Create a workdir and prefix from an init file",
		Long: "Create the workdir and its prefix and populate it from the init file: networks, VMs, disks.\n" +
			"With one argument it is the init file. Defaults: WORKDIR $PWD/.lago, INITFILE $PWD/LagoInitFile.",
		Args: cobra.MaximumNArgs(2), ConfigKeys: config.SectionInit},
	{Name: "start", Provider: true, Use: "[VM...]", Short: "Start networks, then VMs",
		Long: "Start the environment's networks, then its VMs (all, or the ones named), and wait\n" +
			"until every started VM answers ssh, within --timeout.",
		Args: cobra.ArbitraryArgs, ConfigKeys: config.SectionStart},
	{Name: "stop", Provider: true, Use: "[VM...]", Short: "Power off VMs, then networks no running VM uses",
		Args: cobra.ArbitraryArgs},
	{Name: "shutdown", Provider: true, Use: "[VM...]", Short: "Shut down or reboot VMs gracefully",
		Long: "Shut the VMs down gracefully (ACPI, else poweroff over ssh), or reboot them with -r.\n" +
			"Waits up to 5 minutes.",
		Args: cobra.ArbitraryArgs,
		Flags: func(fs *pflag.FlagSet) {
			fs.BoolP("reboot", "r", false, "reboot instead of shutting down")
		}},
	{Name: "destroy", Provider: true, Short: "Stop the environment and remove its prefix",
		Long: "Stop everything, release the subnet leases and remove the prefix. A symlinked\n" +
			"workdir loses only the link. Asks for confirmation unless --yes.",
		Args: cobra.NoArgs,
		Flags: func(fs *pflag.FlagSet) {
			fs.BoolP("yes", "y", false, "do not ask for confirmation")
			fs.Bool("all-prefixes", false, "destroy every prefix of the workdir")
		}},
	{Name: "cleanup", Provider: true, Short: "Stop everything and mark the prefix uninitialized",
		Long: "Stop every VM and network and remove the prefix's initialized marker (the uuid stays).\n" +
			"With --orphans, remove provider objects whose owner prefix no longer exists.",
		Args: cobra.NoArgs,
		Flags: func(fs *pflag.FlagSet) {
			fs.Bool("orphans", false, "remove provider objects (VMs, networks, volumes) whose owner prefix is gone")
		}},
	{Name: "status", Provider: true, Short: "Show the environment", Args: cobra.NoArgs,
		Long: "Print the prefix's networks and VMs with their state, in --out-format."},
	{Name: "list", Use: "[WORKDIR]", Short: "List the prefixes of a workdir", Args: cobra.MaximumNArgs(1)},
	{Name: "set-current", Use: "NAME", Short: "Make another prefix the current one", Args: cobra.ExactArgs(1)},
	{Name: "shell", Use: "VM [CMD...]", Short: "Open a shell on a VM or run a command in it",
		Long: "Open an interactive shell on VM, or run CMD in it and exit with its exit code.\n" +
			"The words of CMD are joined with spaces into one command line for the VM's shell, as\n" +
			"with ssh: lago shell vm0 'grep ^ID= /etc/os-release | cut -d= -f2' runs the pipe in the\n" +
			"VM, and quotes meant for the VM's shell must survive the local one.\n" +
			"A single CMD that is a local file is run as a script. VM may be a unique suffix of a name.\n" +
			"Options after VM belong to CMD.",
		Args: cobra.MinimumNArgs(1), NoInterspersed: true},
	{Name: "console", Provider: true, Use: "VM", Short: "Attach to a VM's serial console", Args: cobra.ExactArgs(1)},
	{Name: "copy-to-vm", Use: "VM LOCAL REMOTE", Short: "Copy a local file or folder into a VM",
		Long: "Copy a local file or folder into a VM: into REMOTE when it is a folder, else as REMOTE,\n" +
			"whose parent must exist (as cp -r does). Modes and times are kept.",
		Args: cobra.ExactArgs(3)},
	{Name: "copy-from-vm", Use: "VM REMOTE LOCAL", Short: "Copy a file or folder out of a VM",
		Long: "Copy a file or folder out of a VM: into LOCAL when it is a folder, else as LOCAL, whose\n" +
			"parent must exist (as cp -r does). Modes and times are kept; LOCAL appears only once the\n" +
			"copy is complete.",
		Args: cobra.ExactArgs(3)},
	{Name: "collect", Short: "Fetch each VM's artifacts into a folder",
		Long: "Fetch each VM's artifacts paths into DIR/<vm>/, '/' in file names replaced by '_'.\n" +
			"An existing DIR is first renamed with a timestamp suffix. A missing path is skipped\n" +
			"unless --no-skip. VMs must be running.",
		Args: cobra.NoArgs, Required: []string{"output"},
		Flags: func(fs *pflag.FlagSet) {
			fs.StringP("output", "o", "", "folder to collect the artifacts into (required)")
			fs.Bool("no-skip", false, "fail when an artifact path is missing")
		}},
	{Name: "service", Use: "VM NAME [status|start|stop]", Short: "Show, start or stop a service in a VM",
		Long: "Show (status, the default), start or stop service NAME in VM through its service manager\n" +
			"(the VM's service_provider, else detected once and recorded). status prints the state\n" +
			"and exits as the LSB says: 0 active, 3 inactive, 4 no such service.",
		Args: cobra.RangeArgs(2, 3)},
	{Name: "deploy", Short: "Run each VM's deploy scripts",
		Long: "Run each VM's deploy scripts (metadata.deploy-scripts) over ssh with bash -s, VMs in parallel.",
		Args: cobra.NoArgs},
	{Name: "snapshot", Provider: true, Use: "[NAME]", Short: "Snapshot every VM, or list snapshots",
		Args: cobra.MaximumNArgs(1),
		Flags: func(fs *pflag.FlagSet) {
			fs.BoolP("list", "l", false, "list the snapshots instead of taking one")
		}},
	{Name: "revert", Provider: true, Use: "NAME", Short: "Revert every VM to a snapshot", Args: cobra.ExactArgs(1)},
	{Name: "export", Short: "Export the VMs' disks and an init file",
		Long: "Export the disks of the (stopped) VMs and an init file that uses them.\n" +
			"Words after --vm-names are more VM names.",
		Args: cobra.ArbitraryArgs, ListArgs: "vm-names",
		Flags: func(fs *pflag.FlagSet) {
			fs.StringSliceP("vm-names", "n", nil, "VMs to export (default all)")
			fs.BoolP("standalone", "s", false, "export standalone disks instead of layered ones")
			fs.BoolP("compress", "c", false, "compress the exported disks")
			fs.StringP("dst-dir", "d", ".", "folder to export into")
			fs.String("init-file-name", "LagoInitFile", "name of the exported init file")
			fs.Bool("collect-only", false, "only write the init file")
			fs.Bool("without-threads", false, "export one disk at a time")
		}},
	{Name: "ansible_hosts", Short: "Print an ansible inventory of the VMs",
		Long: "Print an INI inventory of the VMs grouped by the given keys. Words after --keys are more keys.",
		Args: cobra.ArbitraryArgs, ListArgs: "keys",
		Flags: func(fs *pflag.FlagSet) {
			fs.StringSliceP("keys", "k", []string{"vm-type", "groups", "vm-provider"}, "keys to group the VMs by")
		}},
	{Name: "doctor", Use: "[WORKDIR]", Short: "Check this host's settings for lago as this user",
		Long: "Check what lago needs of the host as this user, on a host shared with others: the libvirt\n" +
			"socket lets the user in, qemu (its own user) can enter the workdir and the template store,\n" +
			"the lease and template stores are writable and shareable (group-writable, setgid), a host\n" +
			"kernel libguestfs can read. Prints one OK or FAIL line per check, each FAIL with its fix,\n" +
			"and exits 2 when any fails. WORKDIR defaults to ./.lago. See docs/SHARED-HOST.md.",
		Args: cobra.MaximumNArgs(1)},
	{Name: "generate-config", Short: "Print the effective configuration as INI",
		Long: "Print the effective configuration as an INI file with one comment per key;\n" +
			"each [provider NAME] section also lists the settings its plugin describes\n" +
			"(commented out unless set: domain_type, bridge_stp, ...).\n" +
			"`lago generate-config > ~/.config/lago/lago.conf` makes a starting point.",
		Args: cobra.NoArgs, Meta: true,
		Flags: func(fs *pflag.FlagSet) {
			fs.Bool("verbose", false, "also say where each value comes from")
		}},
	{Name: "plugins", Short: "List plugins and their components",
		Long: "List every discovered plugin binary and its components (name, kind, version, path,\n" +
			"pinned sha256); shadowed and refused ones are marked with the reason.\n" +
			"`lago plugins install FILE` and `lago plugins remove NAME` manage the user plugin folder.",
		Args: cobra.NoArgs, Meta: true, Subverbs: pluginsSubverbs},
}

// isBuiltin reports whether verb is a built-in verb.
func isBuiltin(verb string) bool {
	for _, s := range verbSpecs {
		if s.Name == verb {
			return true
		}
	}
	return false
}
