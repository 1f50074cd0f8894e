package env

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/spec"
	"github.com/lago-go/lago/sdk"
)

// fakeVMType records its hooks' calls; normalize edits the spec it gets
// (nil: answer it unchanged).
type fakeVMType struct {
	mu        sync.Mutex
	calls     []string
	normalize func(*spec.VM)
	afterErr  error
	fields    map[string]string
	fieldsErr error
	// onAfter runs inside AfterStart (to look at the world then).
	onAfter func(vm string)
}

func (f *fakeVMType) record(c string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

func (f *fakeVMType) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeVMType) NormalizeSpec(_ context.Context, vm string, in []byte) ([]byte, error) {
	f.record("NormalizeSpec " + vm)
	if f.normalize == nil {
		return in, nil
	}
	var v spec.VM
	if err := json.Unmarshal(in, &v); err != nil {
		return nil, err
	}
	f.normalize(&v)
	return json.Marshal(v)
}

func (f *fakeVMType) AfterStart(_ context.Context, vm string) error {
	f.record("AfterStart " + vm)
	if f.onAfter != nil {
		f.onAfter(vm)
	}
	return f.afterErr
}

func (f *fakeVMType) StatusFields(_ context.Context, vm string) (map[string]string, error) {
	f.record("StatusFields " + vm)
	return f.fields, f.fieldsErr
}

type fakeVMTypes map[string]sdk.VMType

func (f fakeVMTypes) Names() ([]string, error) {
	var out []string
	for n := range f {
		out = append(out, n)
	}
	return out, nil
}

func (f fakeVMTypes) Get(_ context.Context, name string) (sdk.VMType, error) {
	if t, ok := f[name]; ok {
		return t, nil
	}
	return nil, errors.New("not served")
}

// withVMType gives vm0 of the test init file `vm-type: typ`.
func withVMType(t *testing.T, f *initFixture, typ string) {
	t.Helper()
	s := strings.Replace(testInitFile, "  vm0:\n    memory: 512\n", "  vm0:\n    memory: 512\n    vm-type: "+typ+"\n", 1)
	if s == testInitFile {
		t.Fatal("test init file has no vm0 to type")
	}
	mustWrite(t, f.initFile, s)
}

// TestInitVMTypes: an unknown vm type is a user error of the init file
// naming the VM and the field, before anything is made; the built-in
// type needs no plugin; a served type's NormalizeSpec completes the spec
// that is stored, and may not rename the VM.
func TestInitVMTypes(t *testing.T) {
	tests := []struct {
		name    string
		vmType  string
		types   fakeVMTypes
		wantErr []string // substrings; nil: success
		user    bool
		check   func(t *testing.T, vm0, vm1 *spec.VM, ft *fakeVMType)
	}{
		{name: "unknown type, no plugins", vmType: "engine", wantErr: []string{"LagoInitFile:5:14: domains.vm0.vm-type: unknown vm type", `"engine"`, "no vm-type plugin"}, user: true},
		{name: "unknown type, other plugins", vmType: "engine", types: fakeVMTypes{"host": &fakeVMType{}},
			wantErr: []string{"LagoInitFile:5:14: domains.vm0.vm-type:", `"engine"`, "plugins serve host"}, user: true},
		{name: "built-in default", vmType: "default", check: func(t *testing.T, vm0, _ *spec.VM, _ *fakeVMType) {
			if vm0.VMType != "default" {
				t.Errorf("vm-type = %q", vm0.VMType)
			}
		}},
		{name: "normalized", vmType: "engine", types: fakeVMTypes{"engine": &fakeVMType{normalize: func(v *spec.VM) {
			v.Artifacts = append(v.Artifacts, "/var/log/engine")
			if v.Metadata == nil {
				v.Metadata = map[string]any{}
			}
			v.Metadata["engine"] = "4.4"
		}}}, check: func(t *testing.T, vm0, vm1 *spec.VM, ft *fakeVMType) {
			if len(vm0.Artifacts) != 1 || vm0.Artifacts[0] != "/var/log/engine" || vm0.Metadata["engine"] != "4.4" {
				t.Errorf("vm0 artifacts %v, metadata %v: want the type's additions", vm0.Artifacts, vm0.Metadata)
			}
			if len(vm1.Artifacts) != 0 {
				t.Errorf("vm1 (no type) artifacts = %v", vm1.Artifacts)
			}
			if got := ft.Calls(); len(got) != 1 || got[0] != "NormalizeSpec vm0" {
				t.Errorf("hook calls = %v, want NormalizeSpec vm0 only", got)
			}
		}},
		{name: "rename refused", vmType: "engine", types: fakeVMTypes{"engine": &fakeVMType{normalize: func(v *spec.VM) { v.Name = "other" }}},
			wantErr: []string{"vm vm0", `vm type "engine" changed`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newInitFixture(t)
			withVMType(t, f, tt.vmType)
			if tt.types != nil {
				f.m.deps.VMTypes = tt.types
			}
			_, err := f.m.Init(context.Background(), f.opts())
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("Init succeeded")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if tt.user && (!errs.IsUser(err) || !errors.Is(err, ErrUnknownVMType)) {
					t.Errorf("error %v: want a user error wrapping ErrUnknownVMType", err)
				}
				f.assertNothingLeft()
				return
			}
			if err != nil {
				t.Fatalf("Init: %v", err)
			}
			e, err := f.m.Load(f.prefix())
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				ft, _ := tt.types["engine"].(*fakeVMType)
				tt.check(t, e.VM("vm0"), e.VM("vm1"), ft)
			}
		})
	}
}

