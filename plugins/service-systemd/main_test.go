package main

import (
	"testing"

	"github.com/lago-go/lago/sdk/servicecmd"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		code int
		want string
	}{{0, servicecmd.StateActive}, {3, servicecmd.StateInactive}, {4, servicecmd.StateMissing}, {1, servicecmd.StateUnknown}} {
		if got := spec.Classify(tc.code, ""); got != tc.want {
			t.Errorf("Classify(%d) = %q, want %q", tc.code, got, tc.want)
		}
	}
	if got := spec.Status("sshd"); got[len(got)-1] != "sshd" || got[0] != "systemctl" {
		t.Errorf("Status argv = %q", got)
	}
}
