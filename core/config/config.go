// Package config loads lago's configuration: built-in defaults, then
// /etc/lago/lago.conf, then the XDG lago/lago.conf files ($XDG_CONFIG_DIRS,
// then $XDG_CONFIG_HOME), then $LAGO_CONFIG, then the environment (LAGO_KEY
// for [lago], LAGO__SECTION__KEY for the others), then command-line flags;
// later layers win. Layers are merged with koanf; this package keeps, for
// every value, where it came from, so errors and `lago generate-config
// --verbose` can name the file and line, the variable or the flag.
//
// Files are INI as the original Lago wrote them. An unknown section or key
// in a file is an error with a suggestion, never silently ignored. The
// environment is not a configuration file: a LAGO__SECTION__KEY naming no
// key is a warning (see Config.Warnings), because CI jobs export variables
// for every program they run, including the original's keys.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/knadh/koanf/v2"

	"github.com/lago-go/lago/core/errs"
)

// SourceKind says which layer a value came from.
type SourceKind int

const (
	FromDefault SourceKind = iota
	FromFile
	FromEnv
	FromFlag
)

// Source is where a value came from.
type Source struct {
	Kind SourceKind
	File string // FromFile
	Line int    // FromFile
	Name string // FromEnv: the variable; FromFlag: the option ("--ssh-user")
}

func (s Source) String() string {
	switch s.Kind {
	case FromFile:
		return fmt.Sprintf("%s:%d", s.File, s.Line)
	case FromEnv:
		return "environment " + s.Name
	case FromFlag:
		return "option " + s.Name
	}
	return "default"
}

// Value is a configuration value and its origin.
type Value struct {
	Value  string
	Source Source
}

// ProviderInstance is a named provider: the provider component (Plugin)
// and the free settings handed to it on Configure.
type ProviderInstance struct {
	Name     string
	Plugin   string
	Settings map[string]string
	Source   Source // where the instance is declared
}

// Config is the effective configuration.
type Config struct {
	// [lago]
	LogLevel            string
	LogDepth            int
	OutFormat           string
	WorkdirPath         string
	PrefixName          string
	PrefixPath          string
	SSHUser             string
	SSHPassword         string
	SSHTries            int
	SSHTimeout          time.Duration
	SSHPersist          time.Duration // how long a VM's ssh mux keeps its connection
	LibvirtURL          string
	LibvirtUser         string
	LibvirtPassword     string
	DefaultVMType       string
	DefaultVMProvider   string
	DefaultRootPassword string
	LeaseDir            string
	IgnoreWarnings      bool

	// [init]
	TemplateRepoPath string
	TemplateRepoName string
	TemplateStore    string
	TemplateRepos    string
	SetCurrent       bool
	SkipBootstrap    bool
	SkipBuild        bool

	// [start]
	StartTimeout     time.Duration
	StartParallelism int
	StartNoWait      bool

	// Providers by instance name; always holds local-libvirt.
	Providers map[string]ProviderInstance
	// PluginPins maps a plugin name to the sha256 (hex) of its binary.
	PluginPins map[string]string

	keys   []Key
	values map[string]Value // by Key.ID(), including [plugins] and [provider X]
	files  []string
	// warnings are this Load's new warnings; see Warnings.
	warnings []string
}

// Options say where Load reads from. The zero value reads nothing but the
// defaults, which is what tests want; the CLI passes DefaultFiles and
// os.Environ().
type Options struct {
	// Files are read in order; a missing file is skipped.
	Files []string
	// Required files must exist (LAGO_CONFIG); read after Files.
	Required []string
	// Environ is the environment as "NAME=value" strings.
	Environ []string
	// Flags maps a key ID ("lago.ssh_user") to the value given on the
	// command line; only options the user actually gave belong here.
	Flags map[string]FlagValue
	// Extra declares more sections, e.g. one per verb holding its flags, so
	// `[destroy] yes = True` works as in the original.
	Extra []Key
	// Sections are more section names accepted even without keys (one per
	// verb: the original's generate-config wrote a section for each).
	Sections []string
	// Lenient skips sections and keys this load does not declare (other
	// than in [lago]) instead of refusing them. A program using the Go API
	// reads the same files as the CLI but not the CLI's verb flags, which
	// declare the per-verb sections such as [destroy] yes = True; values
	// of the keys it does declare are still checked.
	Lenient bool
}

