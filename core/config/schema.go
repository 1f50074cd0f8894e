package config

// Type is the kind of value a key holds; it decides parsing and how the CLI
// declares the matching flag.
type Type int

const (
	TypeString Type = iota
	TypeInt
	TypeBool
	// TypeDuration accepts Go durations ("90s", "10m") or bare seconds.
	TypeDuration
	// TypeList is a comma or blank separated list of words.
	TypeList
	// TypeSize is a byte count, bare or with K, M, G or T (see ParseSize).
	TypeSize
)

// Key defines one configuration key.
type Key struct {
	Section string
	Name    string
	Type    Type
	Default string
	Help    string
	// Choices, when set, are the only accepted values.
	Choices []string
	// Flag is the long command-line option setting this key ("" for none);
	// Short its one-letter form. For [lago] keys the flag is global.
	Flag  string
	Short string
	// Hidden keys are accepted but left out of help (deprecated ones).
	Hidden bool
	// Deprecated, when set, says what to use instead; the CLI warns when
	// the flag is used.
	Deprecated string
}

// ID is "section.key", the koanf path of the key.
func (k Key) ID() string { return k.Section + "." + k.Name }

// Section names with a fixed meaning.
const (
	SectionLago     = "lago"
	SectionInit     = "init"
	SectionStart    = "start"
	SectionPlugins  = "plugins"
	SectionProvider = "provider" // "[provider NAME]"
)

// DefaultProviderInstance is the built-in provider instance: the libvirt
// plugin on the [lago] libvirt_url.
const DefaultProviderInstance = "local-libvirt"

