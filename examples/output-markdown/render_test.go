package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/lago-go/lago/sdk/plugintest"
)

var update = flag.Bool("update", false, "rewrite the golden file")

// TestConformance runs the sdk's output suite through the real gRPC glue.
func TestConformance(t *testing.T) {
	plugintest.OutputConformance(t, markdown{}, plugintest.WithInfo(info))
}

// TestGolden renders a status document with every kind of value.
func TestGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "status.input.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := markdown{}.Format(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "status.golden.md")
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
		t.Fatalf("output differs from %s (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", golden, got, want)
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{name: "empty object", in: `{}`, want: ""},
		{name: "empty array", in: `[]`, want: ""},
		{name: "scalar", in: `"x"`, want: "x\n"},
		{name: "null", in: `null`, want: ""},
		{name: "keeps key order", in: `{"b": 1, "a": 2}`, want: "- **b**: 1\n- **a**: 2\n"},
		{name: "keeps number text", in: `[1.50, 1e+20, -0]`, want: "- 1.50\n- 1e+20\n- -0\n"},
		{name: "empty values have no trailing space", in: `{"a": "", "b": {}, "c": [], "d": null}`, want: "- **a**:\n- **b**:\n- **c**:\n- **d**:\n"},
		{name: "scalars before sections", in: `{"s": {"x": 1}, "a": 1}`, want: "- **a**: 1\n\n# s\n\n- **x**: 1\n"},
		{name: "object of records is a table named by key", in: `{"n0": {"gw": "1", "up": true}, "n1": {"up": false, "mtu": 9000}}`,
			want: "| name | gw | up | mtu |\n|---|---|---|---|\n| n0 | 1 | true |  |\n| n1 |  | false | 9000 |\n"},
		{name: "records with a name key", in: `{"a": {"name": "x"}}`, want: "| key | name |\n|---|---|\n| a | x |\n"},
		{name: "array of records is a table", in: `[{"a": 1}, {"a": 2}]`, want: "| a |\n|---|\n| 1 |\n| 2 |\n"},
		{name: "array items titled by name or number", in: `[{"name": "p", "l": [1]}, {"l": [2]}]`,
			want: "# p\n\n- **name**: p\n\n## l\n\n- 1\n\n# 2\n\n## l\n\n- 2\n"},
		{name: "headings stop at level 6", in: `{"1": {"2": {"3": {"4": {"5": {"6": {"7": {"8": [1]}}}}}}}}`,
			want: "# 1\n\n## 2\n\n### 3\n\n#### 4\n\n##### 5\n\n###### 6\n\n###### 7\n\n###### 8\n\n- 1\n"},
		{name: "markdown is escaped", in: `{"*k*": "a|b _c_ <d> & [e](f) #g ` + "`h`" + ` \\i"}`,
			want: "- **\\*k\\***: a\\|b \\_c\\_ &lt;d&gt; &amp; \\[e\\](f) \\#g \\`h\\` \\\\i\n"},
		{name: "line breaks do not break rows", in: `[{"a": "x\ny\r\nz"}]`, want: "| a |\n|---|\n| x<br>y<br>z |\n"},
		{name: "control characters are replaced", in: `"a\u001b[2Jb\u0000c\td"`, want: "a\uFFFD\\[2Jb\uFFFDc\td\n"},
		{name: "unicode is kept", in: `"café 🚀"`, want: "café 🚀\n"},
		{name: "invalid", in: `{"a":`, wantErr: true},
		{name: "not json", in: `status`, wantErr: true},
		{name: "empty input", in: ``, wantErr: true},
		{name: "trailing data", in: `{} {}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := render([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Fatalf("render(%s) =\n%q\nwant\n%q", tt.in, got, tt.want)
			}
		})
	}
}