// FlagValue is a value given on the command line.
type FlagValue struct {
	Value string
	Flag  string // as typed, e.g. "--ssh-user"
}

// DefaultFiles returns the configuration files in the order they are
// merged: /etc/lago/lago.conf, each $XDG_CONFIG_DIRS folder (default
// /etc/xdg) from least to most important, then $XDG_CONFIG_HOME (default
// ~/.config). LAGO_CONFIG is not included; see RequiredFiles.
func DefaultFiles(getenv func(string) string) []string {
	files := []string{"/etc/lago/lago.conf"}
	dirs := getenv("XDG_CONFIG_DIRS")
	if dirs == "" {
		dirs = "/etc/xdg"
	}
	list := filepath.SplitList(dirs)
	for i := len(list) - 1; i >= 0; i-- {
		if list[i] != "" {
			files = append(files, filepath.Join(list[i], "lago", "lago.conf"))
		}
	}
	home := getenv("XDG_CONFIG_HOME")
	if home == "" {
		if h := getenv("HOME"); h != "" {
			home = filepath.Join(h, ".config")
		}
	}
	if home != "" {
		files = append(files, filepath.Join(home, "lago", "lago.conf"))
	}
	return files
}

// RequiredFiles returns $LAGO_CONFIG as a one-element list, or nil.
func RequiredFiles(getenv func(string) string) []string {
	if p := getenv("LAGO_CONFIG"); p != "" {
		return []string{p}
	}
	return nil
}

// Patterns are compiled on first use: package initialisation is on the
// start-up path of every lago command, including --help.
var (
	nameRe = lazyRegexp(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
	keyRe  = lazyRegexp(`^[a-z0-9][a-z0-9_-]*$`)
	hexRe  = lazyRegexp(`^[0-9a-f]{64}$`)
)

func lazyRegexp(pattern string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(pattern) })
}

// loader merges the layers.
type loader struct {
	k       *koanf.Koanf
	keys    map[string]Key // by ID
	order   []Key
	section map[string]bool
	origin  map[string]Source
	files   []string
	// warnings are the problems Load accepts but reports.
	warnings []string
	// quiet is set when the parent process gave the warnings (WarnedEnv).
	quiet bool
	// lenient is Options.Lenient.
	lenient bool
}

// WarnedEnv is set to "1" by a lago process in the environment of the
// lago process it execs (the front-end for its engine, which loads the
// same configuration again): the warnings were given already, so that
// Load records none and the user reads each once per command.
const WarnedEnv = "LAGO_CONFIG_WARNED"

// warned records, by variable name (or other subject), the warnings this
// process has already given, so a front-end that loads the configuration
// more than once per command still warns once.
var warned sync.Map

// warn records a warning about subject (such as an environment variable
// name) unless this process already gave one about it.
func (ld *loader) warn(subject, format string, args ...any) {
	if ld.quiet {
		return
	}
	if _, dup := warned.LoadOrStore(subject, true); dup {
		return
	}
	ld.warnings = append(ld.warnings, fmt.Sprintf(format, args...))
}

// mapProvider feeds one layer to koanf.
type mapProvider map[string]any

func (mapProvider) ReadBytes() ([]byte, error) {
	return nil, errors.New("config layer has no byte form")
}
func (m mapProvider) Read() (map[string]any, error) { return m, nil }

// layer is one precedence level being assembled.
type layer struct {
	vals map[string]any // section -> map[string]any
	src  map[string]Source
}

func newLayer() *layer { return &layer{vals: map[string]any{}, src: map[string]Source{}} }

func (l *layer) set(section, key, value string, src Source) {
	m, ok := l.vals[section].(map[string]any)
	if !ok {
		m = map[string]any{}
		l.vals[section] = m
	}
	m[key] = value
	l.src[section+"."+key] = src
}

func (ld *loader) apply(l *layer) error {
	if len(l.vals) == 0 {
		return nil
	}
	if err := ld.k.Load(mapProvider(l.vals), nil); err != nil {
		return fmt.Errorf("merge configuration layer: %w", err)
	}
	for id, s := range l.src {
		ld.origin[id] = s
	}
	return nil
}

