package provider

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The KVM probe tells a guest that boots from one that dies at once and
// from one that hangs, by what the emulator prints.
func TestRunKVMProbe(t *testing.T) {
	defer func(d time.Duration) { kvmProbeTimeout = d }(kvmProbeTimeout)
	kvmProbeTimeout = 500 * time.Millisecond
	tests := []struct {
		name    string
		script  string
		wantErr string
	}{
		{"boots", "echo 'SeaBIOS'; echo '[    0.000000] Linux version 6.1.0'; sleep 10", ""},
		{"dies", "echo 'qemu: error: failed to set MSR 0x48b' >&2; exit 1", "exited early (booting x): qemu: error: failed to set MSR 0x48b"},
		{"hangs", "echo 'Probing EDD (edd=off to disable)... ok'; sleep 10", "the guest hung (booting x printed nothing within 500ms)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu := filepath.Join(t.TempDir(), "qemu")
			if err := os.WriteFile(emu, []byte("#!/bin/sh\n"+tt.script+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			begin := time.Now()
			err := runKVMProbe(context.Background(), emu, "Linux version", "booting x")
			if took := time.Since(begin); took > 3*time.Second {
				t.Errorf("probe took %s", took)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("probe: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("probe: %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// The embedded probe sector is a boot sector: it fits before the
// signature and its GDT pointer points inside it.
func TestKVMProbeSectorShape(t *testing.T) {
	if len(kvmProbeSector) > 510 {
		t.Fatalf("probe sector is %d bytes, more than 510", len(kvmProbeSector))
	}
	if !strings.Contains(string(kvmProbeSector), kvmProbeMarker+"\n") {
		t.Fatal("probe sector lacks its marker")
	}
}
