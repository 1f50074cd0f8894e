package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
)

// render re-encodes a JSON document like Python's
// json.dumps(indent=4, ensure_ascii=True) plus a final newline: items one
// per line, `"key": value`, no trailing spaces, empty containers as {} and
// [], non-ASCII escaped as \uXXXX. Object keys keep the order they have in
// the input and numbers keep their literal text, which encoding/json's
// map-based round trip would lose.
func render(doc []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var b bytes.Buffer
	if err := value(dec, &b, 0); err != nil {
		return nil, fmt.Errorf("render json: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("render json: trailing data after the document")
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// value writes the next JSON value of dec at nesting depth.
func value(dec *json.Decoder, b *bytes.Buffer, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return container(dec, b, depth, '{', '}', true)
		case '[':
			return container(dec, b, depth, '[', ']', false)
		}
		return fmt.Errorf("unexpected %q", t)
	case string:
		writeString(b, t)
	case json.Number:
		b.WriteString(string(t))
	case bool:
		if t {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case nil:
		b.WriteString("null")
	default:
		return fmt.Errorf("unexpected token %v", t)
	}
	return nil
}

// container writes an object or array whose opening delimiter was read.
func container(dec *json.Decoder, b *bytes.Buffer, depth int, open, close byte, object bool) error {
	b.WriteByte(open)
	n := 0
	for dec.More() {
		if n > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
		b.WriteString(strings.Repeat("    ", depth+1))
		if object {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			key, ok := tok.(string)
			if !ok {
				return fmt.Errorf("object key %v is not a string", tok)
			}
			writeString(b, key)
			b.WriteString(": ")
		}
		if err := value(dec, b, depth+1); err != nil {
			return err
		}
		n++
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return err
	}
	if n > 0 {
		b.WriteByte('\n')
		b.WriteString(strings.Repeat("    ", depth))
	}
	b.WriteByte(close)
	return nil
}

// writeString quotes s as Python's json module does with ensure_ascii:
// the short escapes for \" \\ \n \r \t \b \f, \u00XX for other control
// characters and \uXXXX (surrogate pairs above the BMP) for non-ASCII.
func writeString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || (r > 0x7e && r < 0x10000):
			fmt.Fprintf(b, `\u%04x`, r)
		case r >= 0x10000:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(b, `\u%04x\u%04x`, r1, r2)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}
