package main

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/lago-go/lago/cmd/lago/internal/cli"
	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/lago"
)

// fakeServiceVM records what the service verb asked of the VM.
type fakeServiceVM struct {
	state string
	err   error
	calls []string
}

func (f *fakeServiceVM) ServiceState(_ context.Context, s string) (string, error) {
	f.calls = append(f.calls, "status "+s)
	return f.state, f.err
}

func (f *fakeServiceVM) StartService(_ context.Context, s string) error {
	f.calls = append(f.calls, "start "+s)
	return f.err
}

func (f *fakeServiceVM) StopService(_ context.Context, s string) error {
	f.calls = append(f.calls, "stop "+s)
	return f.err
}

// TestServiceVerb: status is the default action and exits as the LSB
// (0 active, 3 inactive, 4 missing, 1 unknown); start and stop reach the
// VM and exit 0; an unknown action is a usage error naming it; errors of
// the service manager pass through.
func TestServiceVerb(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name      string
		args      []string
		state     string
		err       error
		wantCall  string
		wantOut   string
		wantExit  int
		wantErrIs error
	}{
		{"status by default, active", []string{"vm0", "sshd"}, lago.ServiceActive, nil, "status sshd", "sshd: active\n", 0, nil},
		{"status inactive exits 3", []string{"vm0", "cron", "status"}, lago.ServiceInactive, nil, "status cron", "cron: inactive\n", 3, nil},
		{"status missing exits 4", []string{"vm0", "nope", "status"}, lago.ServiceMissing, nil, "status nope", "nope: missing\n", 4, nil},
		{"status unknown exits 1", []string{"vm0", "odd"}, lago.ServiceUnknown, nil, "status odd", "odd: unknown\n", 1, nil},
		{"start", []string{"vm0", "cron", "start"}, "", nil, "start cron", "", 0, nil},
		{"stop", []string{"vm0", "cron", "stop"}, "", nil, "stop cron", "", 0, nil},
		{"manager error passes through", []string{"vm0", "cron", "stop"}, "", boom, "stop cron", "", 1, boom},
		{"unknown action", []string{"vm0", "cron", "restart"}, "", nil, "", "", errs.ExitLago, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm := &fakeServiceVM{state: tt.state, err: tt.err}
			var out bytes.Buffer
			inv := &cli.Invocation{Verb: "service", Args: tt.args, Stdout: &out, Stderr: &bytes.Buffer{}}
			err := serviceVerb(context.Background(), inv, vm)
			if got := errs.ExitCode(err); got != tt.wantExit {
				t.Errorf("exit code %d (%v), want %d", got, err, tt.wantExit)
			}
			if tt.wantErrIs != nil && !errors.Is(err, tt.wantErrIs) {
				t.Errorf("error %v, want %v", err, tt.wantErrIs)
			}
			var call string
			if len(vm.calls) > 0 {
				call = vm.calls[0]
			}
			if call != tt.wantCall || len(vm.calls) > 1 {
				t.Errorf("calls %q, want [%q]", vm.calls, tt.wantCall)
			}
			if out.String() != tt.wantOut {
				t.Errorf("stdout %q, want %q", out.String(), tt.wantOut)
			}
		})
	}
}
