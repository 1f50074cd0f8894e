package config

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/lago-go/lago/core/version"
)

// PluginSetting is one setting a plugin's component takes, as the
// config schema of its describe output documents it.
type PluginSetting struct {
	Name     string
	Type     string
	Default  string
	Help     string
	Required bool
}

// INIOptions tune WriteINIWith.
type INIOptions struct {
	// Verbose adds a comment saying where each value came from.
	Verbose bool
	// ProviderSettings maps a provider component name ("libvirt") to the
	// settings its plugin describes. When not nil, every [provider NAME]
	// section lists the settings of its component with their help and
	// default, commented out unless set (so that Load reads the file back
	// to the same configuration), and says so when no plugin describes its
	// component. Nil lists only the settings that are set.
	ProviderSettings map[string][]PluginSetting
}

// WriteINI writes the effective configuration as an INI file that Load reads
// back to the same configuration: one comment per key saying what it is
// and, when verbose, another saying where the value came from.
func (c *Config) WriteINI(w io.Writer, verbose bool) error {
	return c.WriteINIWith(w, INIOptions{Verbose: verbose})
}

// derivedFromLago are the settings of the built-in provider instance that
// default to the [lago] key of the same name.
var derivedFromLago = []string{"libvirt_url", "libvirt_user", "libvirt_password"}

// WriteINIWith is WriteINI with options: with o.ProviderSettings it also
// documents the plugins' settings of each provider instance.
func (c *Config) WriteINIWith(w io.Writer, o INIOptions) error {
	verbose := o.Verbose
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# lago configuration, written by `lago generate-config` (%s).\n", version.String())
	fmt.Fprintf(bw, "# Precedence, lowest first: defaults, /etc/lago/lago.conf, XDG lago/lago.conf,\n")
	fmt.Fprintf(bw, "# $LAGO_CONFIG, environment (LAGO_KEY, LAGO__SECTION__KEY), command line.\n")
	if verbose {
		if len(c.files) == 0 {
			fmt.Fprintf(bw, "# No configuration file was read.\n")
		}
		for _, f := range c.files {
			fmt.Fprintf(bw, "# Read %s\n", f)
		}
	}
	from := func(v Value) {
		if verbose {
			fmt.Fprintf(bw, "# from: %s\n", v.Source)
		}
	}
	section := ""
	for _, k := range c.keys {
		v := c.values[k.ID()]
		if k.Hidden && v.Source.Kind == FromDefault {
			continue
		}
		if k.Section != section {
			section = k.Section
			fmt.Fprintf(bw, "\n[%s]\n", section)
		}
		help := k.Help
		if len(k.Choices) > 0 {
			help += " (one of " + strings.Join(k.Choices, ", ") + ")"
		}
		fmt.Fprintf(bw, "# %s\n", help)
		from(v)
		writeKV(bw, k.Name, v.Value)
	}

	fmt.Fprintf(bw, "\n[%s]\n# sha256 (hex) each plugin binary must have, by plugin name: provider-libvirt = <sha256>\n", SectionPlugins)
	for _, name := range sortedKeys(c.PluginPins) {
		from(c.values[SectionPlugins+"."+name])
		writeKV(bw, name, c.PluginPins[name])
	}

	names := sortedKeys(c.Providers)
	// local-libvirt first: it is the built-in instance.
	ordered := []string{DefaultProviderInstance}
	for _, n := range names {
		if n != DefaultProviderInstance {
			ordered = append(ordered, n)
		}
	}
	for _, name := range ordered {
		p := c.Providers[name]
		sec := SectionProvider + " " + name
		fmt.Fprintf(bw, "\n[%s]\n", sec)
		if name == DefaultProviderInstance {
			fmt.Fprintf(bw, "# built-in provider instance; libvirt_url, libvirt_user and libvirt_password\n# default to the [lago] values unless set here\n")
		}
		fmt.Fprintf(bw, "# provider component serving this instance; the other keys are its settings\n")
		from(c.values[sec+".plugin"])
		writeKV(bw, "plugin", p.Plugin)
		described := map[string]bool{}
		if o.ProviderSettings != nil {
			fields, ok := o.ProviderSettings[p.Plugin]
			if !ok {
				fmt.Fprintf(bw, "# no plugin found describes provider component %q, so its settings are not\n# listed here; `lago plugins` lists the plugins found\n", p.Plugin)
			}
			for _, f := range fields {
				described[f.Name] = true
				c.writeSetting(bw, sec, name, p, f, from)
			}
		}
		for _, key := range sortedKeys(p.Settings) {
			v, explicit := c.values[sec+"."+key]
			if !explicit || described[key] {
				continue // derived from [lago], or written above
			}
			if o.ProviderSettings != nil {
				if _, ok := o.ProviderSettings[p.Plugin]; ok {
					fmt.Fprintf(bw, "# not a setting provider component %q describes\n", p.Plugin)
				}
			}
			from(v)
			writeKV(bw, key, v.Value)
		}
	}
	return bw.Flush()
}

// writeSetting writes one described setting of provider instance name
// (section sec): its help, then the key set as configured or, when it is
// not set, commented out with the value it takes (the plugin's default,
// or the [lago] key it follows).
func (c *Config) writeSetting(w io.Writer, sec, name string, p ProviderInstance, f PluginSetting, from func(Value)) {
	help := strings.TrimSpace(f.Help)
	var notes []string
	if f.Type != "" && f.Type != "string" {
		notes = append(notes, f.Type)
	}
	if f.Required {
		notes = append(notes, "required")
	}
	v, explicit := c.values[sec+"."+f.Name]
	shown := f.Default
	switch {
	case name == DefaultProviderInstance && contains(derivedFromLago, f.Name):
		notes = append(notes, "default: [lago] "+f.Name)
		shown = p.Settings[f.Name]
	case f.Default != "":
		notes = append(notes, "default: "+f.Default)
	}
	if len(notes) > 0 {
		help += " (" + strings.Join(notes, "; ") + ")"
	}
	writeComment(w, help)
	if explicit {
		from(v)
		writeKV(w, f.Name, v.Value)
		return
	}
	io.WriteString(w, "# ")
	writeKV(w, f.Name, shown)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// commentWidth is where writeComment wraps a plugin's help text, which
// may be a long paragraph.
const commentWidth = 78

// writeComment writes text as "# " lines wrapped at commentWidth
// columns (a word longer than a line stays whole).
func writeComment(w io.Writer, text string) {
	line := "#"
	for _, word := range strings.Fields(text) {
		if len(line) > 1 && len(line)+1+len(word) > commentWidth {
			fmt.Fprintln(w, line)
			line = "#"
		}
		line += " " + word
	}
	if len(line) > 1 {
		fmt.Fprintln(w, line)
	}
}

func writeKV(w io.Writer, key, value string) {
	if value == "" {
		fmt.Fprintf(w, "%s =\n", key)
		return
	}
	fmt.Fprintf(w, "%s = %s\n", key, value)
}
