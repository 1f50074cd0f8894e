package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// BuildStep is one entry of a disk's build list, such as
// {virt-customize: {ssh-inject: ”, touch: [/a, /b]}}. Options keep the
// order the user wrote them in, because virt-customize applies its options
// in command-line order.
type BuildStep struct {
	// Builder is the builder's name ("virt-customize").
	Builder string
	Options []BuildOption
}

// BuildOption is one option of a build step. A list value repeats the
// option once per element; an empty string means a flag without argument
// (except ssh-inject, where it means the prefix's key).
type BuildOption struct {
	Name   string
	Values []string
	// IsList records that the user wrote a list, so it is written back as one.
	IsList bool
}

// MarshalJSON writes {"<builder>": {"<option>": value, ...}} in order.
func (s BuildStep) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	name, err := json.Marshal(s.Builder)
	if err != nil {
		return nil, err
	}
	b.WriteByte('{')
	b.Write(name)
	b.WriteString(":{")
	for i, o := range s.Options {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(o.Name)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		var v []byte
		switch {
		case o.IsList:
			vals := o.Values
			if vals == nil {
				vals = []string{}
			}
			v, err = json.Marshal(vals)
		case len(o.Values) == 0:
			v, err = json.Marshal("")
		default:
			v, err = json.Marshal(o.Values[0])
		}
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteString("}}")
	return b.Bytes(), nil
}

// UnmarshalJSON reads {"<builder>": {"<option>": value, ...}} keeping the
// order of the options.
func (s *BuildStep) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := expectDelim(dec, '{'); err != nil {
		return fmt.Errorf("decode build step: %w", err)
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("decode build step: %w", err)
	}
	name, ok := tok.(string)
	if !ok {
		return fmt.Errorf("decode build step: want one builder name, got %v", tok)
	}
	*s = BuildStep{Builder: name}
	if err := expectDelim(dec, '{'); err != nil {
		return fmt.Errorf("decode build step %q: options must be a mapping: %w", name, err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("decode build step %q: %w", name, err)
		}
		opt := BuildOption{Name: tok.(string)}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("decode build step %q option %q: %w", name, opt.Name, err)
		}
		var list []any
		if err := json.Unmarshal(raw, &list); err == nil {
			opt.IsList = true
			for _, x := range list {
				opt.Values = append(opt.Values, ScalarString(x))
			}
		} else {
			var x any
			if err := json.Unmarshal(raw, &x); err != nil {
				return fmt.Errorf("decode build step %q option %q: %w", name, opt.Name, err)
			}
			if _, isMap := x.(map[string]any); isMap {
				return fmt.Errorf("decode build step %q option %q: want a string or a list", name, opt.Name)
			}
			opt.Values = []string{ScalarString(x)}
		}
		s.Options = append(s.Options, opt)
	}
	if err := expectDelim(dec, '}'); err != nil {
		return fmt.Errorf("decode build step %q: %w", name, err)
	}
	if dec.More() {
		return fmt.Errorf("decode build step %q: want exactly one builder per step", name)
	}
	return nil
}

// Args returns the builder's command-line arguments: --option value for
// each value, --option alone for an empty value.
func (s BuildStep) Args() []string {
	var out []string
	for _, o := range s.Options {
		if len(o.Values) == 0 || (len(o.Values) == 1 && o.Values[0] == "") {
			out = append(out, "--"+o.Name)
			continue
		}
		for _, v := range o.Values {
			out = append(out, "--"+o.Name, v)
		}
	}
	return out
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if got, ok := tok.(json.Delim); !ok || got != d {
		return fmt.Errorf("want %q, got %v", d, tok)
	}
	return nil
}

// ScalarString renders a decoded JSON/YAML scalar as the string a command
// line gets: nil is "", booleans are "true"/"false".
func ScalarString(x any) string {
	switch v := x.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case json.Number:
		return v.String()
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	default:
		return fmt.Sprint(v)
	}
}

// ParseSize parses a disk size such as "10G", "512M", "1.5T", "2048K",
// "10GiB" or a plain byte count, with binary (1024) units as qemu-img uses
// them. Case is ignored.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	t = strings.TrimSuffix(t, "IB")
	t = strings.TrimSuffix(t, "B")
	if t == "" {
		return 0, fmt.Errorf("parse size %q: empty", s)
	}
	mult := int64(1)
	switch t[len(t)-1] {
	case 'K':
		mult = 1 << 10
	case 'M':
		mult = 1 << 20
	case 'G':
		mult = 1 << 30
	case 'T':
		mult = 1 << 40
	}
	if mult != 1 {
		t = t[:len(t)-1]
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		if n <= 0 {
			return 0, fmt.Errorf("parse size %q: must be positive", s)
		}
		if n > (1<<62)/mult {
			return 0, fmt.Errorf("parse size %q: too large", s)
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f != f {
		return 0, fmt.Errorf("parse size %q: want a number with an optional K, M, G or T suffix", s)
	}
	if f <= 0 {
		return 0, fmt.Errorf("parse size %q: must be positive", s)
	}
	if f*float64(mult) > float64(int64(1)<<62) {
		return 0, fmt.Errorf("parse size %q: too large", s)
	}
	return int64(f * float64(mult)), nil
}
