package sdk

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestReadFileTail(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(p, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		max  int64
		want string
	}{{3, "789"}, {10, "0123456789"}, {64, "0123456789"}, {0, ""}} {
		got, err := ReadFileTail(p, tc.max)
		if err != nil || string(got) != tc.want {
			t.Errorf("ReadFileTail(%d) = %q, %v; want %q", tc.max, got, err, tc.want)
		}
	}
	if _, err := ReadFileTail(p+".missing", 5); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file err = %v, want ErrNotExist", err)
	}
}
