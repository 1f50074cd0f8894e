package config

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/lago-go/lago/core/version"
)

// WriteINI writes the effective configuration as an INI file that Load reads
// back to the same configuration: one comment per key saying what it is
// and, when verbose, another saying where the value came from.
func (c *Config) WriteINI(w io.Writer, verbose bool) error {
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
		for _, key := range sortedKeys(p.Settings) {
			v, explicit := c.values[sec+"."+key]
			if !explicit {
				continue // derived from [lago]
			}
			from(v)
			writeKV(bw, key, v.Value)
		}
	}
	return bw.Flush()
}

func writeKV(w io.Writer, key, value string) {
	if value == "" {
		fmt.Fprintf(w, "%s =\n", key)
		return
	}
	fmt.Fprintf(w, "%s = %s\n", key, value)
}
