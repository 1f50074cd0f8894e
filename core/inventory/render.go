package inventory

import (
	"encoding/json"
	"fmt"
	"strings"
)

// INI renders the inventory as the original's text: for each group in
// order a "[group]" line and then its hosts, one line each sorted by
// name, with no blank lines; the text ends with a newline (the original
// printed its lines with print). An empty inventory is "".
//
// A host line is "NAME ansible_host=IP ansible_ssh_private_key_file=KEY"
// as in the original, then ansible_user, ansible_password (only for a
// host whose key is not installed) and the caller's variables. ansible
// reads each value through shlex and then Python's literal_eval, so a
// value that either would change (a password "123456" would become the
// number 123456, "0x10" 16; a space would end the value) is written as a
// quoted Python string, '"123456"'; addresses and plain paths are written
// as they are.
func (inv *Inventory) INI() string {
	lines := make(map[string]string, len(inv.Hosts))
	for _, h := range inv.Hosts {
		var b strings.Builder
		b.WriteString(h.Name)
		for _, v := range h.Vars {
			b.WriteByte(' ')
			b.WriteString(v.Name)
			b.WriteByte('=')
			b.WriteString(iniValue(v.Value))
		}
		lines[h.Name] = b.String()
	}
	var b strings.Builder
	for _, g := range inv.Groups {
		fmt.Fprintf(&b, "[%s]\n", g.Name)
		for _, h := range g.Hosts {
			b.WriteString(lines[h])
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// iniValue writes s so that ansible's INI parser reads back exactly the
// string s.
func iniValue(s string) string {
	if plainINIValue(s) {
		return s
	}
	return `'"` + pythonString(s) + `"'`
}

// plainINIValue reports whether ansible reads s written bare as the
// string s: shlex keeps it one word (no white space, quotes, '#',
// backslash) and literal_eval fails on it (not a number, True, False,
// None, Ellipsis, or a list, tuple or dict). It errs on the side of
// quoting: a quoted value is always read right.
func plainINIValue(s string) bool {
	if s == "" || s == "True" || s == "False" || s == "None" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '/' || c == '-' || c == ':' || c == '@' || c == '%'
		if !ok {
			return false
		}
	}
	// What starts like a number (after signs) must be one of the
	// dotted forms no Python literal has: an IPv4 address, a version.
	rest := strings.TrimLeft(s, "-")
	if rest == "" {
		return false
	}
	if c := rest[0]; c >= '0' && c <= '9' || c == '.' {
		dots, digits := 0, 0
		for i := 0; i < len(rest); i++ {
			switch c := rest[i]; {
			case c == '.':
				dots++
			case c >= '0' && c <= '9':
				digits++
			default:
				return false
			}
		}
		return dots >= 2 && digits > 0
	}
	return true
}

// pythonString escapes s for the inside of a double-quoted Python string
// literal that is itself inside shell single quotes: no quote of either
// kind and no line break appear, so shlex passes it through unchanged and
// literal_eval gives back s.
func pythonString(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\'' || r == '"' || r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && isSpace(r):
			// Line breaks to Python's str.splitlines; spaces would do no
			// harm inside the quotes but are invisible.
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isSpace reports the non-ASCII runes Python's str.split and shlex take
// for white space (a line or field break in ansible's parser).
func isSpace(r rune) bool {
	switch r {
	case 0x85, 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}

// Document returns the inventory in ansible's JSON inventory shape, as
// an inventory script prints it for --list:
//
//	{"_meta": {"hostvars": {"vm0": {"ansible_host": "...", ...}}},
//	 "all": {"children": ["vm-type=default", ...]},
//	 "vm-type=default": {"hosts": ["vm0", ...]}, ...}
//
// The tree is of map[string]any, []any and strings, which core/output
// renders as JSON or YAML.
func (inv *Inventory) Document() map[string]any {
	hostvars := make(map[string]any, len(inv.Hosts))
	for _, h := range inv.Hosts {
		vars := make(map[string]any, len(h.Vars))
		for _, v := range h.Vars {
			vars[v.Name] = v.Value
		}
		hostvars[h.Name] = vars
	}
	children := []any{}
	all := map[string]any{}
	doc := map[string]any{"_meta": map[string]any{"hostvars": hostvars}, "all": all}
	for _, g := range inv.Groups {
		hosts := make([]any, len(g.Hosts))
		for i, h := range g.Hosts {
			hosts[i] = h
		}
		if g.Name == "all" {
			// groups: [all] lists hosts in all itself.
			all["hosts"] = hosts
			continue
		}
		children = append(children, g.Name)
		doc[g.Name] = map[string]any{"hosts": hosts}
	}
	all["children"] = children
	return doc
}

// MarshalJSON writes Document.
func (inv *Inventory) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(inv.Document())
	if err != nil {
		return nil, fmt.Errorf("marshal ansible inventory: %w", err)
	}
	return b, nil
}
