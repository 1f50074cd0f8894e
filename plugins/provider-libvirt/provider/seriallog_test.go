package provider

import (
	"os"
	"path/filepath"
	"testing"

	"libvirt.org/go/libvirtxml"

	providerv1 "github.com/lago-go/lago/proto/lago/provider/v1"
)

func TestSerialLog(t *testing.T) {
	log := "SeaBIOS\nLinux version 6.1\nvm0 login: "
	dir := t.TempDir()
	local := filepath.Join(dir, "vm0.serial.log")
	if err := os.WriteFile(local, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	remoteFake := func(withLog bool) *fakeConn {
		fc := newFakeConn()
		x, err := (&libvirtxml.StoragePool{Type: "dir", Name: "lago", Target: &libvirtxml.StoragePoolTarget{Path: "/pool"}}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := fc.DefinePool(x); err != nil {
			t.Fatal(err)
		}
		if withLog {
			fc.pools["lago"].vols[serialVolumeName(testUUID, "vm0")] = &fakeVol{data: []byte("on the remote host\nrvm login: ")}
		}
		return fc
	}
	remote := map[string]string{SettingDomainType: "qemu", SettingURL: "qemu+tcp://127.0.0.1:1/system"}
	for _, tc := range []struct {
		name   string
		fc     *fakeConn
		config map[string]string
		path   string
		max    int64
		want   string
	}{
		{"local whole", newFakeConn(), qemuCfg(), local, 0, log},
		{"local tail", newFakeConn(), qemuCfg(), local, 11, "vm0 login: "},
		{"local not yet written", newFakeConn(), qemuCfg(), filepath.Join(dir, "none.log"), 0, ""},
		{"local no path", newFakeConn(), qemuCfg(), "", 0, ""},
		// the client's file is not the remote VM's log
		{"remote tail", remoteFake(true), remote, local, 11, "rvm login: "},
		{"remote not yet written", remoteFake(false), remote, local, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestProvider(t, tc.fc, tc.config, nil)
			got, err := p.SerialLog(ctx, testEnv, &providerv1.VM{Name: "vm0", SerialLogPath: tc.path}, tc.max)
			if err != nil || string(got) != tc.want {
				t.Fatalf("SerialLog = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