// Load reads every layer and returns the effective configuration. Problems
// in the user's files, environment or flags are Lago errors naming where the
// bad value came from.
func Load(opts Options) (*Config, error) {
	ld := &loader{
		k:       koanf.New("."),
		keys:    map[string]Key{},
		section: map[string]bool{},
		origin:  map[string]Source{},
	}
	for _, k := range append(BuiltinKeys(), opts.Extra...) {
		if _, dup := ld.keys[k.ID()]; dup {
			continue
		}
		ld.keys[k.ID()] = k
		ld.order = append(ld.order, k)
		ld.section[k.Section] = true
	}
	for _, s := range opts.Sections {
		ld.section[s] = true
	}
	ld.quiet = slices.Contains(opts.Environ, WarnedEnv+"=1")
	ld.lenient = opts.Lenient

	defaults := newLayer()
	for _, k := range ld.order {
		defaults.set(k.Section, k.Name, k.Default, Source{Kind: FromDefault})
	}
	defaults.set(SectionProvider+" "+DefaultProviderInstance, "plugin", "libvirt", Source{Kind: FromDefault})
	if err := ld.apply(defaults); err != nil {
		return nil, err
	}

	for _, f := range opts.Files {
		if err := ld.loadFile(f, false); err != nil {
			return nil, err
		}
	}
	for _, f := range opts.Required {
		if err := ld.loadFile(f, true); err != nil {
			return nil, err
		}
	}

	env, err := ld.envLayer(opts.Environ)
	if err != nil {
		return nil, err
	}
	if err := ld.apply(env); err != nil {
		return nil, err
	}

	flags := newLayer()
	ids := make([]string, 0, len(opts.Flags))
	for id := range opts.Flags {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		fv := opts.Flags[id]
		k, ok := ld.keys[id]
		if !ok {
			return nil, fmt.Errorf("option %s sets unknown configuration key %q", fv.Flag, id)
		}
		src := Source{Kind: FromFlag, Name: fv.Flag}
		if strings.ContainsAny(fv.Value, "\r\n") {
			return nil, errs.Userf("%s: value must be a single line", src)
		}
		flags.set(k.Section, k.Name, fv.Value, src)
	}
	if err := ld.apply(flags); err != nil {
		return nil, err
	}
	return ld.build()
}

func (ld *loader) loadFile(path string, required bool) error {
	fh, err := os.Open(path)
	if err != nil {
		if !required && errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return errs.User(fmt.Errorf("open configuration file: %w", err))
	}
	defer fh.Close()
	f, err := parseINI(path, fh)
	if err != nil {
		return err
	}
	ld.files = append(ld.files, path)
	for _, s := range f.Sections {
		if msg := ld.checkSection(s.Name); msg != "" && !ld.skips(s.Name, "") {
			return errs.Userf("%s:%d: %s", path, s.Line, msg)
		}
	}
	l := newLayer()
	for _, e := range f.Entries {
		msg := ld.checkKey(e.Section, e.Key)
		if msg != "" && ld.skips(e.Section, e.Key) {
			continue
		}
		if msg != "" {
			return errs.Userf("%s:%d: %s", path, e.Line, msg)
		}
		l.set(e.Section, e.Key, e.Value, Source{Kind: FromFile, File: path, Line: e.Line})
	}
	return ld.apply(l)
}

// skips reports whether a lenient load passes over an undeclared section
// (key "") or key: anything outside [lago] and the provider and plugin
// sections, whose names are checked the same in every load.
func (ld *loader) skips(section, key string) bool {
	if !ld.lenient || section == SectionLago || section == SectionPlugins || strings.HasPrefix(section, SectionProvider) {
		return false
	}
	return !ld.section[section] || key != ""
}

// checkSection returns why a section name is not accepted, or "".
func (ld *loader) checkSection(name string) string {
	if ld.section[name] || name == SectionPlugins {
		return ""
	}
	if kind, inst, ok := strings.Cut(name, " "); ok && kind == SectionProvider {
		if !nameRe().MatchString(inst) {
			return fmt.Sprintf("invalid provider instance name %q: use letters, digits, '-' and '_'", inst)
		}
		return ""
	}
	if name == SectionProvider {
		return "section [provider] needs an instance name: [provider NAME]"
	}
	known := []string{SectionPlugins, SectionProvider + " NAME"}
	for s := range ld.section {
		known = append(known, s)
	}
	sort.Strings(known)
	msg := fmt.Sprintf("unknown section [%s]", name)
	if m := suggest(name, known); m != "" {
		return msg + "; did you mean [" + m + "]?"
	}
	return msg + " (known: " + strings.Join(known, ", ") + ")"
}

