package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file writes YAML text the way the original Lago's yaml format did:
// PyYAML's yaml.dump with block style (default_flow_style=False), its
// default width of 80 columns, indent 2 and allow_unicode=False. Scripts
// grep that text, so the emitter below is a port of the parts of PyYAML's
// Emitter a document tree needs (block mappings and sequences, empty
// collections as {} and [], plain, single- and double-quoted scalars)
// rather than a generic YAML library, whose quoting and indentation differ:
//
//   - a string that would read back as another type when plain (123456,
//     yes, null, 1.5, 2020-01-02, ~, '') or that has leading or trailing
//     spaces, indicators or line breaks is single-quoted: '123456', '';
//   - only control characters, tabs and non-ASCII text (PyYAML's default
//     allow_unicode=False) force double quotes, with \t, \xE9, \u2028...;
//   - a sequence that is a mapping's value is not indented ("key:\n- a");
//   - a long line is folded at a single space past column 80.
//
// The resolver rules are PyYAML's YAML 1.1 ones, not YAML 1.2's: "1e3" is
// a plain string there, "0o17" too, while "0x1F", "1_000", "on" and "1:20"
// are not.

const (
	yamlIndent = 2
	yamlWidth  = 80
)

// YAML renders doc as the original's `-f yaml` output (see the comment at
// the top of this file): block style, keys in byte order, empty values
// kept (an empty string as a pair of single quotes, {} and []).
func YAML(doc any) ([]byte, error) {
	e := &yamlEmitter{indent: -1, whitespace: true, indention: true}
	if err := e.node(doc, nodeContext{root: true}); err != nil {
		return nil, err
	}
	// Document end (PyYAML's expect_document_end), then stream end: a
	// plain scalar at the root leaves the document open, closed by "...".
	e.writeIndent()
	if e.openEnded {
		e.writeIndicator("...", true, false, false)
		e.writeIndent()
	}
	return e.b.Bytes(), nil
}

// yamlEmitter is PyYAML's Emitter state: indent is -1 for None.
type yamlEmitter struct {
	b           bytes.Buffer
	column      int
	indent      int
	indents     []int
	whitespace  bool
	indention   bool
	openEnded   bool
	rootContext bool
}

// nodeContext is what PyYAML's expect_node is told about a node's place.
type nodeContext struct {
	root, mapping, simpleKey bool
}

func (e *yamlEmitter) node(v any, c nodeContext) error {
	e.rootContext = c.root
	if es, ok := sortedMap(v); ok {
		if len(es) == 0 {
			e.emptyFlow("{", "}")
			return nil
		}
		return e.blockMapping(es)
	}
	if items, ok := listItems(v); ok {
		if len(items) == 0 {
			e.emptyFlow("[", "]")
			return nil
		}
		return e.blockSequence(items, c)
	}
	s, isStr, err := yamlScalar(v)
	if err != nil {
		return err
	}
	if s == nil {
		// Neither a scalar nor a collection: render what it marshals to.
		t, err := jsonTree(v)
		if err != nil {
			return err
		}
		return e.node(t, c)
	}
	e.scalar(*s, isStr, c)
	return nil
}

// emptyFlow writes an empty collection: PyYAML's flow sequence or mapping
// with no items.
func (e *yamlEmitter) emptyFlow(open, closing string) {
	e.writeIndicator(open, true, true, false)
	e.increaseIndent(true, false)
	e.popIndent()
	e.writeIndicator(closing, false, false, false)
}

func (e *yamlEmitter) blockMapping(es []entry) error {
	e.increaseIndent(false, false)
	for _, en := range es {
		e.writeIndent()
		if simpleKey(en.key) {
			e.scalar(en.key, true, nodeContext{mapping: true, simpleKey: true})
			e.writeIndicator(":", false, false, false)
		} else {
			// A complex key: "? key" then ": value" on the next line.
			e.writeIndicator("?", true, false, true)
			e.scalar(en.key, true, nodeContext{mapping: true})
			e.writeIndent()
			e.writeIndicator(":", true, false, true)
		}
		if err := e.node(en.val, nodeContext{mapping: true}); err != nil {
			return fmt.Errorf("key %q: %w", en.key, err)
		}
	}
	e.popIndent()
	return nil
}

