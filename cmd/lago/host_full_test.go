//go:build !lagolight

package main

import (
	"context"
	"strings"
	"testing"
)

func TestInvocationProvider(t *testing.T) {
	var gotErr error
	h := func(name string) Handler {
		return func(ctx context.Context, inv *Invocation) error {
			_, gotErr = inv.Provider(ctx, name)
			return gotErr
		}
	}
	r := runCLI(t, nil, map[string]Handler{"start": h("remot")}, nil, "start")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown provider instance "remot" (known: local-libvirt)`) {
		t.Errorf("unknown instance: code %d stderr %s", r.code, r.stderr)
	}
	r = runCLI(t, nil, map[string]Handler{"start": h("")}, nil, "start")
	if r.code != 1 || !strings.Contains(r.stderr, "provider instance local-libvirt: no plugin host") {
		t.Errorf("default instance: code %d stderr %s", r.code, r.stderr)
	}
}