// checkKey returns why key is not accepted in section, or "".
func (ld *loader) checkKey(section, key string) string {
	if msg := ld.checkSection(section); msg != "" {
		return msg
	}
	if section == SectionPlugins {
		if !nameRe().MatchString(key) {
			return fmt.Sprintf("invalid plugin name %q in [plugins]", key)
		}
		return ""
	}
	if strings.HasPrefix(section, SectionProvider+" ") {
		if !keyRe().MatchString(key) {
			return fmt.Sprintf("invalid setting name %q in [%s]: use lower-case letters, digits, '-' and '_'", key, section)
		}
		return ""
	}
	if _, ok := ld.keys[section+"."+key]; ok {
		return ""
	}
	var names []string
	for _, k := range ld.order {
		if k.Section == section {
			names = append(names, k.Name)
		}
	}
	msg := fmt.Sprintf("unknown key %q in [%s]", key, section)
	for _, k := range ld.order {
		if k.Name == key {
			return msg + fmt.Sprintf("; it belongs in [%s]", k.Section)
		}
	}
	return msg + didYouMean(key, names)
}

// envLayer turns LAGO_KEY into [lago] key and LAGO__SECTION__KEY into
// [section] key. LAGO_ names that are no [lago] key are left alone: the
// environment also carries LAGO_CONFIG, LAGO_PLUGIN_PATH and the variables
// lago sets for init files. A LAGO__ name that names no key (unknown
// section, key or provider instance, or no SECTION__KEY form) is skipped
// with a warning rather than an error: the environment is inherited by
// every command of a CI job, whose scripts also set the original's keys
// (LAGO__START__WAIT_SUSPEND), and failing every command on it would make
// lago unusable there. A bad value of a key we have stays an error.
func (ld *loader) envLayer(environ []string) (*layer, error) {
	l := newLayer()
	sorted := append([]string(nil), environ...)
	sort.Strings(sorted)
	for _, kv := range sorted {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, "LAGO_") {
			continue
		}
		src := Source{Kind: FromEnv, Name: name}
		var section, key string
		if rest, ok := strings.CutPrefix(name, "LAGO__"); ok {
			s, k, ok := strings.Cut(rest, "__")
			if !ok || s == "" || k == "" {
				ld.warn(name, "environment %s: want LAGO__SECTION__KEY; ignored", name)
				continue
			}
			section, key = strings.ToLower(s), strings.ToLower(k)
			if inst, ok := strings.CutPrefix(section, SectionProvider+"_"); ok {
				pname, found := ld.providerByEnvName(inst)
				if !found {
					ld.warn(name, "environment %s: no [provider NAME] instance is called %q (known: %s); ignored",
						name, inst, strings.Join(ld.providerNames(), ", "))
					continue
				}
				section = SectionProvider + " " + pname
			}
			if section == SectionPlugins {
				// Plugin names use '-', which variable names cannot hold:
				// LAGO__PLUGINS__PROVIDER_LIBVIRT pins provider-libvirt.
				key = strings.ReplaceAll(key, "_", "-")
			}
			if msg := ld.checkKey(section, key); msg != "" {
				ld.warn(name, "environment %s: %s; ignored", name, msg)
				continue
			}
		} else {
			section, key = SectionLago, strings.ToLower(strings.TrimPrefix(name, "LAGO_"))
			if _, known := ld.keys[section+"."+key]; !known {
				continue
			}
		}
		if strings.ContainsAny(value, "\r\n") {
			return nil, errs.Userf("%s: value must be a single line", src)
		}
		l.set(section, key, value, src)
	}
	return l, nil
}

// providerNames lists the provider instances declared so far.
func (ld *loader) providerNames() []string {
	seen := map[string]bool{}
	for _, id := range ld.k.Keys() {
		section, _, _ := strings.Cut(id, ".")
		if name, ok := strings.CutPrefix(section, SectionProvider+" "); ok {
			seen[name] = true
		}
	}
	return sortedKeys(seen)
}

