package env

import (
	"encoding/xml"
	"fmt"
	"sort"
	"strings"
)

// cpuCustomXML renders an init file's cpu_custom (the <cpu> element written
// in YAML the way Python's xmltodict reads XML: "@name" keys are
// attributes, "#text" is the text, other keys are child elements, lists
// repeat an element) as the XML the provider receives verbatim.
func cpuCustomXML(custom map[string]any) (string, error) {
	if len(custom) == 0 {
		return "", nil
	}
	var b strings.Builder
	if err := writeXMLElement(&b, "cpu", custom); err != nil {
		return "", fmt.Errorf("cpu_custom: %w", err)
	}
	return b.String(), nil
}

func writeXMLElement(b *strings.Builder, name string, v any) error {
	if list, ok := v.([]any); ok {
		for _, item := range list {
			if err := writeXMLElement(b, name, item); err != nil {
				return err
			}
		}
		return nil
	}
	b.WriteString("<" + name)
	m, isMap := v.(map[string]any)
	if !isMap {
		b.WriteString(">")
		if err := escapeText(b, v); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		b.WriteString("</" + name + ">")
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if attr, ok := strings.CutPrefix(k, "@"); ok {
			b.WriteString(" " + attr + `="`)
			if err := escapeText(b, m[k]); err != nil {
				return fmt.Errorf("%s@%s: %w", name, attr, err)
			}
			b.WriteString(`"`)
		}
	}
	b.WriteString(">")
	if t, ok := m["#text"]; ok {
		if err := escapeText(b, t); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	for _, k := range keys {
		if strings.HasPrefix(k, "@") || k == "#text" {
			continue
		}
		if err := writeXMLElement(b, k, m[k]); err != nil {
			return err
		}
	}
	b.WriteString("</" + name + ">")
	return nil
}

func escapeText(b *strings.Builder, v any) error {
	switch v.(type) {
	case map[string]any, []any:
		return fmt.Errorf("a value where text was expected")
	case nil:
		return nil
	}
	return xml.EscapeText(b, []byte(fmt.Sprint(v)))
}
