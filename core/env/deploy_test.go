package env

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lago-go/lago/core/errs"
	"github.com/lago-go/lago/core/spec"
)

func TestDeploy(t *testing.T) {
	f := newFixture(t)
	mustMkdir(t, filepath.Join(f.prefix, "scripts"))
	mustWrite(t, filepath.Join(f.prefix, "scripts", "_a.sh"), "echo a\n")
	mustWrite(t, filepath.Join(f.prefix, "scripts", "_b.sh"), "echo b\n")
	vm := testVM(1, "n0")
	vm.Metadata = map[string]any{"deploy-scripts": []any{spec.PrefixPathVar + "/scripts/_a.sh", spec.PrefixPathVar + "/scripts/_b.sh"}}
	writePrefix(t, f.prefix, []*spec.Net{testNet("n0", 200, true)}, []*spec.VM{testVM(0, "n0"), vm})

	var out strings.Builder
	if err := f.m.Deploy(context.Background(), f.prefix, &out, nil); err != nil {
		t.Fatal(err)
	}
	runs := f.ssh.Runs()
	if len(runs) != 2 || runs[0] != "vm1 [bash -s]" {
		t.Errorf("runs = %v, want two bash -s on vm1", runs)
	}
	if got := out.String(); strings.Count(got, "[vm1] ran [bash -s]") != 2 {
		t.Errorf("output %q lacks the prefixed lines", got)
	}

	f.ssh.exit = 3
	err := f.m.Deploy(context.Background(), f.prefix, nil, nil)
	want := filepath.Join(f.prefix, "scripts", "_a.sh") + " failed with status 3 on vm1"
	if !errs.IsUser(err) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Deploy error = %v, want %q", err, want)
	}
	if n := len(f.ssh.Runs()); n != 3 {
		t.Errorf("%d runs; the failing script must stop that VM's later scripts", n)
	}
}
