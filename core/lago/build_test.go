package lago

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	builderv1 "github.com/lago-go/lago/proto/lago/builder/v1"
	"github.com/lago-go/lago/sdk"

	"github.com/lago-go/lago/core/env"
	"github.com/lago-go/lago/core/pluginhost"
	"github.com/lago-go/lago/core/spec"
)

// scriptedBuilder streams lines and then fails with the tool's tail, as
// the virt-customize plugin does.
type scriptedBuilder struct {
	lines []string
	err   error
}

func (s scriptedBuilder) Build(_ context.Context, _ *builderv1.BuildRequest, log func(string)) error {
	for _, l := range s.lines {
		log(l)
	}
	return s.err
}

// The tool's output goes to the prefix log (appended after what is there)
// and, as progress, to the terminal; a failure keeps the tool's last
// lines in the error.
func TestPluginBuilderLogsToPrefixLog(t *testing.T) {
	fail := sdk.Diagnostics{{Severity: sdk.SeverityError, Summary: "virt-customize on vm0 failed: exit status 1", Detail: "[   1.0] Running: false\nvirt-customize: error: false: command exited with an error"}}
	tests := []struct {
		name    string
		err     error
		wantEnd string
	}{
		{"success", nil, "virt-customize done in "},
		{"failure", fail, "virt-customize failed after "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logFile := filepath.Join(t.TempDir(), "lago.log")
			mustWrite(t, logFile, "earlier line\n")
			var progress bytes.Buffer
			pb := pluginBuilders{Progress: &progress, mu: new(sync.Mutex)}
			b := pluginBuilder{Builder: scriptedBuilder{lines: []string{"[   0.0] Examining the guest ...", "[   1.0] Running: false"}, err: tt.err}, Log: pb.progressLine}
			err := b.Build(context.Background(), env.BuildRequest{
				VM: "vm0", DiskPath: "/p/images/vm0_root.qcow2", LogFile: logFile,
				Step: spec.BuildStep{Builder: "virt-customize", Options: []spec.BuildOption{{Name: "run-command", Values: []string{"false"}}}},
			})
			if (err == nil) != (tt.err == nil) || (tt.err != nil && !strings.Contains(err.Error(), "command exited with an error")) {
				t.Fatalf("Build error = %v, want %v", err, tt.err)
			}
			log, err := os.ReadFile(logFile)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"earlier line\n", "[INFO]  build virt-customize vm0: virt-customize on /p/images/vm0_root.qcow2\n",
				"build virt-customize vm0: [   0.0] Examining the guest ...\n", "build virt-customize vm0: [   1.0] Running: false\n", "build virt-customize vm0: " + tt.wantEnd} {
				if !strings.Contains(string(log), want) {
					t.Errorf("prefix log lacks %q:\n%s", want, log)
				}
			}
			for _, want := range []string{"lago: vm0: virt-customize on /p/images/vm0_root.qcow2\n", "lago: vm0: [   0.0] Examining the guest ...\n", "lago: vm0: " + tt.wantEnd} {
				if !strings.Contains(progress.String(), want) {
					t.Errorf("progress lacks %q:\n%s", want, progress.String())
				}
			}
		})
	}
}

// BuilderNames lists the builder components discovery finds, nothing else.
func TestPluginBuildersListsBuilderComponents(t *testing.T) {
	dir := t.TempDir()
	desc := `{"name":"vc","version":"1","api_versions":[1],"components":[` +
		`{"name":"virt-customize","kind":"builder"},{"name":"not-a-builder","kind":"output"}]}`
	body := "#!/bin/sh\ncat <<'EOF'\n" + desc + "\nEOF\n"
	if err := os.WriteFile(filepath.Join(dir, "lago-plugin-vc"), []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	host := pluginhost.New(pluginhost.Options{SearchPath: []string{dir}, CacheFile: "-"})
	defer host.Close()
	names, err := pluginBuilders{Plugins: host}.BuilderNames(context.Background())
	if err != nil || strings.Join(names, ",") != "virt-customize" {
		t.Fatalf("BuilderNames = %v, %v; want [virt-customize]", names, err)
	}
}
