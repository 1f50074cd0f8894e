package lago

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckOwner(t *testing.T) {
	dir := t.TempDir()
	mine := filepath.Join(dir, "mine")
	theirs := filepath.Join(dir, "theirs")
	for _, d := range []string{mine, theirs} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	me := os.Geteuid()
	if me == 0 {
		// Root makes the other user's folder; the check then runs as uid 4242.
		if err := os.Chown(mine, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(theirs, 4343, 4343); err != nil {
			t.Fatal(err)
		}
		old := geteuid
		geteuid = func() int { return 4242 }
		t.Cleanup(func() { geteuid = old })
	} else if err := os.Chmod(theirs, 0o755); err != nil {
		t.Skip("cannot make another user's folder without root")
	}
	tests := []struct {
		name string
		path string
		uid  func() int
		err  bool
	}{
		{"own prefix", mine, nil, false},
		{"another user's prefix", theirs, nil, me == 0},
		{"root acts on anyone's", theirs, func() int { return 0 }, false},
		{"missing path is the verb's to report", filepath.Join(dir, "none"), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.uid != nil {
				old := geteuid
				geteuid = tt.uid
				defer func() { geteuid = old }()
			}
			err := checkOwner(tt.path)
			if (err != nil) != tt.err {
				t.Fatalf("checkOwner(%s) = %v, want error %v", tt.path, err, tt.err)
			}
			if err != nil && (!errors.Is(err, ErrNotOwner) || !IsUserError(err) || !strings.Contains(err.Error(), "uid 4343")) {
				t.Fatalf("error %v: want ErrNotOwner, a user error naming the owner", err)
			}
		})
	}
}
