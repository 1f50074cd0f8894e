package output

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lago-go/lago/core/errs"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// statusDoc is the status example of lago-behaviour.md, plus the empty
// "metadata" and "snapshots" the original adds per VM (skipped by default
// and flat, kept by yaml).
func statusDoc() map[string]any {
	return map[string]any{
		"Prefix": map[string]any{
			"Base directory": "/path/to/.lago/default",
			"UUID":           "fe689d3c39d011e5b22b54ee755a00ca",
			"Networks": map[string]any{
				"n0": map[string]any{
					"gateway":    "192.168.201.1",
					"management": true,
					"status":     "down",
				},
			},
			"VMs": map[string]any{
				"vm0": map[string]any{
					"NICs": map[string]any{
						"eth0": map[string]any{"ip": "192.168.201.2", "network": "n0"},
					},
					"distro":        "cirros",
					"root password": "123456",
					"status":        "down",
					"metadata":      map[string]any{},
					"snapshots":     "",
				},
			},
		},
	}
}

// metadataDoc is a status tree whose VMs carry the values the list and
// empty-value rules are about: deploy-scripts (a list of strings), an
// empty list, an empty string, a list in a nested map, an empty map, a
// null, a list holding a map and a list, and a VM with snapshots.
func metadataDoc() map[string]any {
	doc := statusDoc()
	vms := doc["Prefix"].(map[string]any)["VMs"].(map[string]any)
	vm0 := vms["vm0"].(map[string]any)
	vm0["metadata"] = map[string]any{
		"deploy-scripts": []any{"$LAGO_PREFIX_PATH/scripts/a.sh", "b.sh"},
		"empty-list":     []any{},
		"empty-string":   "",
		"empty-map":      map[string]any{},
		"unset":          nil,
		"port":           8080,
		"enabled":        false,
		"nested": map[string]any{
			"groups": []any{"web", "db"},
			"deeper": map[string]any{"tags": []any{"x"}},
		},
		"mixed": []any{"plain", map[string]any{"k": "v", "j": "w"}, []any{"in", "ner"}, map[string]any{}, "", nil, true},
	}
	vms["vm1"] = map[string]any{
		"NICs":          map[string]any{"eth0": map[string]any{"ip": "192.168.201.3", "network": "n0"}},
		"distro":        "el7",
		"root password": "yes",
		"status":        "running",
		"metadata":      map[string]any{},
		"snapshots":     "clean, configured",
	}
	return doc
}

// The exact block of lago-behaviour.md "status output".
const behaviourDefault = `[Prefix]:
    Base directory: /path/to/.lago/default
    [Networks]:
        [n0]:
            gateway: 192.168.201.1
            management: True
            status: down
    UUID: fe689d3c39d011e5b22b54ee755a00ca
    [VMs]:
        [vm0]:
            [NICs]:
                [eth0]:
                    ip: 192.168.201.2
                    network: n0
            distro: cirros
            root password: 123456
            status: down
`

func TestDefaultMatchesBehaviourDoc(t *testing.T) {
	if got := string(Default(statusDoc())); got != behaviourDefault {
		t.Fatalf("default format differs from the documented example:\n%s", got)
	}
}

// TestGolden renders each document in every built-in format and compares
// with testdata/<doc>.<format>.golden (go test -update rewrites them). The
// same tree as an ordered document in a scrambled key order must render
// identically: built-in formats sort.
func TestGolden(t *testing.T) {
	for docName, doc := range map[string]map[string]any{"status": statusDoc(), "status-metadata": metadataDoc()} {
		var ordered Map
		raw, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &ordered); err != nil {
			t.Fatal(err)
		}
		variants := map[string]any{"map": doc, "ordered": &ordered}
		for _, name := range BuiltinNames() {
			for variant, d := range variants {
				t.Run(docName+"/"+name+"/"+variant, func(t *testing.T) {
					f, _ := Builtin(name)
					got, err := f.Format(context.Background(), d)
					if err != nil {
						t.Fatal(err)
					}
					golden := filepath.Join("testdata", docName+"."+name+".golden")
					if *update && variant == "map" {
						if err := os.WriteFile(golden, got, 0o644); err != nil {
							t.Fatal(err)
						}
					}
					want, err := os.ReadFile(golden)
					if err != nil {
						t.Fatal(err)
					}
					if string(got) != string(want) {
						t.Errorf("%s output differs from %s:\n--- got\n%s--- want\n%s", name, golden, got, want)
					}
				})
			}
		}
	}
}