// builtinKeys are the keys of [lago], [init] and [start], with the
// original Lago's defaults. Keys are listed in generate-config order.
var builtinKeys = []Key{
	{Section: SectionLago, Name: "loglevel", Default: "info", Flag: "loglevel", Short: "l",
		Choices: []string{"debug", "info", "warning", "error"}, Help: "log level to use"},
	{Section: SectionLago, Name: "logdepth", Type: TypeInt, Default: "3", Flag: "logdepth",
		Help: "depth of the nested log task tree to show"},
	{Section: SectionLago, Name: "out_format", Default: "default", Flag: "out-format", Short: "f",
		Help: "output format: default, json, yaml, flat or a format from an output plugin"},
	{Section: SectionLago, Name: "workdir_path", Flag: "workdir-path", Short: "w",
		Help: "workdir to use; empty means search the current folder and its parents for .lago"},
	{Section: SectionLago, Name: "prefix_name", Default: "current", Flag: "prefix-name", Short: "P",
		Help: "prefix of the workdir to use"},
	{Section: SectionLago, Name: "prefix_path", Flag: "prefix-path", Short: "p", Hidden: true,
		Deprecated: "use --workdir-path and --prefix-name",
		Help:       "path of the prefix to use (deprecated: use workdir_path and prefix_name)"},
	{Section: SectionLago, Name: "ssh_user", Default: "root", Flag: "ssh-user",
		Help: "user to log into the VMs with ssh"},
	{Section: SectionLago, Name: "ssh_password", Default: "123456", Flag: "ssh-password",
		Help: "ssh password, used until the prefix key is installed"},
	{Section: SectionLago, Name: "ssh_tries", Type: TypeInt, Default: "100", Flag: "ssh-tries",
		Help: "how many times to try connecting to a VM with ssh"},
	{Section: SectionLago, Name: "ssh_timeout", Type: TypeDuration, Default: "10", Flag: "ssh-timeout",
		Help: "timeout of one ssh connection attempt (seconds, or a duration like 30s)"},
	{Section: SectionLago, Name: "ssh_persist", Type: TypeDuration, Default: "60",
		Help: "keep each VM's ssh connection open this long after a command, for the next ones (0 turns it off)"},
	{Section: SectionLago, Name: "libvirt_url", Default: "qemu:///system", Flag: "libvirt-url",
		Help: "libvirt URI of the built-in local-libvirt provider"},
	{Section: SectionLago, Name: "libvirt_user", Flag: "libvirt-user",
		Help: "libvirt user name of the built-in local-libvirt provider"},
	{Section: SectionLago, Name: "libvirt_password", Flag: "libvirt-password",
		Help: "libvirt password of the built-in local-libvirt provider"},
	{Section: SectionLago, Name: "default_vm_type", Default: "default", Flag: "default-vm-type",
		Help: "vm type of domains whose init file sets none"},
	{Section: SectionLago, Name: "default_vm_provider", Default: DefaultProviderInstance, Flag: "default-vm-provider",
		Help: "provider instance of domains whose init file sets none ([provider NAME] sections)"},
	{Section: SectionLago, Name: "default_root_password", Flag: "default-root-password",
		Help: "root password of VMs whose spec sets none"},
	{Section: SectionLago, Name: "lease_dir", Default: "/var/lib/lago/subnets", Flag: "lease-dir",
		Help: "folder of the subnet lease files shared by every prefix"},
	{Section: SectionLago, Name: "ignore_warnings", Type: TypeBool, Default: "False", Flag: "ignore-warnings",
		Help: "do not stop on warnings"},

	{Section: SectionInit, Name: "template_repo_path", Default: "http://templates.ovirt.org/repo/repo.metadata",
		Flag: "template-repo-path", Help: "path or URL of the template repository metadata"},
	{Section: SectionInit, Name: "template_repo_name", Flag: "template-repo-name",
		Help: "name of an already known template repository to use"},
	{Section: SectionInit, Name: "template_store", Default: "/var/lib/lago/store", Flag: "template-store",
		Help: "folder of the downloaded template images"},
	{Section: SectionInit, Name: "template_repos", Default: "/var/lib/lago/repos", Flag: "template-repos",
		Help: "folder of the template repository metadata files"},
	// A template server is not trusted to answer or to stop: these bound
	// what it can make init wait for and write into the store.
	{Section: SectionInit, Name: "template_connect_timeout", Type: TypeDuration, Default: "30s",
		Help: "time limit for connecting to a template server (TCP connect and TLS handshake)"},
	{Section: SectionInit, Name: "template_response_timeout", Type: TypeDuration, Default: "1m",
		Help: "time limit for a template server to start answering a request"},
	{Section: SectionInit, Name: "template_stall_timeout", Type: TypeDuration, Default: "2m",
		Help: "fail a template download that receives nothing for this long (a slow but steady one is never cut)"},
	{Section: SectionInit, Name: "template_max_image_size", Type: TypeSize, Default: "64G",
		Help: "largest template image accepted, as served and decompressed: bytes, or with K, M, G or T (powers of 1024); 0 means no limit"},
	{Section: SectionInit, Name: "set_current", Type: TypeBool, Default: "False", Flag: "set-current",
		Help: "make the new prefix the current one"},
	{Section: SectionInit, Name: "skip_bootstrap", Type: TypeBool, Default: "False", Flag: "skip-bootstrap",
		Help: "do not bootstrap the VM disks (hostname, root password, ssh key)"},
	{Section: SectionInit, Name: "skip_build", Type: TypeBool, Default: "False", Flag: "skip-build",
		Help: "do not run the disks' build steps"},
	// libguestfs runs bootstrap and the virt-customize builder in a small
	// appliance VM; these choose how. Set here, they win over the
	// LIBGUESTFS_* variables; left at their defaults, those variables win.
	{Section: SectionInit, Name: "bootstrap_tool", Default: "guestfish", Choices: []string{"guestfish", "virt-sysprep"},
		Help: "how to bootstrap the disks: guestfish prepares every disk of an init in one libguestfs appliance; virt-sysprep runs the original's virt-sysprep once per disk"},
	{Section: SectionInit, Name: "libguestfs_backend", Default: "direct",
		Help: "libguestfs backend (LIBGUESTFS_BACKEND): direct runs qemu itself, libvirt goes through libvirtd"},
	{Section: SectionInit, Name: "libguestfs_force_tcg", Default: "auto", Choices: []string{"auto", "yes", "no"},
		Help: "run the libguestfs appliance under TCG (software emulation, LIBGUESTFS_BACKEND_SETTINGS=force_tcg); auto does when /dev/kvm cannot create a VM"},
	{Section: SectionInit, Name: "libguestfs_memsize", Type: TypeInt, Default: "0",
		Help: "memory of the libguestfs appliance in MiB (LIBGUESTFS_MEMSIZE); 0 keeps libguestfs' default"},

	{Section: SectionStart, Name: "timeout", Type: TypeDuration, Default: "10m", Flag: "timeout",
		Help: "overall time limit for starting the environment and waiting for ssh"},
	{Section: SectionStart, Name: "parallelism", Type: TypeInt, Default: "0", Flag: "parallelism",
		Help: "how many VMs to start at once; 0 means all"},
	{Section: SectionStart, Name: "no_wait", Type: TypeBool, Default: "False", Flag: "no-wait",
		Help: "do not wait for the VMs to answer ssh"},
	// The original's CI users set LAGO__START__WAIT_SUSPEND (start each
	// VM paused, wait that long, resume it). The provider contract has no
	// paused start, so it is accepted and ignored, with a notice.
	{Section: SectionStart, Name: "wait_suspend", Type: TypeDuration, Default: "0", Hidden: true,
		Help: "accepted for compatibility and ignored: the original started each VM paused, waited this long (seconds) and resumed it"},
}

// BuiltinKeys returns the keys of [lago], [init] and [start]. The CLI
// declares its global flags from the [lago] keys that have a Flag.
func BuiltinKeys() []Key { return append([]Key(nil), builtinKeys...) }

// SectionKeys returns the built-in keys of one section.
func SectionKeys(section string) []Key {
	var out []Key
	for _, k := range builtinKeys {
		if k.Section == section {
			out = append(out, k)
		}
	}
	return out
}