// simpleKey is PyYAML's check_simple_key for a string key: not empty, on
// one line and, with its "!!str" tag, under 128 characters.
func simpleKey(k string) bool {
	a := analyzeScalar(k)
	return !a.empty && !a.multiline && utf8.RuneCountInString(k)+len("!!str") < 128
}

func (e *yamlEmitter) blockSequence(items []any, c nodeContext) error {
	// A sequence that is a mapping's value is written at the key's indent.
	e.increaseIndent(false, c.mapping && !e.indention)
	for i, it := range items {
		e.writeIndent()
		e.writeIndicator("-", true, false, true)
		if err := e.node(it, nodeContext{}); err != nil {
			return fmt.Errorf("item %d: %w", i, err)
		}
	}
	e.popIndent()
	return nil
}

func (e *yamlEmitter) scalar(s string, isStr bool, c nodeContext) {
	e.rootContext = c.root
	e.increaseIndent(true, false)
	defer e.popIndent()
	a := analyzeScalar(s)
	// A non-string scalar is written as its representation, which always
	// reads back as its own type when plain.
	plainImplicit := !isStr || resolvesToStr(s)
	split := !c.simpleKey
	text := []rune(s)
	switch {
	case plainImplicit && !(c.simpleKey && (a.empty || a.multiline)) && a.allowBlockPlain:
		e.writePlain(text, split)
	case a.allowSingle && !(c.simpleKey && a.multiline):
		e.writeSingleQuoted(text, split)
	default:
		e.writeDoubleQuoted(text, split)
	}
}

func (e *yamlEmitter) increaseIndent(flow, indentless bool) {
	e.indents = append(e.indents, e.indent)
	switch {
	case e.indent < 0 && flow:
		e.indent = yamlIndent
	case e.indent < 0:
		e.indent = 0
	case !indentless:
		e.indent += yamlIndent
	}
}

func (e *yamlEmitter) popIndent() {
	e.indent = e.indents[len(e.indents)-1]
	e.indents = e.indents[:len(e.indents)-1]
}

func (e *yamlEmitter) write(s string) {
	e.column += utf8.RuneCountInString(s)
	e.b.WriteString(s)
}

func (e *yamlEmitter) writeIndicator(ind string, needWhitespace, whitespace, indention bool) {
	if !e.whitespace && needWhitespace {
		ind = " " + ind
	}
	e.whitespace = whitespace
	e.indention = e.indention && indention
	e.openEnded = false
	e.write(ind)
}

func (e *yamlEmitter) writeIndent() {
	indent := max(e.indent, 0)
	if !e.indention || e.column > indent || (e.column == indent && !e.whitespace) {
		e.writeLineBreak("\n")
	}
	if e.column < indent {
		e.whitespace = true
		e.write(strings.Repeat(" ", indent-e.column))
	}
}

func (e *yamlEmitter) writeLineBreak(br string) {
	e.whitespace = true
	e.indention = true
	e.column = 0
	e.b.WriteString(br)
}

// writePlain is PyYAML's write_plain for a one-line scalar (plain style is
// never chosen for one with line breaks).
func (e *yamlEmitter) writePlain(text []rune, split bool) {
	if e.rootContext {
		e.openEnded = true
	}
	if len(text) == 0 {
		return
	}
	if !e.whitespace {
		e.write(" ")
	}
	e.whitespace, e.indention = false, false
	spaces := false
	start := 0
	for end := 0; end <= len(text); end++ {
		ch := rune(-1)
		if end < len(text) {
			ch = text[end]
		}
		if spaces {
			if ch != ' ' {
				if start+1 == end && e.column > yamlWidth && split {
					e.writeIndent()
					e.whitespace, e.indention = false, false
				} else {
					e.write(string(text[start:end]))
				}
				start = end
			}
		} else if ch == -1 || ch == ' ' {
			e.write(string(text[start:end]))
			start = end
		}
		if ch != -1 {
			spaces = ch == ' '
		}
	}
}

