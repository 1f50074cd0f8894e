package servicecmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	hostv1 "github.com/lago-go/lago/proto/lago/host/v1"
	"github.com/lago-go/lago/sdk"
)

// scriptHost answers Exec from a table keyed by the joined argv.
type scriptHost struct {
	answers map[string]struct {
		code int
		out  string
	}
	calls []string
}

func (h *scriptHost) Exec(_ context.Context, vm string, argv []string, _ []byte, stdout, _ io.Writer) (int, error) {
	key := strings.Join(argv, " ")
	h.calls = append(h.calls, vm+": "+key)
	a, ok := h.answers[key]
	if !ok {
		return 0, fmt.Errorf("unexpected command %q", key)
	}
	_, _ = io.WriteString(stdout, a.out)
	return a.code, nil
}
func (h *scriptHost) CopyTo(context.Context, string, string, string) error   { return nil }
func (h *scriptHost) CopyFrom(context.Context, string, string, string) error { return nil }
func (h *scriptHost) Environment(context.Context) (*hostv1.GetEnvironmentResponse, error) {
	return nil, nil
}
func (h *scriptHost) Progress(context.Context, string, float64) error { return nil }
func (h *scriptHost) Log(context.Context, string, string) error       { return nil }

var testSpec = Spec{
	Name:   "test",
	Probe:  []string{"test", "-e", "/bin/init"},
	Status: func(s string) []string { return []string{"ctl", "status", s} },
	Start:  func(s string) []string { return []string{"ctl", "start", s} },
	Stop:   func(s string) []string { return []string{"ctl", "stop", s} },
	Classify: func(code int, out string) string {
		switch code {
		case 0:
			return StateActive
		case 3:
			return StateInactive
		case 4:
			return StateMissing
		}
		return StateUnknown
	},
}

func TestManager(t *testing.T) {
	type ans = struct {
		code int
		out  string
	}
	host := &scriptHost{answers: map[string]ans{
		"test -e /bin/init": {0, ""},
		"ctl status sshd":   {0, "running"},
		"ctl status cron":   {3, "dead"},
		"ctl status nope":   {4, "not found"},
		"ctl start sshd":    {0, ""},
		"ctl stop cron":     {1, "permission denied"},
	}}
	m := New(testSpec)
	ctx := context.Background()
	if _, err := m.Supported(ctx, "vm0"); !errors.Is(err, errNoHost) {
		t.Fatalf("without host: got %v, want errNoHost", err)
	}
	if err := m.Configure(ctx, nil, host); err != nil {
		t.Fatal(err)
	}
	ok, err := m.Supported(ctx, "vm0")
	if err != nil || !ok {
		t.Fatalf("Supported = %v, %v", ok, err)
	}
	for svc, want := range map[string]string{"sshd": StateActive, "cron": StateInactive, "nope": StateMissing} {
		got, err := m.State(ctx, "vm0", svc)
		if err != nil || got != want {
			t.Errorf("State(%s) = %q, %v; want %q", svc, got, err, want)
		}
	}
	if err := m.Start(ctx, "vm0", "sshd"); err != nil {
		t.Errorf("Start: %v", err)
	}
	err = m.Stop(ctx, "vm0", "cron")
	var d sdk.Diagnostics
	if !errors.As(err, &d) || !strings.Contains(err.Error(), "status 1") || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("Stop failure = %v; want diagnostics naming the status and output", err)
	}
	if err := m.Start(ctx, "vm0", "--all"); err == nil {
		t.Error("a service name that looks like an option must be refused")
	}
}
