package output

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// TestYAMLQuoting: strings are quoted as PyYAML's yaml.dump quoted them in
// the original's `-f yaml` output: single quotes when the plain text would
// read back as another YAML 1.1 type or cannot be plain, double quotes only
// for what single quotes cannot hold.
func TestYAMLQuoting(t *testing.T) {
	tests := []struct {
		name string
		val  any
		want string
	}{
		{"plain word", "down", "k: down\n"},
		{"plain path", "/path/to/.lago/default", "k: /path/to/.lago/default\n"},
		{"plain ip", "192.168.201.1", "k: 192.168.201.1\n"},
		{"plain with spaces and commas", "clean, configured", "k: clean, configured\n"},
		{"digits would be an int", "123456", "k: '123456'\n"},
		{"empty string would be null", "", "k: ''\n"},
		{"yes would be a bool", "yes", "k: 'yes'\n"},
		{"On would be a bool", "On", "k: 'On'\n"},
		{"null word", "null", "k: 'null'\n"},
		{"tilde", "~", "k: '~'\n"},
		{"float", "1.5", "k: '1.5'\n"},
		{"hex int", "0x1F", "k: '0x1F'\n"},
		{"sexagesimal int", "1:20", "k: '1:20'\n"},
		{"date", "2001-12-14", "k: '2001-12-14'\n"},
		{"1e3 is a string in YAML 1.1", "1e3", "k: 1e3\n"},
		{"09 is no octal", "09", "k: 09\n"},
		{"leading space", " a", "k: ' a'\n"},
		{"trailing space", "a ", "k: 'a '\n"},
		{"indicator first", "*a", "k: '*a'\n"},
		{"colon space", "a: b", "k: 'a: b'\n"},
		{"comment", "a #b", "k: 'a #b'\n"},
		{"single quote doubled", "'q'", "k: '''q'''\n"},
		{"apostrophe inside stays plain", "it's", "k: it's\n"},
		{"line break written twice", "a\nb", "k: 'a\n\n  b'\n"},
		{"tab forces double quotes", "a\tb", "k: \"a\\tb\"\n"},
		{"non-ASCII escaped", "café", "k: \"caf\\xE9\"\n"},
		{"control char", "\x1b[0m", "k: \"\\e[0m\"\n"},
		{"bool", true, "k: true\n"},
		{"int", 8080, "k: 8080\n"},
		{"float value", 3.0, "k: 3.0\n"},
		{"null", nil, "k: null\n"},
		{"empty list", []any{}, "k: []\n"},
		{"empty map", map[string]any{}, "k: {}\n"},
		{"list not indented under its key", []any{"a.sh", "123"}, "k:\n- a.sh\n- '123'\n"},
		{"map in list", []any{map[string]any{"b": "1", "a": "x"}}, "k:\n- a: x\n  b: '1'\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := YAML(map[string]any{"k": tt.val})
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("YAML = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestYAMLKeys(t *testing.T) {
	tests := []struct {
		name string
		key  string
		want string
	}{
		{"plain key with a space", "root password", "root password: v\n"},
		{"digit key quoted", "123", "'123': v\n"},
		{"empty key is a complex key", "", "? ''\n: v\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := YAML(map[string]any{tt.key: "v"})
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("YAML = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestYAMLMatchesPyYAML compares with the text PyYAML wrote for the
// documents of testdata/yaml-pyyaml.json (gen-yaml-pyyaml.py): quoting,
// escapes, folding past column 80, complex keys, nested lists.
func TestYAMLMatchesPyYAML(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "yaml-pyyaml.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Cases []struct {
			Doc  Map    `json:"doc"`
			YAML string `json:"yaml"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Cases) < 100 {
		t.Fatalf("only %d cases in yaml-pyyaml.json", len(file.Cases))
	}
	for i, c := range file.Cases {
		got, err := YAML(&c.Doc)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if string(got) != c.YAML {
			doc, _ := JSON(&c.Doc)
			t.Errorf("case %d %s:\n got %q\nwant %q", i, doc, got, c.YAML)
		}
	}
}

func TestPyFloat(t *testing.T) {
	tests := []struct {
		f    float64
		want string
	}{
		{3, "3.0"}, {1.5, "1.5"}, {math.Copysign(0, -1), "-0.0"}, {1e15, "1000000000000000.0"}, {1e16, "1.0e+16"},
		{1.5e17, "1.5e+17"}, {0.0001, "0.0001"}, {1e-5, "1.0e-05"},
	}
	for _, tt := range tests {
		if got := pyFloat(tt.f); got != tt.want {
			t.Errorf("pyFloat(%v) = %q, want %q", tt.f, got, tt.want)
		}
	}
}