func TestDefaultScalars(t *testing.T) {
	tests := []struct {
		name string
		doc  any
		want string
	}{
		{"false is shown", map[string]any{"b": false}, "b: False\n"},
		{"zero is shown", map[string]any{"n": 0}, "n: 0\n"},
		{"float integral", map[string]any{"n": float64(3)}, "n: 3\n"},
		{"json number", map[string]any{"n": json.Number("42")}, "n: 42\n"},
		{"empty skipped", map[string]any{"a": "", "b": nil, "d": map[string]any{}}, ""},
		{"byte order", map[string]any{"b": "1", "B": "2", "a": "3"}, "B: 2\na: 3\nb: 1\n"},
		{"list one item a line", map[string]any{"l": []string{"x", "y"}}, "l: \n    x\n    y\n"},
		{"empty list keeps its key", map[string]any{"l": []any{}, "z": "1"}, "l: \nz: 1\n"},
		{"list in nested map", map[string]any{"m": map[string]any{"l": []any{"a"}}}, "[m]:\n    l: \n        a\n"},
		{"list item null and empty", map[string]any{"l": []any{nil, "", true}}, "l: \n    None\n    \n    True\n"},
		{"list of maps", map[string]any{"l": []any{map[string]any{"k": "v", "j": "w"}}}, "l: \n    j: w\n    k: v\n"},
		{"map in list has headers", map[string]any{"l": []any{map[string]any{"m": map[string]any{"k": "v"}}}}, "l: \n    [m]:\n        k: v\n"},
		{"empty map item", map[string]any{"l": []any{map[string]any{}}}, "l: \n    \n"},
		{"list of lists", map[string]any{"l": []any{[]any{"a", "b"}, "c"}}, "l: \n    a\n    b\n    c\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(Default(tt.doc)); got != tt.want {
				t.Errorf("Default() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFlat(t *testing.T) {
	tests := []struct {
		name string
		doc  any
		want string
	}{
		{"strips single top level", map[string]any{"Prefix": map[string]any{"a": map[string]any{"b": "c"}}}, "a/b: c\n"},
		{"keeps several top levels", map[string]any{"x": map[string]any{"a": "1"}, "y": "2"}, "x/a: 1\ny: 2\n"},
		{"list items share the list's path", map[string]any{"k": []any{"a", "b"}, "z": true}, "k: a\nk: b\nz: True\n"},
		{"empty string printed", map[string]any{"a": "", "b": "x"}, "a: \nb: x\n"},
		{"null printed as None", map[string]any{"a": nil}, "a: None\n"},
		{"empty map and list print nothing", map[string]any{"a": map[string]any{}, "b": []any{}, "c": "1"}, "c: 1\n"},
		{"list in nested map", map[string]any{"m": map[string]any{"l": []any{"x", "y"}}, "n": "1"}, "m/l: x\nm/l: y\nn: 1\n"},
		{"map in list extends the path", map[string]any{"l": []any{map[string]any{"k": "v"}, []any{"w"}}, "z": "1"}, "l/k: v\nl: w\nz: 1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(Flat(tt.doc)); got != tt.want {
				t.Errorf("Flat() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMapJSONKeepsOrder(t *testing.T) {
	m := NewMap().Set("z", 1).Set("a", NewMap().Set("y", true).Set("b", "s")).Set("m", []any{"x"})
	b, err := JSON(m)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"z":1,"a":{"y":true,"b":"s"},"m":["x"]}`
	if string(b) != want {
		t.Fatalf("JSON = %s, want %s", b, want)
	}
	var back Map
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(back.Keys(), ","); got != "z,a,m" {
		t.Fatalf("round trip keys = %s", got)
	}
	sorted, _ := JSON(Sorted(m))
	if string(sorted) != `{"a":{"b":"s","y":true},"m":["x"],"z":1}` {
		t.Fatalf("Sorted JSON = %s", sorted)
	}
}

type fakePlugins struct {
	names []string
	got   []byte
}

func (f *fakePlugins) OutputNames() ([]string, error) { return f.names, nil }
func (f *fakePlugins) Output(_ context.Context, name string) (PluginFormat, error) {
	return fakeFormat{f}, nil
}

type fakeFormat struct{ p *fakePlugins }

func (f fakeFormat) Format(_ context.Context, doc []byte) ([]byte, error) {
	f.p.got = doc
	return []byte("rendered\n"), nil
}

func TestLookup(t *testing.T) {
	ctx := context.Background()
	plugins := &fakePlugins{names: []string{"json", "toml"}}
	if _, err := Lookup(ctx, "yaml", nil); err != nil {
		t.Fatalf("builtin yaml: %v", err)
	}
	f, err := Lookup(ctx, "json", plugins)
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.Format(ctx, NewMap().Set("b", 1).Set("a", 2))
	if err != nil || string(out) != "rendered\n" {
		t.Fatalf("plugin format = %q, %v", out, err)
	}
	if string(plugins.got) != `{"b":1,"a":2}` {
		t.Fatalf("plugin received %s", plugins.got)
	}
	_, err = Lookup(ctx, "xml", plugins)
	if err == nil || !errs.IsUser(err) {
		t.Fatalf("unknown format: err = %v, want a Lago error", err)
	}
	for _, n := range []string{"default", "flat", "json", "toml", "yaml"} {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error %q does not list %q", err, n)
		}
	}
}
