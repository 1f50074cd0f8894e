package env

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lago-go/lago/core/errs"
)

// listingBuilder is a fakeBuilder that knows which builders exist, as the
// plugin host's builder components do.
type listingBuilder struct {
	*fakeBuilder
	names []string
	err   error
	asked int
}

func (b *listingBuilder) BuilderNames(context.Context) ([]string, error) {
	b.asked++
	return b.names, b.err
}

// twoStepInitFile gives vm0 two build steps, the second of another
// builder, so order and validation of each step show.
var twoStepInitFile = strings.Replace(testInitFile, "              touch: /root/built\n",
	"              touch: /root/built\n          - other-builder:\n              run-command: 'echo two'\n", 1)

// Build steps naming a builder no plugin serves are refused before
// anything is made, each named by file and place; --skip-build skips the
// check as it skips the steps.
func TestInitChecksBuilders(t *testing.T) {
	tests := []struct {
		name      string
		known     []string
		listErr   error
		nilBuild  bool
		skipBuild bool
		wantErr   []string
		wantUser  bool
		wantIs    error
	}{
		{name: "all known", known: []string{"other-builder", "virt-customize"}},
		{name: "unknown builder", known: []string{"virt-customize"}, wantUser: true, wantIs: ErrUnknownBuilder,
			wantErr: []string{"LagoInitFile:17:13: domains.vm0.disks[0].build[1]: unknown builder \"other-builder\" (known builders: virt-customize)"}},
		{name: "no builder plugin at all", wantUser: true, wantIs: ErrUnknownBuilder,
			wantErr: []string{"domains.vm0.disks[0].build[0]: unknown builder \"virt-customize\" (no plugin serves a builder)",
				"domains.vm0.disks[0].build[1]: unknown builder \"other-builder\""}},
		{name: "listing fails", listErr: errBoom, wantErr: []string{"list builders: boom"}},
		{name: "no builder configured", nilBuild: true, wantErr: []string{"domains.vm0.disks[0].build[0]: build steps need a builder"}},
		{name: "skip build skips the check", skipBuild: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newInitFixture(t)
			mustWrite(t, f.initFile, twoStepInitFile)
			lb := &listingBuilder{fakeBuilder: f.builder, names: tt.known, err: tt.listErr}
			f.m.deps.Builder = lb
			if tt.nilBuild {
				f.m.deps.Builder = nil
			}
			o := f.opts()
			o.SkipBuild = tt.skipBuild
			_, err := f.m.Init(context.Background(), o)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Init: %v", err)
				}
				if !tt.skipBuild && len(f.builder.reqs) != 2 {
					t.Errorf("build requests = %+v, want 2", f.builder.reqs)
				}
				return
			}
			if err == nil {
				t.Fatal("Init succeeded")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if errs.IsUser(err) != tt.wantUser {
				t.Errorf("IsUser(%v) = %v, want %v", err, errs.IsUser(err), tt.wantUser)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
			if calls := f.prov.Calls(); len(calls) != 0 {
				t.Errorf("the provider was called before the check: %+v", calls)
			}
			if len(f.tmpl.gets) != 0 {
				t.Errorf("templates fetched before the check: %v", f.tmpl.gets)
			}
			if len(f.builder.reqs) != 0 {
				t.Errorf("builder ran: %+v", f.builder.reqs)
			}
			f.assertNothingLeft()
		})
	}
}

// A disk's steps run in the init file's order, each told the prefix's log
// for the tool's output.
func TestInitBuildStepsInOrderWithLog(t *testing.T) {
	f := newInitFixture(t)
	mustWrite(t, f.initFile, twoStepInitFile)
	if _, err := f.m.Init(context.Background(), f.opts()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range f.builder.reqs {
		got = append(got, r.VM+" "+r.Step.Builder+" "+strings.Join(r.Step.Args(), " "))
		if want := filepath.Join(f.prefix(), "logs", "lago.log"); r.LogFile != want {
			t.Errorf("step %s: log file %q, want %q", r.Step.Builder, r.LogFile, want)
		}
	}
	want := []string{"vm0 virt-customize --ssh-inject --touch /root/built", "vm0 other-builder --run-command echo two"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("steps = %q, want %q", got, want)
	}
}