// providerByEnvName finds the instance an environment name stands for:
// LAGO__PROVIDER_LOCAL_LIBVIRT__X names [provider local-libvirt], since
// variable names cannot hold '-'. Only instances declared in a file (or the
// built-in one) can be reached this way.
func (ld *loader) providerByEnvName(env string) (string, bool) {
	fold := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	for _, name := range ld.providerNames() {
		if fold(name) == env {
			return name, true
		}
	}
	return env, false
}

// value returns the merged value of id and its origin.
func (ld *loader) value(id string) Value {
	return Value{Value: ld.k.String(id), Source: ld.origin[id]}
}

func (ld *loader) build() (*Config, error) {
	c := &Config{
		keys:       ld.order,
		values:     map[string]Value{},
		files:      ld.files,
		Providers:  map[string]ProviderInstance{},
		PluginPins: map[string]string{},
	}
	for _, id := range ld.k.Keys() {
		c.values[id] = ld.value(id)
	}
	for _, k := range ld.order {
		if err := checkValue(k, c.values[k.ID()]); err != nil {
			return nil, err
		}
	}
	var err error
	str := func(id string) string { return c.values[id].Value }
	integer := func(id string) int {
		n, e := parseInt(c.values[id].Value)
		err = errors.Join(err, e)
		return n
	}
	boolean := func(id string) bool {
		b, e := ParseBool(c.values[id].Value)
		err = errors.Join(err, e)
		return b
	}
	duration := func(id string) time.Duration {
		d, e := ParseDuration(c.values[id].Value)
		err = errors.Join(err, e)
		return d
	}
	c.LogLevel = str("lago.loglevel")
	c.LogDepth = integer("lago.logdepth")
	c.OutFormat = str("lago.out_format")
	c.WorkdirPath = str("lago.workdir_path")
	c.PrefixName = str("lago.prefix_name")
	c.PrefixPath = str("lago.prefix_path")
	c.SSHUser = str("lago.ssh_user")
	c.SSHPassword = str("lago.ssh_password")
	c.SSHTries = integer("lago.ssh_tries")
	c.SSHTimeout = duration("lago.ssh_timeout")
	c.SSHPersist = duration("lago.ssh_persist")
	c.LibvirtURL = str("lago.libvirt_url")
	c.LibvirtUser = str("lago.libvirt_user")
	c.LibvirtPassword = str("lago.libvirt_password")
	c.DefaultVMType = str("lago.default_vm_type")
	c.DefaultVMProvider = str("lago.default_vm_provider")
	c.DefaultRootPassword = str("lago.default_root_password")
	c.LeaseDir = str("lago.lease_dir")
	c.IgnoreWarnings = boolean("lago.ignore_warnings")
	c.TemplateRepoPath = str("init.template_repo_path")
	c.TemplateRepoName = str("init.template_repo_name")
	c.TemplateStore = str("init.template_store")
	c.TemplateRepos = str("init.template_repos")
	c.SetCurrent = boolean("init.set_current")
	c.SkipBootstrap = boolean("init.skip_bootstrap")
	c.SkipBuild = boolean("init.skip_build")
	c.StartTimeout = duration("start.timeout")
	c.StartParallelism = integer("start.parallelism")
	c.StartNoWait = boolean("start.no_wait")
	if err != nil {
		// checkValue already vetted every built-in key; this is a bug.
		return nil, fmt.Errorf("convert configuration: %w", err)
	}
	if v := c.values["start.wait_suspend"]; v.Source.Kind != FromDefault {
		if d, _ := ParseDuration(v.Value); d > 0 {
			ld.warn("start.wait_suspend", "%s: wait_suspend has no effect in this lago: VMs are started running, not paused and resumed after %s", v.Source, d)
		}
	}
	if c.StartParallelism < 0 {
		return nil, errs.Userf("%s: start parallelism must be 0 (all at once) or more, got %d", c.values["start.parallelism"].Source, c.StartParallelism)
	}

	ids := make([]string, 0, len(c.values))
	for id := range c.values {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		v := c.values[id]
		section, key, _ := strings.Cut(id, ".")
		switch {
		case section == SectionPlugins:
			sum := strings.ToLower(v.Value)
			if !hexRe().MatchString(sum) {
				return nil, errs.Userf("%s: pin of plugin %q must be a sha256 in hex (64 characters), got %q", v.Source, key, v.Value)
			}
			c.PluginPins[key] = sum
		case strings.HasPrefix(section, SectionProvider+" "):
			name := strings.TrimPrefix(section, SectionProvider+" ")
			p, ok := c.Providers[name]
			if !ok {
				p = ProviderInstance{Name: name, Settings: map[string]string{}, Source: v.Source}
			}
			if key == "plugin" {
				p.Plugin = v.Value
				p.Source = v.Source
			} else {
				p.Settings[key] = v.Value
			}
			c.Providers[name] = p
		}
	}
	local := c.Providers[DefaultProviderInstance]
	for _, k := range []string{"libvirt_url", "libvirt_user", "libvirt_password"} {
		if _, set := local.Settings[k]; !set {
			local.Settings[k] = c.values["lago."+k].Value
		}
	}
	c.Providers[DefaultProviderInstance] = local
	for _, name := range sortedKeys(c.Providers) {
		if p := c.Providers[name]; p.Plugin == "" {
			return nil, errs.Userf("%s: [provider %s] needs `plugin = <provider component>`, e.g. plugin = libvirt", p.Source, name)
		}
	}
	if _, ok := c.Providers[c.DefaultVMProvider]; !ok {
		return nil, errs.Userf("%s: default_vm_provider %q names no provider instance (known: %s)",
			c.values["lago.default_vm_provider"].Source, c.DefaultVMProvider, strings.Join(sortedKeys(c.Providers), ", "))
	}
	c.warnings = ld.warnings
	return c, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkValue validates v against the type and choices of k.
func checkValue(k Key, v Value) error {
	var err error
	switch k.Type {
	case TypeInt:
		_, err = parseInt(v.Value)
	case TypeBool:
		_, err = ParseBool(v.Value)
	case TypeDuration:
		_, err = ParseDuration(v.Value)
	case TypeSize:
		_, err = ParseSize(v.Value)
	}
	if err == nil && len(k.Choices) > 0 {
		ok := false
		for _, c := range k.Choices {
			ok = ok || c == v.Value
		}
		if !ok {
			err = fmt.Errorf("want one of %s%s", strings.Join(k.Choices, ", "), didYouMean(v.Value, k.Choices))
		}
	}
	if err != nil {
		return errs.Userf("%s: invalid value %q for %s in [%s]: %w", v.Source, v.Value, k.Name, k.Section, err)
	}
	return nil
}

func parseInt(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("want a whole number")
	}
	return n, nil
}

