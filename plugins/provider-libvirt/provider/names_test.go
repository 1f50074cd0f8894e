package provider

import (
	"errors"
	"strings"
	"testing"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
	"github.com/lago-go/lago/sdk"
)

// Remote volume names are the ones earlier versions made (they are looked
// up by name, not recorded), so an environment whose disks would share one
// is refused in remote mode, naming both disks, and accepted locally, where
// the core's image paths name the disks.
func TestValidateSpecRefusesSharedRemoteVolumes(t *testing.T) {
	disk := func(name string) *providerv1.Disk {
		return &providerv1.Disk{Name: name, Dev: "vda", Type: "template", Path: "/p/images/x.qcow2", TemplatePath: "/store/t", TemplateFormat: "qcow2"}
	}
	vm := func(name string, disks ...*providerv1.Disk) *providerv1.VM {
		return &providerv1.VM{Name: name, MemoryMib: 512, Vcpu: 1, Nics: []*providerv1.Nic{{Net: "n0"}}, Disks: disks}
	}
	tests := []struct {
		name   string
		remote bool
		vms    []*providerv1.VM
		want   string // "" for accepted
	}{
		{
			name:   "names joined by -",
			remote: true,
			vms:    []*providerv1.VM{vm("a-b", disk("c")), vm("a", disk("b-c"))},
			want:   "disk 'b-c' of vm 'a' and disk 'c' of vm 'a-b' would share the remote volume lago-" + testUUID + "-a-b-c.qcow2",
		},
		{
			name:   "locally the core's image names count",
			remote: false,
			vms:    []*providerv1.VM{vm("a-b", disk("c")), vm("a", disk("b-c"))},
		},
		{
			name:   "formats differ",
			remote: true,
			vms: []*providerv1.VM{vm("a-b", &providerv1.Disk{Name: "c", Dev: "vda", Type: "empty", Format: "raw", SizeBytes: 1 << 20, Path: "/p/x"}),
				vm("a", disk("b-c"))},
		},
		{
			name:   "distinct names",
			remote: true,
			vms:    []*providerv1.VM{vm("vm-0", disk("root")), vm("vm-1", disk("root")), vm("vm", disk("0-data"))},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := qemuCfg()
			if tt.remote {
				cfg[SettingURL], cfg[SettingRemote] = "qemu+tcp://127.0.0.1:1/system", "yes"
			}
			p := newTestProvider(t, newFakeConn(), cfg, nil)
			err := p.ValidateSpec(ctx, testEnv, []*providerv1.Network{mgmtNet()}, tt.vms)
			var d sdk.Diagnostics
			errors.As(err, &d)
			if tt.want == "" {
				if d.HasErrors() {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !d.HasErrors() || !strings.Contains(d.Error(), tt.want) {
				t.Fatalf("err = %v, want diagnostics containing %q", err, tt.want)
			}
			for _, x := range d {
				if strings.Contains(x.Summary, "remote volume") && x.Attribute != "domains.a" {
					t.Errorf("diagnostic on %q, want domains.a", x.Attribute)
				}
			}
		})
	}
}

// The volume names stay those of earlier versions: existing remote
// environments find their disks by them.
func TestDiskVolumeNameUnchanged(t *testing.T) {
	if got, want := diskVolumeName(testUUID, "vm-0", "root", ""), "lago-"+testUUID+"-vm-0-root.qcow2"; got != want {
		t.Fatalf("diskVolumeName = %s, want %s", got, want)
	}
}
