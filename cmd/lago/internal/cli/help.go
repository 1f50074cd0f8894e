package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// writeUsage prints cmd's usage in cobra's default layout. It replaces
// cobra's text/template rendering, which was half the CPU time of
// `lago --help`.
func writeUsage(w io.Writer, cmd *cobra.Command) {
	var b strings.Builder
	b.WriteString("Usage:\n")
	if cmd.Runnable() {
		use := strings.TrimSuffix(cmd.UseLine(), " [flags]")
		if cmd.HasAvailableFlags() && cmd.HasParent() {
			use += " [options]"
		}
		b.WriteString("  " + use + "\n")
	}
	if cmd.HasAvailableSubCommands() && cmd.HasParent() {
		b.WriteString("  " + cmd.CommandPath() + " VERB\n")
	}
	if cmd.HasAvailableSubCommands() {
		subs := cmd.Commands()
		pad := 11
		for _, c := range subs {
			if c.IsAvailableCommand() || c.Name() == "help" {
				pad = max(pad, len(c.Name()))
			}
		}
		line := func(c *cobra.Command) {
			fmt.Fprintf(&b, "  %-*s %s\n", pad, c.Name(), c.Short)
		}
		groups := cmd.Groups()
		for _, g := range groups {
			b.WriteString("\n" + g.Title + "\n")
			for _, c := range subs {
				if c.GroupID == g.ID && (c.IsAvailableCommand() || c.Name() == "help") {
					line(c)
				}
			}
		}
		first := true
		for _, c := range subs {
			if c.GroupID == "" && c.IsAvailableCommand() {
				if first {
					if len(groups) > 0 {
						b.WriteString("\nAdditional verbs:\n")
					} else {
						b.WriteString("\nVerbs:\n")
					}
					first = false
				}
				line(c)
			}
		}
	}
	if !cmd.HasParent() {
		b.WriteString("\nGlobal options:\n" + strings.TrimRight(cmd.LocalFlags().FlagUsages(), " \n") + "\n")
	} else if cmd.HasAvailableLocalFlags() {
		b.WriteString("\nOptions:\n" + strings.TrimRight(cmd.LocalFlags().FlagUsages(), " \n") + "\n")
	}
	if cmd.HasAvailableInheritedFlags() {
		b.WriteString("\nInherited options:\n" + strings.TrimRight(cmd.InheritedFlags().FlagUsages(), " \n") + "\n")
	}
	if cmd.HasParent() {
		if g := globalFlags(cmd.Root()); g.HasAvailableFlags() {
			b.WriteString("\nGlobal options (before the verb):\n" + strings.TrimRight(g.FlagUsages(), " \n") + "\n")
		}
	}
	if cmd.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "\nUse \"%s VERB --help\" for more information about a verb.\n", cmd.CommandPath())
	}
	io.WriteString(w, b.String())
}

// writeHelp prints the long description, then the usage.
func writeHelp(w io.Writer, cmd *cobra.Command) {
	desc := cmd.Long
	if desc == "" {
		desc = cmd.Short
	}
	if desc = strings.TrimRight(desc, " \t\n"); desc != "" {
		io.WriteString(w, desc+"\n\n")
	}
	if cmd.Runnable() || cmd.HasSubCommands() {
		writeUsage(w, cmd)
	}
}

// globalFlags returns the root's options without --help and --version.
func globalFlags(root *cobra.Command) *pflag.FlagSet {
	fs := pflag.NewFlagSet("global", pflag.ContinueOnError)
	root.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" && f.Name != "version" {
			fs.AddFlag(f)
		}
	})
	return fs
}