// ParseBool accepts what Python's configparser accepts: 1/0, yes/no,
// true/false, on/off, in any case.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "yes", "true", "on":
		return true, nil
	case "0", "no", "false", "off":
		return false, nil
	}
	return false, fmt.Errorf("want true or false")
}

// ParseDuration accepts a Go duration ("90s", "10m") or a bare number of
// seconds, which is what the original's ssh_timeout holds.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("want a duration of 0 or more")
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want seconds or a duration like 30s or 10m")
	}
	return d, nil
}

// Get returns the value of key in section, with its origin.
func (c *Config) Get(section, key string) (Value, bool) {
	v, ok := c.values[section+"."+key]
	return v, ok
}

// String returns the value of key in section ("" when unset).
func (c *Config) String(section, key string) string { return c.values[section+"."+key].Value }

// Bool returns the value of a boolean key; an unparsable value is false
// (Load has already rejected those for declared keys).
func (c *Config) Bool(section, key string) bool {
	b, _ := ParseBool(c.values[section+"."+key].Value)
	return b
}

// Int returns the value of an integer key (0 when unset or unparsable).
func (c *Config) Int(section, key string) int {
	n, _ := parseInt(c.values[section+"."+key].Value)
	return n
}

// Provider returns the provider instance name; an unknown one is a Lago
// error listing the known instances.
func (c *Config) Provider(name string) (ProviderInstance, error) {
	p, ok := c.Providers[name]
	if !ok {
		names := sortedKeys(c.Providers)
		return ProviderInstance{}, errs.Userf("unknown provider instance %q (known: %s)%s", name, strings.Join(names, ", "), didYouMean(name, names))
	}
	return p, nil
}

// Warnings returns what Load accepted but the user should hear about:
// environment variables naming no key (ignored) and keys kept only for
// compatibility (ignored). Each is returned once per process, by the
// first Load that meets it; the caller prints them.
func (c *Config) Warnings() []string { return append([]string(nil), c.warnings...) }

// Files returns the configuration files that were read, in order.
func (c *Config) Files() []string { return append([]string(nil), c.files...) }
