package errs

import (
	"errors"
	"fmt"
	"testing"
)

func TestExitCode(t *testing.T) {
	plain := errors.New("boom")
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"plain", plain, 1},
		{"user", User(plain), 2},
		{"userf", Userf("bad %s", "x"), 2},
		{"wrapped user", fmt.Errorf("loading: %w", User(plain)), 2},
		{"exit code", Exit(7), 7},
		{"wrapped exit code", fmt.Errorf("shell: %w", Exit(3)), 3},
		{"exit code zero", Exit(0), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExitCode(tt.err); got != tt.want {
				t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

func TestUserKeepsChain(t *testing.T) {
	base := errors.New("base")
	err := User(User(base))
	if !errors.Is(err, base) {
		t.Fatal("User lost the wrapped error")
	}
	var le *Error
	if !errors.As(err, &le) || errors.As(le.Err, new(*Error)) {
		t.Fatal("User marked an already marked error twice")
	}
	if User(nil) != nil {
		t.Fatal("User(nil) != nil")
	}
}
