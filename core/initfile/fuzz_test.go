package initfile

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse: no input makes parsing and validation panic or hang, every
// failure is an ErrorList with positions inside the input, and whatever is
// accepted can be allocated.
func FuzzParse(f *testing.F) {
	f.Add([]byte(docExample))
	f.Add([]byte(allocSrc))
	f.Add([]byte(`{"domains": {"vm0": {"nics": [{"net": "n"}]}}, "nets": {"n": {}}}`))
	f.Add([]byte("a: &a [x]\nb: [*a, *a]\ndomains: {v: {<<: {memory: 1}}}\n"))
	f.Add([]byte("domains:\n  a: {based-on: b}\n  b: {based-on: a}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f", data, Options{SkipPathChecks: true, LookupEnv: func(string) (string, bool) { return "", false }})
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T %v is not a non-empty ErrorList", err, err)
			}
			for _, e := range list {
				if e.Line < 0 || e.Column < 0 || e.Msg == "" {
					t.Fatalf("bad error %+v", e)
				}
			}
			return
		}
		gws := map[string]string{}
		for i, r := range c.SubnetRequests() {
			if r.Gw == "" {
				gws[r.Net] = "192.168." + itoa(200+i%50) + ".1"
			}
		}
		if _, _, err := c.Allocate(gws); err != nil && !isFull(err) {
			t.Fatalf("valid config does not allocate: %v", err)
		}
	})
}

func isFull(err error) bool {
	return strings.Contains(err.Error(), "no free address left")
}
