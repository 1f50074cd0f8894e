package template

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

func TestExpandPath(t *testing.T) {
	env := map[string]string{"HOME": "/home/u/", "IMG": "/srv/images", "T": "~", "E": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	root, err := user.Lookup("root")
	if err != nil {
		t.Skip("no root user to look up")
	}
	tests := []struct{ in, want string }{
		{"plain/path", "plain/path"},
		{"$IMG/el7", "/srv/images/el7"},
		{"${IMG}el7", "/srv/imagesel7"},
		{"$IMG$IMG", "/srv/images/srv/images"},
		{"$NOPE/x", "$NOPE/x"},
		{"${NOPE}/x", "${NOPE}/x"},
		{"$E/x", "/x"},
		{"a$", "a$"},
		{"$/x", "$/x"},
		{"${IMG", "${IMG"},
		{"${}", "${}"},
		{"$IMG-1", "/srv/images-1"},
		{"~", "/home/u"},
		{"~/x", "/home/u/x"},
		{"$T/x", "/home/u/x"}, // expandvars first, as the original
		{"a/~/x", "a/~/x"},
		{"~root/x", strings.TrimRight(root.HomeDir, "/") + "/x"},
		{"~no-such-user-here/x", "~no-such-user-here/x"},
	}
	for _, tt := range tests {
		if got := expandPath(tt.in, lookup); got != tt.want {
			t.Errorf("expandPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A repository file written for the original, with $VARS and ~ in a file
// source's root and in handles, finds its images.
func TestFileSourceExpandsVarsAndHome(t *testing.T) {
	img := makeImage(64<<10, true, 15)
	base, home := t.TempDir(), t.TempDir()
	for _, p := range []string{filepath.Join(base, "images", "a.qcow2"), filepath.Join(home, "imgs", "b.qcow2"), filepath.Join(base, "images", "sub", "c.qcow2")} {
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, img, 0o644)
		os.WriteFile(p+".hash", []byte(sha1hex(img)), 0o644)
	}
	t.Setenv("LAGO_TEST_TPL_BASE", base)
	t.Setenv("HOME", home)
	t.Setenv("LAGO_TEST_TPL_SUB", "sub")
	repoFile := filepath.Join(t.TempDir(), "repo.json")
	os.WriteFile(repoFile, repoJSON(t, "local", Source{Type: "file", Args: map[string]string{"root": "$LAGO_TEST_TPL_BASE/images"}},
		map[string]map[string]ver{
			"a": {"1": {"a.qcow2", 1}},
			"b": {"1": {"~/imgs/b.qcow2", 1}},
			"c": {"1": {"${LAGO_TEST_TPL_SUB}/c.qcow2", 1}},
		}), 0o644)
	repo, err := LoadRepo(context.Background(), repoFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, DecompressAuto)
	for _, name := range []string{"a", "b", "c"} {
		got, err := s.Get(context.Background(), repo, name, "", nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Hash != sha1hex(img) {
			t.Fatalf("%s: hash %s", name, got.Hash)
		}
	}
}
