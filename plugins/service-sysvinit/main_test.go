package main

import (
	"testing"

	"github.com/lago-go/lago/sdk/servicecmd"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		code int
		out  string
		want string
	}{
		{0, "sshd is running", servicecmd.StateActive},
		{3, "sshd is not running", servicecmd.StateInactive},
		{1, "nope: unrecognized service", servicecmd.StateMissing},
		{4, "", servicecmd.StateMissing},
		{127, "", servicecmd.StateUnknown},
	} {
		if got := spec.Classify(tc.code, tc.out); got != tc.want {
			t.Errorf("Classify(%d, %q) = %q, want %q", tc.code, tc.out, got, tc.want)
		}
	}
}
