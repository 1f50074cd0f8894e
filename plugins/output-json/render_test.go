package main

import (
	"context"
	"flag"
	"github.com/lago-go/lago/sdk/plugintest"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files (they were first made with Python's json.dumps)")

// TestGolden compares with output made by Python's
// json.dumps(doc, indent=4, sort_keys=True) + "\n" on the same document.
func TestGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "status.input.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := jsonFormat{}.Format(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "status.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("output differs from golden file\n--- got\n%s\n--- want\n%s", got, want)
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{name: "empty object", in: `{}`, want: "{}\n"},
		{name: "empty array", in: `[]`, want: "[]\n"},
		{name: "scalar", in: `"x"`, want: "\"x\"\n"},
		{name: "keeps key order", in: `{"b":1,"a":2}`, want: "{\n    \"b\": 1,\n    \"a\": 2\n}\n"},
		{name: "keeps number text", in: `[1.50, 1e+20, -0]`, want: "[\n    1.50,\n    1e+20,\n    -0\n]\n"},
		{name: "no html escaping", in: `"<&>"`, want: "\"<&>\"\n"},
		{name: "nested empties", in: `{"a":{},"b":[]}`, want: "{\n    \"a\": {},\n    \"b\": []\n}\n"},
		{name: "invalid", in: `{"a":`, wantErr: true},
		{name: "trailing data", in: `{} {}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := render([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && string(got) != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestConformance runs the sdk's output suite through the real gRPC glue.
func TestConformance(t *testing.T) {
	plugintest.OutputConformance(t, jsonFormat{})
}