// writeSingleQuoted is PyYAML's write_single_quoted: ' doubled, a line
// break written twice (a single one would fold into a space).
func (e *yamlEmitter) writeSingleQuoted(text []rune, split bool) {
	e.writeIndicator("'", true, false, false)
	spaces, breaks := false, false
	start := 0
	for end := 0; end <= len(text); end++ {
		ch := rune(-1)
		if end < len(text) {
			ch = text[end]
		}
		switch {
		case spaces:
			if ch != ' ' {
				if start+1 == end && e.column > yamlWidth && split && start != 0 && end != len(text) {
					e.writeIndent()
				} else {
					e.write(string(text[start:end]))
				}
				start = end
			}
		case breaks:
			if ch == -1 || !isLineBreak(ch) {
				if text[start] == '\n' {
					e.writeLineBreak("\n")
				}
				for _, br := range text[start:end] {
					e.writeLineBreak(string(br))
				}
				e.writeIndent()
				start = end
			}
		default:
			if ch == -1 || ch == ' ' || isLineBreak(ch) || ch == '\'' {
				if start < end {
					e.write(string(text[start:end]))
					start = end
				}
			}
		}
		if ch == '\'' {
			e.write("''")
			start = end + 1
		}
		if ch != -1 {
			spaces = ch == ' '
			breaks = isLineBreak(ch)
		}
	}
	e.writeIndicator("'", false, false, false)
}

var yamlEscapes = map[rune]string{
	0: "0", 0x07: "a", 0x08: "b", 0x09: "t", 0x0A: "n", 0x0B: "v", 0x0C: "f", 0x0D: "r", 0x1B: "e",
	'"': "\"", '\\': "\\", 0x85: "N", 0xA0: "_", 0x2028: "L", 0x2029: "P",
}

