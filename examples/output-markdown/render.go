package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// node is one JSON value; objects keep the key order lago sent, which is
// the order to render in.
type node struct {
	object bool     // an object; a container that is not is an array
	keys   []string // object keys
	elems  []*node  // object values or array items
	text   string   // a scalar's text: numbers as written, null as ""
}

// scalar reports whether n renders as text: a scalar or an empty
// container.
func (n *node) scalar() bool { return len(n.elems) == 0 }

// record reports whether n is an object of scalars only: a table row.
func (n *node) record() bool {
	if !n.object || n.scalar() {
		return false
	}
	for _, e := range n.elems {
		if !e.scalar() {
			return false
		}
	}
	return true
}

// table reports whether n is a non-empty container of records.
func (n *node) table() bool {
	for _, e := range n.elems {
		if !e.record() {
			return false
		}
	}
	return !n.scalar()
}

// render turns a JSON document into Markdown: a container's scalar members
// become a bullet list, its other members sections under a heading one
// level deeper, and a container of records (objects of scalars, such as
// the status' networks or a VM's NICs) a table with one row per record.
func render(doc []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	n, err := parse(dec)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("render markdown: the document is not JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("render markdown: trailing data after the document")
	}
	var w writer
	w.section(n, 1)
	return w.b.Bytes(), nil
}

// parse reads the next value of dec.
func parse(dec *json.Decoder) (*node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		n := &node{object: t == '{'}
		for dec.More() {
			if n.object {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k.(string)) // the decoder allows only string keys
			}
			e, err := parse(dec)
			if err != nil {
				return nil, err
			}
			n.elems = append(n.elems, e)
		}
		_, err := dec.Token() // the closing delimiter
		return n, err
	case string:
		return &node{text: t}, nil
	case json.Number:
		return &node{text: t.String()}, nil
	case bool:
		return &node{text: strconv.FormatBool(t)}, nil
	}
	return &node{}, nil // null
}

// writer collects Markdown blocks, one blank line apart.
type writer struct{ b bytes.Buffer }

func (w *writer) block(s string) {
	if w.b.Len() > 0 {
		w.b.WriteByte('\n')
	}
	w.b.WriteString(s)
}

func (w *writer) heading(level int, title string) {
	w.block(strings.Repeat("#", min(level, 6)) + " " + title + "\n")
}

// section writes n's content below a heading of level-1.
func (w *writer) section(n *node, level int) {
	switch {
	case n.scalar():
		if n.text != "" {
			w.block(escape(n.text) + "\n")
		}
		return
	case n.table():
		w.table(n)
		return
	}
	var list strings.Builder
	for i, e := range n.elems {
		if !e.scalar() {
			continue
		}
		line := "- " + escape(e.text)
		if n.object {
			line = "- **" + escape(n.keys[i]) + "**: " + escape(e.text)
		}
		list.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	if list.Len() > 0 {
		w.block(list.String())
	}
	for i, e := range n.elems {
		if e.scalar() {
			continue
		}
		title := strconv.Itoa(i + 1)
		if n.object {
			title = escape(n.keys[i])
		} else if name := e.member("name"); name != "" {
			title = escape(name)
		}
		w.heading(level, title)
		w.section(e, level+1)
	}
}

// member returns the text of n's scalar member key ("" if none).
func (n *node) member(key string) string {
	for i, k := range n.keys {
		if k == key && n.elems[i].scalar() {
			return n.elems[i].text
		}
	}
	return ""
}

// table writes a container of records: the union of their keys, in the
// order first seen, are the columns; an object's keys (the records' names)
// come first.
func (w *writer) table(n *node) {
	var cols []string
	seen := map[string]bool{}
	for _, r := range n.elems {
		for _, k := range r.keys {
			if !seen[k] {
				seen[k] = true
				cols = append(cols, k)
			}
		}
	}
	var b strings.Builder
	head := make([]string, 0, len(cols)+1)
	if n.object {
		head = append(head, "name")
		if seen["name"] {
			head[0] = "key"
		}
	}
	for _, c := range cols {
		head = append(head, escape(c))
	}
	row := func(cells []string) { b.WriteString("| " + strings.Join(cells, " | ") + " |\n") }
	row(head)
	b.WriteString(strings.Repeat("|---", len(head)) + "|\n")
	for i, r := range n.elems {
		var cells []string
		if n.object {
			cells = append(cells, escape(n.keys[i]))
		}
		for _, c := range cols {
			cells = append(cells, escape(r.member(c)))
		}
		row(cells)
	}
	w.block(b.String())
}

// escaper keeps text literal in Markdown: the characters that start
// emphasis, code, links, HTML or table cells are escaped, and a line break
// (which would end a list item or a table row) becomes <br>.
var escaper = strings.NewReplacer(`\`, `\\`, "`", "\\`", `*`, `\*`, `_`, `\_`, `|`, `\|`, `[`, `\[`, `]`, `\]`,
	`<`, `&lt;`, `>`, `&gt;`, `&`, `&amp;`, `#`, `\#`, "\r\n", "<br>", "\n", "<br>", "\r", "<br>")

// escape makes s literal Markdown; other control characters than tab
// become U+FFFD, so that no value can move a terminal's cursor.
func escape(s string) string {
	return strings.Map(func(r rune) rune {
		if (r < 0x20 && r != '\t') || r == 0x7f {
			return '\uFFFD'
		}
		return r
	}, escaper.Replace(s))
}
