package output

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/lago-go/lago/core/errs"
)

// Formatter renders a document to bytes.
type Formatter interface {
	Format(ctx context.Context, doc any) ([]byte, error)
}

// FormatterFunc adapts a function to Formatter.
type FormatterFunc func(ctx context.Context, doc any) ([]byte, error)

// Format calls f.
func (f FormatterFunc) Format(ctx context.Context, doc any) ([]byte, error) { return f(ctx, doc) }

// Built-in format names.
const (
	FormatDefault = "default"
	FormatYAML    = "yaml"
	FormatFlat    = "flat"
)

var builtins = map[string]Formatter{
	FormatDefault: FormatterFunc(func(_ context.Context, doc any) ([]byte, error) { return Default(doc), nil }),
	FormatYAML:    FormatterFunc(func(_ context.Context, doc any) ([]byte, error) { return YAML(doc) }),
	FormatFlat:    FormatterFunc(func(_ context.Context, doc any) ([]byte, error) { return Flat(doc), nil }),
}

// BuiltinNames returns the names of the built-in formats, sorted.
func BuiltinNames() []string {
	names := make([]string, 0, len(builtins))
	for n := range builtins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Builtin returns the built-in format name.
func Builtin(name string) (Formatter, bool) {
	f, ok := builtins[name]
	return f, ok
}

// PluginFormat is the part of an output plugin component the CLI needs; it
// matches sdk.OutputFormat so a plugin client fits without an adapter.
type PluginFormat interface {
	Format(ctx context.Context, documentJSON []byte) ([]byte, error)
}

// Plugins finds output formats served by plugins (the plugin host in the
// CLI). Names lists them without starting any plugin.
type Plugins interface {
	OutputNames() ([]string, error)
	Output(ctx context.Context, name string) (PluginFormat, error)
}

// Lookup returns the format name: a built-in one, else one served by an
// output plugin. An unknown name is a Lago error listing every available
// format. plugins may be nil.
func Lookup(ctx context.Context, name string, plugins Plugins) (Formatter, error) {
	if f, ok := Builtin(name); ok {
		return f, nil
	}
	available := BuiltinNames()
	if plugins != nil {
		names, err := plugins.OutputNames()
		if err != nil {
			return nil, fmt.Errorf("list output plugins: %w", err)
		}
		for _, n := range names {
			if n == name {
				pf, err := plugins.Output(ctx, name)
				if err != nil {
					return nil, fmt.Errorf("start output format %q: %w", name, err)
				}
				return pluginFormatter{pf}, nil
			}
		}
		available = append(available, names...)
		sort.Strings(available)
		available = dedupe(available)
	}
	return nil, errs.Userf("unknown output format %q (available: %s)", name, strings.Join(available, ", "))
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// pluginFormatter sends the document as ordered JSON to a plugin.
type pluginFormatter struct{ p PluginFormat }

func (f pluginFormatter) Format(ctx context.Context, doc any) ([]byte, error) {
	b, err := JSON(doc)
	if err != nil {
		return nil, err
	}
	out, err := f.p.Format(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("format document: %w", err)
	}
	return out, nil
}

const indentUnit = "    "

// Default renders doc as the original Lago's default format: keys sorted in
// byte order, "[Key]:" headers for maps, 4-space indent, booleans
// True/False; null, empty strings and empty maps are skipped. A list prints
// "key: " (the trailing space is the original's) and then each item on its
// own line one indent deeper; an empty list prints "key: " alone.
func Default(doc any) []byte {
	lines := defaultLines(doc, "")
	if len(lines) == 0 {
		return nil
	}
	return []byte(strings.Join(lines, "\n") + "\n")
}

// defaultLines is the original's DefaultOutFormatPlugin.format: a map's
// entries, a list's items or a scalar's text, at indent ind.
func defaultLines(v any, ind string) []string {
	if items, ok := listItems(v); ok {
		var lines []string
		for _, it := range items {
			lines = append(lines, defaultItem(it, ind)...)
		}
		return lines
	}
	es, ok := sortedMap(v)
	if !ok {
		return []string{defaultScalar(v)}
	}
	var lines []string
	for _, e := range es {
		if inner, isMap := mapEntries(e.val); isMap {
			if len(inner) == 0 {
				continue
			}
			lines = append(lines, ind+"["+e.key+"]:")
			lines = append(lines, defaultLines(e.val, ind+indentUnit)...)
			continue
		}
		if s, isStr := e.val.(string); e.val == nil || (isStr && s == "") {
			continue
		}
		if items, isList := listItems(e.val); isList {
			lines = append(lines, ind+e.key+": ")
			for _, it := range items {
				lines = append(lines, defaultItem(it, ind+indentUnit)...)
			}
			continue
		}
		lines = append(lines, ind+e.key+": "+defaultScalar(e.val))
	}
	return lines
}

// defaultItem renders one list item at indent ind. The original formatted
// an item on its own and indented only its first line; every line of a
// map or list item is indented here, so the output stays readable. An
// item that renders to nothing (an empty map) leaves its indent alone on
// the line, as the original's did.
func defaultItem(it any, ind string) []string {
	_, isMap := mapEntries(it)
	_, isList := listItems(it)
	if !isMap && !isList {
		return []string{ind + defaultScalar(it)}
	}
	lines := defaultLines(it, ind)
	if len(lines) == 0 {
		return []string{ind}
	}
	return lines
}

// defaultScalar is str() of a leaf in the original: null is "None".
func defaultScalar(v any) string {
	if v == nil {
		return "None"
	}
	return scalar(v)
}

// sortedMap returns the entries of a map node sorted by key in byte order.
func sortedMap(v any) ([]entry, bool) {
	es, ok := mapEntries(v)
	if !ok {
		return nil, false
	}
	sorted := append([]entry(nil), es...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].key < sorted[j].key })
	return sorted, true
}

// Flat renders the original's flat format: one "path/to/key: value" line
// per leaf, keys in byte order. Each item of a list gives its own line
// with the list's path (no index), an empty string gives "path: " and null
// "path: None"; empty maps and lists give nothing. When doc has a single
// top-level key holding a map (the status tree's "Prefix"), that level is
// left out of the paths, as the original did.
func Flat(doc any) []byte {
	if es, ok := mapEntries(doc); ok && len(es) == 1 {
		if _, inner := mapEntries(es[0].val); inner {
			doc = es[0].val
		}
	}
	var b bytes.Buffer
	writeFlat(&b, "", doc)
	return b.Bytes()
}

func writeFlat(b *bytes.Buffer, path string, v any) {
	if es, ok := sortedMap(v); ok {
		for _, e := range es {
			p := e.key
			if path != "" {
				p = path + "/" + e.key
			}
			writeFlat(b, p, e.val)
		}
		return
	}
	if items, ok := listItems(v); ok {
		for _, it := range items {
			writeFlat(b, path, it)
		}
		return
	}
	if path == "" {
		// A bare scalar document has no path to print.
		fmt.Fprintf(b, "%s\n", defaultScalar(v))
		return
	}
	fmt.Fprintf(b, "%s: %s\n", path, defaultScalar(v))
}
