package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/pluginhost/discovery"
)

// pluginsSubverbs manage the user plugin folder; the work is
// discovery.Install and discovery.Remove, the command line only parses
// and reports.
var pluginsSubverbs = []verbSpec{
	{Name: "install", Use: "FILE", Short: "Copy a plugin binary into the user plugin folder and pin it",
		Long: "Copy the plugin binary FILE (named lago-plugin-NAME) into the user plugin folder,\n" +
			"$XDG_DATA_HOME/lago/plugins (~/.local/share/lago/plugins), and record its sha256 in\n" +
			"that folder's pins.sha256: from then on the binary is refused if its content changes.\n" +
			"FILE must answer `describe` as a lago plugin; nothing is copied otherwise. Installing\n" +
			"another binary under a name already installed needs --force.",
		Args: cobra.ExactArgs(1), Meta: true,
		Flags: func(fs *pflag.FlagSet) {
			fs.Bool("force", false, "replace a different binary already installed under the name")
		}},
	{Name: "remove", Use: "NAME", Short: "Remove a plugin from the user plugin folder",
		Long: "Remove the plugin NAME (lago-plugin-NAME) and its pin from the user plugin folder,\n" +
			"$XDG_DATA_HOME/lago/plugins. Plugins of other folders are left to whoever put them there.",
		Args: cobra.ExactArgs(1), Meta: true},
}

// runPluginsInstall is `lago plugins install FILE [--force]`.
func runPluginsInstall(_ context.Context, inv *Invocation) error {
	dir, err := discovery.UserDirFrom(inv.app.getenv)
	if err != nil {
		return errs.User(fmt.Errorf("lago plugins install: %w", err))
	}
	force, _ := inv.Flags.GetBool("force")
	got, err := discovery.Install(inv.Args[0], dir, discovery.InstallOptions{Force: force})
	if err != nil {
		var ee *discovery.ExistsError
		if errors.As(err, &ee) {
			return errs.Userf("lago plugins install: %v; add --force to replace it", err)
		}
		return errs.User(fmt.Errorf("lago plugins install: %w", err))
	}
	what := got.Name
	if got.Version != "" {
		what += " " + got.Version
	}
	var comps []string
	for _, c := range got.Components {
		comps = append(comps, c.Kind+" "+c.Name)
	}
	what += " (" + strings.Join(comps, ", ") + ")"
	switch {
	case got.Unchanged:
		fmt.Fprintf(inv.Stdout, "plugin %s is already installed as %s, sha256 %s\n", what, got.Path, discovery.ShortHash(got.SHA256))
	case got.Replaced != "":
		fmt.Fprintf(inv.Stdout, "replaced plugin %s (sha256 %s) by %s as %s, sha256 %s\n",
			got.Name, discovery.ShortHash(got.Replaced), what, got.Path, discovery.ShortHash(got.SHA256))
	default:
		fmt.Fprintf(inv.Stdout, "installed plugin %s as %s, sha256 %s\n", what, got.Path, discovery.ShortHash(got.SHA256))
	}
	installedUsable(inv, got)
	return nil
}

// installedUsable warns when lago will not use the plugin just installed:
// an earlier folder has one of the name, a pin in lago.conf wants another
// binary, or the folder is not searched at all. The install stands: the
// user may mean to remove the other one next.
func installedUsable(inv *Invocation, got discovery.Installed) {
	infos, err := discover(inv.Host())
	if err != nil {
		fmt.Fprintf(inv.Stderr, "lago: warning: cannot check that plugin %s is usable: %v\n", got.Name, err)
		return
	}
	for _, p := range infos {
		if p.Path != got.Path {
			continue
		}
		switch {
		case p.Shadowed:
			fmt.Fprintf(inv.Stderr, "lago: warning: plugin %s is shadowed by %s, which lago uses instead\n", got.Name, p.ShadowedBy)
		case p.Refused:
			fmt.Fprintf(inv.Stderr, "lago: warning: plugin %s is refused: %s\n", got.Name, p.Reason)
		}
		return
	}
	fmt.Fprintf(inv.Stderr, "lago: warning: %s is not in lago's plugin search path\n", got.Path)
}

// runPluginsRemove is `lago plugins remove NAME`.
func runPluginsRemove(_ context.Context, inv *Invocation) error {
	dir, err := discovery.UserDirFrom(inv.app.getenv)
	if err != nil {
		return errs.User(fmt.Errorf("lago plugins remove: %w", err))
	}
	got, err := discovery.Remove(inv.Args[0], dir)
	if err != nil {
		return errs.User(fmt.Errorf("lago plugins remove: %w", err))
	}
	if got.Path == "" {
		fmt.Fprintf(inv.Stdout, "removed the pin of plugin %s (its binary was already gone from %s)\n", got.Name, dir)
		return nil
	}
	fmt.Fprintf(inv.Stdout, "removed plugin %s (%s)\n", got.Name, got.Path)
	return nil
}