// writeDoubleQuoted is PyYAML's write_double_quoted with allow_unicode off:
// everything but printable ASCII is escaped.
func (e *yamlEmitter) writeDoubleQuoted(text []rune, split bool) {
	e.writeIndicator("\"", true, false, false)
	start := 0
	for end := 0; end <= len(text); end++ {
		ch := rune(-1)
		if end < len(text) {
			ch = text[end]
		}
		if ch == -1 || ch == '"' || ch == '\\' || ch < 0x20 || ch > 0x7E {
			if start < end {
				e.write(string(text[start:end]))
				start = end
			}
			if ch != -1 {
				var data string
				switch esc, ok := yamlEscapes[ch]; {
				case ok:
					data = `\` + esc
				case ch <= 0xFF:
					data = fmt.Sprintf(`\x%02X`, ch)
				case ch <= 0xFFFF:
					data = fmt.Sprintf(`\u%04X`, ch)
				default:
					data = fmt.Sprintf(`\U%08X`, ch)
				}
				e.write(data)
				start = end + 1
			}
		}
		if end > 0 && end < len(text)-1 && (ch == ' ' || start >= end) &&
			e.column+(end-start) > yamlWidth && split {
			data := string(text[start:max(end, start)]) + `\`
			if start < end {
				start = end
			}
			e.write(data)
			e.writeIndent()
			e.whitespace, e.indention = false, false
			if text[start] == ' ' {
				e.write(`\`)
			}
		}
	}
	e.writeIndicator("\"", false, false, false)
}

func isLineBreak(r rune) bool { return r == '\n' || r == 0x85 || r == 0x2028 || r == 0x2029 }

func isBlankOrBreak(r rune) bool {
	return r == 0 || r == ' ' || r == '\t' || r == '\r' || isLineBreak(r)
}

// scalarAnalysis is the part of PyYAML's ScalarAnalysis block style uses.
type scalarAnalysis struct {
	empty, multiline bool
	allowBlockPlain  bool
	allowSingle      bool
}

// analyzeScalar is PyYAML's analyze_scalar with allow_unicode off (only the
// answers for block context are kept).
func analyzeScalar(s string) scalarAnalysis {
	if s == "" {
		return scalarAnalysis{empty: true, allowBlockPlain: true, allowSingle: true}
	}
	r := []rune(s)
	blockIndicators := strings.HasPrefix(s, "---") || strings.HasPrefix(s, "...")
	var lineBreaks, special, leadingSpace, leadingBreak, trailingSpace, trailingBreak, breakSpace, spaceBreak bool
	precededByWhitespace := true
	followedByWhitespace := len(r) == 1 || isBlankOrBreak(r[1])
	previousSpace, previousBreak := false, false
	for i, ch := range r {
		if i == 0 {
			if strings.ContainsRune("#,[]{}&*!|>'\"%@`", ch) {
				blockIndicators = true
			}
			if (ch == '?' || ch == ':' || ch == '-') && followedByWhitespace {
				blockIndicators = true
			}
		} else {
			if ch == ':' && followedByWhitespace {
				blockIndicators = true
			}
			if ch == '#' && precededByWhitespace {
				blockIndicators = true
			}
		}
		if isLineBreak(ch) {
			lineBreaks = true
		}
		if ch != '\n' && (ch < 0x20 || ch > 0x7E) {
			special = true
		}
		switch {
		case ch == ' ':
			leadingSpace = leadingSpace || i == 0
			trailingSpace = trailingSpace || i == len(r)-1
			breakSpace = breakSpace || previousBreak
			previousSpace, previousBreak = true, false
		case isLineBreak(ch):
			leadingBreak = leadingBreak || i == 0
			trailingBreak = trailingBreak || i == len(r)-1
			spaceBreak = spaceBreak || previousSpace
			previousSpace, previousBreak = false, true
		default:
			previousSpace, previousBreak = false, false
		}
		precededByWhitespace = isBlankOrBreak(ch)
		followedByWhitespace = i+2 >= len(r) || isBlankOrBreak(r[i+2])
	}
	a := scalarAnalysis{multiline: lineBreaks, allowBlockPlain: true, allowSingle: true}
	if leadingSpace || leadingBreak || trailingSpace || trailingBreak {
		a.allowBlockPlain = false
	}
	if breakSpace {
		a.allowBlockPlain, a.allowSingle = false, false
	}
	if spaceBreak || special {
		a.allowBlockPlain, a.allowSingle = false, false
	}
	if lineBreaks || blockIndicators {
		a.allowBlockPlain = false
	}
	return a
}

// yaml11Implicit are PyYAML's implicit resolvers: a plain scalar matching
// one reads back as bool, float, int, merge, null, timestamp, value or yaml.
var yaml11Implicit = []*regexp.Regexp{
	regexp.MustCompile(`^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`),
	regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`),
	regexp.MustCompile(`^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`),
	regexp.MustCompile(`^(?:<<)$`),
	regexp.MustCompile(`^(?:~|null|Null|NULL|)$`),
	regexp.MustCompile(`^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$`),
	regexp.MustCompile(`^(?:=)$`),
	regexp.MustCompile(`^(?:!|&|\*)$`),
}

// resolvesToStr reports whether s, written plain, reads back as a string.
func resolvesToStr(s string) bool {
	for _, re := range yaml11Implicit {
		if re.MatchString(s) {
			return false
		}
	}
	return true
}

// yamlScalar returns the text of a scalar as PyYAML's SafeRepresenter
// writes it and whether it is a string; nil when v is no scalar.
func yamlScalar(v any) (*string, bool, error) {
	text := func(s string) *string { return &s }
	switch x := v.(type) {
	case nil:
		return text("null"), false, nil
	case string:
		return text(x), true, nil
	case json.Number:
		if !strings.ContainsAny(x.String(), ".eE") {
			if i, err := strconv.ParseInt(x.String(), 10, 64); err == nil {
				return text(strconv.FormatInt(i, 10)), false, nil
			}
			return text(x.String()), false, nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, false, fmt.Errorf("number %q: %w", x, err)
		}
		return text(pyFloat(f)), false, nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return text(rv.String()), true, nil
	case reflect.Bool:
		return text(strconv.FormatBool(rv.Bool())), false, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return text(strconv.FormatInt(rv.Int(), 10)), false, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return text(strconv.FormatUint(rv.Uint(), 10)), false, nil
	case reflect.Float32, reflect.Float64:
		return text(pyFloat(rv.Float())), false, nil
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return text("null"), false, nil
		}
	}
	return nil, false, nil
}

// pyFloat is PyYAML's represent_float: Python's repr, lower case, with a
// ".0" before an exponent that has no fraction.
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return ".nan"
	case math.IsInf(f, 1):
		return ".inf"
	case math.IsInf(f, -1):
		return "-.inf"
	}
	sci := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(sci, "e")
	e, _ := strconv.Atoi(exp)
	if e >= -4 && e < 16 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	return mant + "e" + exp
}

// jsonTree turns a value that is neither a map, a list nor a scalar (a
// struct, a time) into the tree its JSON encoding describes.
func jsonTree(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T as yaml: %w", v, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	t, err := decodeValue(dec)
	if err != nil {
		return nil, fmt.Errorf("encode %T as yaml: %w", v, err)
	}
	if _, isStruct := t.(*Map); isStruct {
		// A struct's fields sort like the original's dict keys.
		return Sorted(t), nil
	}
	return t, nil
}
