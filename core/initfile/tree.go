package initfile

import (
	"errors"
	"fmt"
	"math"

	"gopkg.in/yaml.v3"
)

// kind of a tree node.
type kind int

const (
	kMap kind = iota + 1
	kSeq
	kScalar
)

// node is a YAML value with aliases and merge keys resolved, keeping the
// position of where it was written. Subtrees shared through aliases are
// shared here too, read-only.
type node struct {
	kind      kind
	line, col int
	// tag is the resolved scalar tag (!!str, !!int, !!bool, !!null, ...).
	tag   string
	value string
	// keys and vals of a map, in document order.
	keys  []*node
	vals  []*node
	items []*node
}

func (n *node) get(key string) *node {
	if n == nil || n.kind != kMap {
		return nil
	}
	for i, k := range n.keys {
		if k.value == key {
			return n.vals[i]
		}
	}
	return nil
}

func (n *node) isNull() bool { return n == nil || (n.kind == kScalar && n.tag == "!!null") }

func (n *node) describe() string {
	switch n.kind {
	case kMap:
		return "a mapping"
	case kSeq:
		return "a list"
	}
	switch n.tag {
	case "!!null":
		return "null"
	case "!!int":
		return "the integer " + n.value
	case "!!bool":
		return "the boolean " + n.value
	case "!!float":
		return "the number " + n.value
	}
	return fmt.Sprintf("the string %q", truncate(n.value, 40))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// maxNodes bounds the size of a document after alias expansion, so that an
// "alias bomb" (each alias doubling the document) is an error, not a hang.
const maxNodes = 200000

// maxDepth bounds nesting so deep documents cannot exhaust the stack.
const maxDepth = 200

var errTooLarge = errors.New("document too large after expanding aliases")

// converter turns yaml.Nodes into nodes.
type converter struct {
	file  string
	errs  ErrorList
	seen  map[*yaml.Node]*node
	sizes map[*node]int
	busy  map[*yaml.Node]bool
	total int
}

func (c *converter) errorf(y *yaml.Node, path, format string, args ...any) {
	e := &Error{File: c.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if y != nil {
		e.Line, e.Column = y.Line, y.Column
	}
	c.errs = append(c.errs, e)
}

// convert resolves y. It returns errTooLarge when the expanded document is
// too big; other problems are collected in c.errs.
func (c *converter) convert(y *yaml.Node, path string, depth int) (*node, error) {
	if depth > maxDepth {
		c.errorf(y, path, "nested more than %d levels deep", maxDepth)
		return &node{kind: kScalar, tag: "!!null", line: y.Line, col: y.Column}, nil
	}
	if n, ok := c.seen[y]; ok {
		c.total += c.sizes[n]
		if c.total > maxNodes {
			return nil, errTooLarge
		}
		return n, nil
	}
	if c.busy[y] {
		c.errorf(y, path, "alias refers to itself")
		return &node{kind: kScalar, tag: "!!null", line: y.Line, col: y.Column}, nil
	}
	c.busy[y] = true
	defer delete(c.busy, y)
	before := c.total
	c.total++
	if c.total > maxNodes {
		return nil, errTooLarge
	}
	var n *node
	switch y.Kind {
	case yaml.DocumentNode:
		if len(y.Content) == 0 {
			return &node{kind: kScalar, tag: "!!null", line: y.Line, col: y.Column}, nil
		}
		return c.convert(y.Content[0], path, depth)
	case yaml.AliasNode:
		if y.Alias == nil {
			c.errorf(y, path, "unknown alias")
			n = &node{kind: kScalar, tag: "!!null", line: y.Line, col: y.Column}
			break
		}
		c.total--
		return c.convert(y.Alias, path, depth+1)
	case yaml.ScalarNode:
		n = &node{kind: kScalar, tag: y.ShortTag(), value: y.Value, line: y.Line, col: y.Column}
	case yaml.SequenceNode:
		n = &node{kind: kSeq, line: y.Line, col: y.Column}
		for i, item := range y.Content {
			x, err := c.convert(item, fmt.Sprintf("%s[%d]", path, i), depth+1)
			if err != nil {
				return nil, err
			}
			n.items = append(n.items, x)
		}
	case yaml.MappingNode:
		var err error
		n, err = c.convertMap(y, path, depth)
		if err != nil {
			return nil, err
		}
	default:
		c.errorf(y, path, "unsupported YAML node")
		n = &node{kind: kScalar, tag: "!!null", line: y.Line, col: y.Column}
	}
	c.seen[y] = n
	c.sizes[n] = c.total - before
	return n, nil
}

func (c *converter) convertMap(y *yaml.Node, path string, depth int) (*node, error) {
	n := &node{kind: kMap, line: y.Line, col: y.Column}
	index := map[string]int{}
	var merges []*node
	for i := 0; i+1 < len(y.Content); i += 2 {
		ky, vy := y.Content[i], y.Content[i+1]
		if ky.Kind == yaml.AliasNode && ky.Alias != nil {
			ky = ky.Alias
		}
		if ky.Kind == yaml.ScalarNode && ky.ShortTag() == "!!merge" {
			v, err := c.convert(vy, path, depth+1)
			if err != nil {
				return nil, err
			}
			switch v.kind {
			case kMap:
				merges = append(merges, v)
			case kSeq:
				for _, it := range v.items {
					if it.kind != kMap {
						c.errorf(vy, path, "merge key << needs mappings, got %s", it.describe())
						continue
					}
					merges = append(merges, it)
				}
			default:
				c.errorf(vy, path, "merge key << needs a mapping or a list of mappings, got %s", v.describe())
			}
			continue
		}
		if ky.Kind != yaml.ScalarNode {
			c.errorf(ky, path, "keys must be plain strings")
			continue
		}
		sub := joinPath(path, ky.Value)
		if j, dup := index[ky.Value]; dup {
			c.errorf(ky, sub, "duplicate key %q (first at line %d)", ky.Value, n.keys[j].line)
			continue
		}
		v, err := c.convert(vy, sub, depth+1)
		if err != nil {
			return nil, err
		}
		index[ky.Value] = len(n.keys)
		n.keys = append(n.keys, &node{kind: kScalar, tag: "!!str", value: ky.Value, line: ky.Line, col: ky.Column})
		n.vals = append(n.vals, v)
	}
	// Explicit keys win over merged ones; earlier merges win over later.
	for _, m := range merges {
		for i, k := range m.keys {
			if _, ok := index[k.value]; ok {
				continue
			}
			index[k.value] = len(n.keys)
			n.keys = append(n.keys, k)
			n.vals = append(n.vals, m.vals[i])
			c.total++
		}
	}
	return n, nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// mergeNodes deep-merges child over base: mappings merge key by key (the
// child's value wins, mappings on both sides merge recursively), anything
// else is taken from the child. Keys keep base order, then the child's new
// keys. Neither input is modified.
func mergeNodes(base, child *node) *node {
	if base == nil || base.kind != kMap || child.kind != kMap {
		return child
	}
	out := &node{kind: kMap, line: child.line, col: child.col}
	for i, k := range base.keys {
		v := base.vals[i]
		if cv := child.get(k.value); cv != nil {
			// Keep the child's key position for errors about it.
			for j, ck := range child.keys {
				if ck.value == k.value {
					k = child.keys[j]
					break
				}
			}
			v = mergeNodes(v, cv)
		}
		out.keys = append(out.keys, k)
		out.vals = append(out.vals, v)
	}
	for i, k := range child.keys {
		if base.get(k.value) == nil {
			out.keys = append(out.keys, k)
			out.vals = append(out.vals, child.vals[i])
		}
	}
	return out
}

// toAny converts n to plain Go values (map[string]any, []any, string,
// int64, float64, bool, nil) for free-form fields such as metadata and
// cpu_custom.
func toAny(n *node) any {
	switch n.kind {
	case kMap:
		m := make(map[string]any, len(n.keys))
		for i, k := range n.keys {
			m[k.value] = toAny(n.vals[i])
		}
		return m
	case kSeq:
		l := make([]any, 0, len(n.items))
		for _, it := range n.items {
			l = append(l, toAny(it))
		}
		return l
	}
	var v any
	y := &yaml.Node{Kind: yaml.ScalarNode, Tag: n.tag, Value: n.value}
	if err := y.Decode(&v); err != nil {
		return n.value
	}
	switch x := v.(type) {
	case int:
		return int64(x)
	case float64:
		// JSON cannot hold NaN or infinities; keep what the user wrote.
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return n.value
		}
	}
	return v
}
