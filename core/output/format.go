package output

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

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
// byte order, "[Key]:" headers for maps, 4-space indent, empty values
// skipped, booleans True/False. Lists of scalars print joined by ", ".
func Default(doc any) []byte {
	var b bytes.Buffer
	writeDefault(&b, doc, 0)
	return b.Bytes()
}

func writeDefault(b *bytes.Buffer, v any, depth int) {
	es, ok := sortedMap(v)
	if !ok {
		if !isEmpty(v) {
			b.WriteString(strings.Repeat(indentUnit, depth) + listOrScalar(v) + "\n")
		}
		return
	}
	ind := strings.Repeat(indentUnit, depth)
	for _, e := range es {
		if isEmpty(e.val) {
			continue
		}
		if _, isMap := mapEntries(e.val); isMap {
			fmt.Fprintf(b, "%s[%s]:\n", ind, e.key)
			writeDefault(b, e.val, depth+1)
			continue
		}
		if items, isList := listItems(e.val); isList && hasMap(items) {
			fmt.Fprintf(b, "%s[%s]:\n", ind, e.key)
			writeDefault(b, indexMap(items), depth+1)
			continue
		}
		fmt.Fprintf(b, "%s%s: %s\n", ind, e.key, listOrScalar(e.val))
	}
}

// indexMap turns a list into a *Map keyed by index, keeping list order.
func indexMap(items []any) *Map {
	m := NewMap()
	for i, it := range items {
		m.Set(fmt.Sprint(i), it)
	}
	return m
}

// sortedMap returns the entries of a map node sorted by key in byte order;
// list-index maps built by indexMap keep their numeric order.
func sortedMap(v any) ([]entry, bool) {
	es, ok := mapEntries(v)
	if !ok {
		return nil, false
	}
	if _, isIndex := v.(*Map); isIndex && isIndexKeys(es) {
		return es, true
	}
	sorted := append([]entry(nil), es...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].key < sorted[j].key })
	return sorted, true
}

func isIndexKeys(es []entry) bool {
	for i, e := range es {
		if e.key != fmt.Sprint(i) {
			return false
		}
	}
	return len(es) > 0
}

func hasMap(items []any) bool {
	for _, it := range items {
		if _, ok := mapEntries(it); ok {
			return true
		}
		if _, ok := listItems(it); ok {
			return true
		}
	}
	return false
}

func listOrScalar(v any) string {
	items, ok := listItems(v)
	if !ok {
		return scalar(v)
	}
	parts := make([]string, 0, len(items))
	for _, it := range items {
		parts = append(parts, scalar(it))
	}
	return strings.Join(parts, ", ")
}

// Flat renders one "path/to/key: value" line per non-empty leaf, keys in
// byte order, list items indexed by position. When doc has a single
// top-level key holding a map (the status tree's "Prefix"), that level is
// left out of the paths.
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
	if isEmpty(v) {
		return
	}
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "/" + k
	}
	if es, ok := sortedMap(v); ok {
		for _, e := range es {
			writeFlat(b, join(e.key), e.val)
		}
		return
	}
	if items, ok := listItems(v); ok {
		for i, it := range items {
			writeFlat(b, join(fmt.Sprint(i)), it)
		}
		return
	}
	fmt.Fprintf(b, "%s: %s\n", path, scalar(v))
}

// YAML renders doc as block-style YAML with keys in byte order; empty values
// are kept, as the original's yaml output did.
func YAML(doc any) ([]byte, error) {
	n, err := yamlNode(doc)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	return b.Bytes(), nil
}

func yamlNode(v any) (*yaml.Node, error) {
	if es, ok := sortedMap(v); ok {
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		if len(es) == 0 {
			n.Style = yaml.FlowStyle
		}
		for _, e := range es {
			val, err := yamlNode(e.val)
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", e.key, err)
			}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: e.key}, val)
		}
		return n, nil
	}
	if items, ok := listItems(v); ok {
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if len(items) == 0 {
			n.Style = yaml.FlowStyle
		}
		for _, it := range items {
			c, err := yamlNode(it)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, c)
		}
		return n, nil
	}
	switch x := v.(type) {
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: x}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(x)}, nil
	case json.Number:
		tag := "!!int"
		if strings.ContainsAny(x.String(), ".eE") {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: x.String()}, nil
	}
	n := &yaml.Node{}
	if err := n.Encode(v); err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return n, nil
}
