package main

import (
	"io"
	"strings"
	"testing"
)

func TestEscapeReader(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		escaped  bool
	}{
		{"ls -l\n", "ls -l\n", false},
		{"ab\x1dcd", "ab", true},
		{"\x1d", "", true},
	} {
		escaped := false
		got, _ := io.ReadAll(&escapeReader{r: strings.NewReader(tc.in), onEscape: func() { escaped = true }})
		if string(got) != tc.want || escaped != tc.escaped {
			t.Errorf("%q: read %q (escaped %v), want %q (%v)", tc.in, got, escaped, tc.want, tc.escaped)
		}
	}
}