// TestStartCallsAfterStart: AfterStart runs for the typed VM only, after
// it answered ssh, and start returns only when it is done; a failing hook
// fails the start (and rolls it back), naming the VM and type.
func TestStartCallsAfterStart(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		wantErr string
	}{
		{"ready", nil, ""},
		{"not ready", errors.New("port 22 closed"), `vm vm0: vm type "engine" after start: port 22 closed`},
		{"not implemented", sdk.ErrNotImplemented, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			typed(t, f, "vm0", "engine")
			ft := &fakeVMType{afterErr: tt.err}
			var waitedBefore []string
			ft.onAfter = func(string) {
				f.ssh.mu.Lock()
				waitedBefore = append([]string(nil), f.ssh.waits...)
				f.ssh.mu.Unlock()
			}
			f.m.deps.VMTypes = fakeVMTypes{"engine": ft}
			err := f.m.Start(context.Background(), f.prefix, nil, StartOptions{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Start error = %v, want %q", err, tt.wantErr)
				}
				if st := f.prov.VMStateOf(testUUID, "vm0"); st == "running" {
					t.Errorf("vm0 still running after a failed start")
				}
				return
			}
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			if got := ft.Calls(); len(got) != 1 || got[0] != "AfterStart vm0" {
				t.Errorf("hook calls = %v, want AfterStart vm0 once", got)
			}
			if !contains(waitedBefore, "vm0") {
				t.Errorf("AfterStart ran before vm0 answered ssh (waited for %v)", waitedBefore)
			}
		})
	}
}

// TestStatusVMTypeFields: status shows a running typed VM's fields; a
// down one is not asked; a failing type is an error of the status, which
// still answers.
func TestStatusVMTypeFields(t *testing.T) {
	tests := []struct {
		name      string
		start     bool
		fieldsErr error
		want      map[string]string
		wantErr   bool
	}{
		{"running", true, nil, map[string]string{"version": "1"}, false},
		{"down not asked", false, nil, nil, false},
		{"failing type", true, errors.New("no answer"), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			typed(t, f, "vm1", "engine")
			ft := &fakeVMType{fields: map[string]string{"version": "1"}, fieldsErr: tt.fieldsErr}
			f.m.deps.VMTypes = fakeVMTypes{"engine": ft}
			if tt.start {
				if err := f.m.Start(context.Background(), f.prefix, nil, StartOptions{NoWait: true}); err != nil {
					t.Fatal(err)
				}
			}
			st, err := f.m.StatusReport(context.Background(), f.prefix)
			if err != nil {
				t.Fatalf("StatusReport: %v", err)
			}
			for _, v := range st.VMs {
				want := map[string]string(nil)
				if v.Name == "vm1" {
					want = tt.want
				}
				if len(v.Fields) != len(want) || v.Fields["version"] != want["version"] {
					t.Errorf("%s fields = %v, want %v", v.Name, v.Fields, want)
				}
			}
			if gotErr := len(st.Errors) > 0; gotErr != tt.wantErr {
				t.Errorf("errors = %v, want some: %v", st.Errors, tt.wantErr)
			}
			if !tt.start && len(ft.Calls()) != 0 {
				t.Errorf("a down VM's type was asked: %v", ft.Calls())
			}
		})
	}
}

// typed sets vm's vm-type in the fixture's prefix.
func typed(t *testing.T, f *fixture, vm, typ string) {
	t.Helper()
	p := filepath.Join(f.prefix, dirVirt, "vm-"+vm)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var v spec.VM
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	v.VMType = typ
	mustWriteJSON(t, p, &v)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
