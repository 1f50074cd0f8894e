package config

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/lago-go/lago/core/errs"
)

// iniEntry is one `key = value` line of an INI file.
type iniEntry struct {
	Section string // section header as written, lower-cased kind ("provider remote")
	Key     string // lower-cased, as Python's configparser does
	Value   string
	Line    int
}

// iniSection is one `[section]` header.
type iniSection struct {
	Name string
	Line int
}

// iniFile is a parsed INI file: its sections and entries in file order.
type iniFile struct {
	Path     string
	Sections []iniSection
	Entries  []iniEntry
}

// parseINI reads the INI dialect of lago.conf: `[section]` headers,
// `key = value` or `key: value` lines, whole-line comments starting with '#'
// or ';', blank lines. Keys are lower-cased. Every malformed line is a Lago
// error naming path:line, because a silently ignored line in a config file is
// a setting the user believes is in effect.
func parseINI(path string, r io.Reader) (*iniFile, error) {
	f := &iniFile{Path: path}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	section := ""
	seen := map[string]int{} // section+"\x00"+key -> line
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		if n == 1 {
			raw = strings.TrimPrefix(raw, "\ufeff")
		}
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			if line[len(line)-1] != ']' {
				return nil, errs.Userf("%s:%d: malformed section header %q: missing ']'", path, n, line)
			}
			name := normalizeSection(line[1 : len(line)-1])
			if name == "" {
				return nil, errs.Userf("%s:%d: empty section name", path, n)
			}
			section = name
			f.Sections = append(f.Sections, iniSection{Name: name, Line: n})
			continue
		}
		if raw[0] == ' ' || raw[0] == '\t' {
			return nil, errs.Userf("%s:%d: malformed line %q: continuation lines are not supported; put the value on one line", path, n, line)
		}
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			return nil, errs.Userf("%s:%d: malformed line %q: want `key = value`", path, n, line)
		}
		key := strings.ToLower(strings.TrimSpace(line[:i]))
		if key == "" {
			return nil, errs.Userf("%s:%d: malformed line %q: empty key", path, n, line)
		}
		if section == "" {
			return nil, errs.Userf("%s:%d: key %q appears before any [section] header", path, n, key)
		}
		id := section + "\x00" + key
		if prev, dup := seen[id]; dup {
			return nil, errs.Userf("%s:%d: key %q of [%s] is already set on line %d", path, n, key, section, prev)
		}
		seen[id] = n
		f.Entries = append(f.Entries, iniEntry{Section: section, Key: key, Value: strings.TrimSpace(line[i+1:]), Line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return f, nil
}

// normalizeSection lower-cases the kind of a section and collapses the
// blanks between kind and instance name: "[Provider  Remote]" becomes
// "provider Remote" (instance names keep their case).
func normalizeSection(s string) string {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return ""
	}
	fields[0] = strings.ToLower(fields[0])
	return strings.Join(fields, " ")
}
