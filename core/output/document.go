// Package output renders documents (the status tree, snapshot lists, plugin
// listings) in the built-in formats default, yaml and flat, and hands other
// formats to output plugins as JSON.
//
// A document is a tree of *Map, map[string]any, []any (or other slices),
// strings, booleans and numbers. *Map keeps its keys in insertion order;
// map[string]any is rendered with keys in byte order, which is what the
// original Lago printed (uppercase before lowercase).
package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
)

// Map is a string-keyed map that remembers the order keys were first set.
// It marshals to a JSON object in that order, so the order survives the trip
// to an output plugin.
type Map struct {
	keys []string
	vals map[string]any
}

// NewMap returns an empty Map.
func NewMap() *Map { return &Map{vals: map[string]any{}} }

// Set sets key to v, appending key if it is new, and returns m for chaining.
func (m *Map) Set(key string, v any) *Map {
	if m.vals == nil {
		m.vals = map[string]any{}
	}
	if _, ok := m.vals[key]; !ok {
		m.keys = append(m.keys, key)
	}
	m.vals[key] = v
	return m
}

// Get returns the value of key.
func (m *Map) Get(key string) (any, bool) {
	v, ok := m.vals[key]
	return v, ok
}

// Keys returns the keys in order; the slice is a copy.
func (m *Map) Keys() []string { return append([]string(nil), m.keys...) }

// Len returns the number of keys.
func (m *Map) Len() int { return len(m.keys) }

// MarshalJSON writes the object with keys in order.
func (m *Map) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range m.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		vb, err := json.Marshal(m.vals[k])
		if err != nil {
			return nil, fmt.Errorf("marshal key %q: %w", k, err)
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads an object keeping the key order of the input; nested
// objects become *Map too and numbers become json.Number.
func (m *Map) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return err
	}
	mm, ok := v.(*Map)
	if !ok {
		return fmt.Errorf("decode document: want a JSON object, got %T", v)
	}
	*m = *mm
	return nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("decode document: %w", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := NewMap()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, fmt.Errorf("decode document: %w", err)
				}
				k, _ := kt.(string)
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				m.Set(k, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("decode document: %w", err)
			}
			return m, nil
		case '[':
			list := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("decode document: %w", err)
			}
			return list, nil
		}
		return nil, fmt.Errorf("decode document: unexpected %v", t)
	default:
		return tok, nil
	}
}

// JSON marshals doc compactly, objects keeping their order (*Map) or sorted
// (Go maps). This is the document_json an output plugin receives.
func JSON(doc any) ([]byte, error) {
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("marshal document: %w", err)
	}
	return b, nil
}

// entry is one key/value pair of a map node, in render order.
type entry struct {
	key string
	val any
}

// mapEntries returns the entries of v if it is a map node. Go maps are
// returned in byte order of their keys; *Map in its own order.
func mapEntries(v any) ([]entry, bool) {
	switch m := v.(type) {
	case *Map:
		if m == nil {
			return nil, true
		}
		out := make([]entry, 0, len(m.keys))
		for _, k := range m.keys {
			out = append(out, entry{k, m.vals[k]})
		}
		return out, true
	case map[string]any:
		return sortedEntries(m), true
	case map[string]string:
		g := make(map[string]any, len(m))
		for k, x := range m {
			g[k] = x
		}
		return sortedEntries(g), true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Map && rv.Type().Key().Kind() == reflect.String {
		g := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			g[it.Key().String()] = it.Value().Interface()
		}
		return sortedEntries(g), true
	}
	return nil, false
}

func sortedEntries(m map[string]any) []entry {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]entry, len(keys))
	for i, k := range keys {
		out[i] = entry{k, m[k]}
	}
	return out
}

// listItems returns the items of v if it is a slice or array (not []byte).
func listItems(v any) ([]any, bool) {
	if l, ok := v.([]any); ok {
		return l, true
	}
	if _, ok := v.([]byte); ok {
		return nil, false
	}
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || (rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array) {
		return nil, false
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, true
}

// Sorted returns a copy of doc in which every map is a *Map with its keys in
// byte order; use it to give an output plugin the sorted tree the original
// Lago printed.
func Sorted(doc any) any {
	if es, ok := mapEntries(doc); ok {
		keys := make([]string, len(es))
		for i, e := range es {
			keys[i] = e.key
		}
		sort.Strings(keys)
		vals := map[string]any{}
		for _, e := range es {
			vals[e.key] = e.val
		}
		m := NewMap()
		for _, k := range keys {
			m.Set(k, Sorted(vals[k]))
		}
		return m
	}
	if l, ok := listItems(doc); ok {
		out := make([]any, len(l))
		for i, x := range l {
			out[i] = Sorted(x)
		}
		return out
	}
	return doc
}

// scalar renders a leaf the way the original printed it: booleans as
// True/False, numbers without exponent when integral.
func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		if x {
			return "True"
		}
		return "False"
	case json.Number:
		return x.String()
	case float64:
		if x == float64(int64(x)) {
			return fmt.Sprintf("%d", int64(x))
		}
		return fmt.Sprintf("%g", x)
	case float32:
		return scalar(float64(x))
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}
