package cli

import (
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lago-go/lago/core/errs"
)

// normalizeArgs expands abbreviated long options to their full names, as
// Python's argparse allowed (`--workdir` for `--workdir-path`), so cobra
// sees only full names. It walks args the way cobra will: global options,
// then the verb (descending into sub-verbs), then the verb's options. An
// abbreviation that matches several options is a Lago error naming them.
// It also returns the path of verbs found ("completion", "bash"); an
// unknown verb ends the walk and is left for cobra to report.
func normalizeArgs(root *cobra.Command, args []string) ([]string, []string, error) {
	out := make([]string, 0, len(args))
	cmd := root
	var path []string
	positionalSeen := false
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			return append(out, args[i:]...), path, nil
		case strings.HasPrefix(arg, "--") && !(positionalSeen && noInterspersed(cmd)):
			name, val, hasVal := strings.Cut(arg[2:], "=")
			f, err := resolveLong(cmd, name)
			if err != nil {
				return nil, path, err
			}
			if f == nil {
				out = append(out, arg) // unknown: cobra reports it
				continue
			}
			if hasVal {
				out = append(out, "--"+f.Name+"="+val)
				continue
			}
			out = append(out, "--"+f.Name)
			if f.NoOptDefVal == "" && i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
		case strings.HasPrefix(arg, "-") && len(arg) > 1 && !(positionalSeen && noInterspersed(cmd)):
			out = append(out, arg)
			// -x VALUE: a value-taking shorthand consumes the next word.
			if len(arg) == 2 {
				if f := allFlags(cmd).ShorthandLookup(arg[1:]); f != nil && f.NoOptDefVal == "" && i+1 < len(args) {
					i++
					out = append(out, args[i])
				}
			}
		default:
			out = append(out, arg)
			if positionalSeen {
				if noInterspersed(cmd) {
					return append(out, args[i+1:]...), path, nil
				}
				continue
			}
			sub := findSub(cmd, arg)
			if sub == nil {
				if cmd == root {
					// Unknown verb: leave the rest to cobra.
					return append(out, args[i+1:]...), append(path, arg), nil
				}
				positionalSeen = true
				if noInterspersed(cmd) {
					return append(out, args[i+1:]...), path, nil
				}
				continue
			}
			cmd = sub
			path = append(path, sub.Name())
		}
	}
	return out, path, nil
}

func noInterspersed(cmd *cobra.Command) bool {
	return cmd.Annotations[annotNoInterspersed] == "true"
}

func findSub(cmd *cobra.Command, name string) *cobra.Command {
	for _, c := range cmd.Commands() {
		if c.Name() == name || c.HasAlias(name) {
			return c
		}
	}
	return nil
}

// allFlags returns the options valid at cmd's place on the command line:
// its own, the persistent ones of its ancestors, --help and --version. A
// name or letter already taken is skipped: the nearest command wins, as in
// cobra's parsing.
func allFlags(cmd *cobra.Command) *pflag.FlagSet {
	fs := pflag.NewFlagSet(cmd.Name(), pflag.ContinueOnError)
	add := func(f *pflag.Flag) {
		if fs.Lookup(f.Name) != nil || (f.Shorthand != "" && fs.ShorthandLookup(f.Shorthand) != nil) {
			return
		}
		fs.AddFlag(f)
	}
	cmd.Flags().VisitAll(add)
	for c := cmd; c != nil; c = c.Parent() {
		c.PersistentFlags().VisitAll(add)
	}
	if fs.Lookup("help") == nil {
		add(&pflag.Flag{Name: "help", Shorthand: "h", NoOptDefVal: "true", Value: new(boolFlag)})
	}
	if !cmd.HasParent() && fs.Lookup("version") == nil {
		add(&pflag.Flag{Name: "version", Shorthand: "v", NoOptDefVal: "true", Value: new(boolFlag)})
	}
	return fs
}

// boolFlag is a placeholder value for --help and --version before cobra
// declares them.
type boolFlag bool

func (b *boolFlag) String() string   { return "false" }
func (b *boolFlag) Set(string) error { return nil }
func (b *boolFlag) Type() string     { return "bool" }

// resolveLong finds the option name stands for: an exact name, else the only
// option it is a prefix of. nil means no option matches.
func resolveLong(cmd *cobra.Command, name string) (*pflag.Flag, error) {
	fs := allFlags(cmd)
	if f := fs.Lookup(name); f != nil {
		return f, nil
	}
	if name == "" {
		return nil, nil
	}
	var matches []*pflag.Flag
	fs.VisitAll(func(f *pflag.Flag) {
		if strings.HasPrefix(f.Name, name) {
			matches = append(matches, f)
		}
	})
	switch len(matches) {
	case 0:
		return nil, nil
	case 1:
		return matches[0], nil
	}
	names := make([]string, len(matches))
	for i, f := range matches {
		names[i] = "--" + f.Name
	}
	sort.Strings(names)
	return nil, errs.Userf("ambiguous option --%s could match %s", name, strings.Join(names, ", "))
}
