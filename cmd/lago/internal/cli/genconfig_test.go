package cli

import (
	"os"
	"strings"
	"testing"

	"github.com/lago-go/lago/core/pluginhost/discovery"
	"github.com/lago-go/lago/sdk/plugininfo"
)

// TestGenerateConfigPluginSettings: generate-config lists the settings
// the provider plugins describe (domain_type, bridge_stp, ...) under the
// section of each instance of their component, from discovery alone: no
// plugin process starts.
func TestGenerateConfigPluginSettings(t *testing.T) {
	host := newFakeHost()
	host.infos = append(host.infos,
		discovery.Info{Name: "provider-libvirt", Path: "/p/lago-plugin-provider-libvirt", Components: []plugininfo.ComponentInfo{{
			Name: "libvirt", Kind: kindProvider, ConfigSchema: []plugininfo.ConfigField{
				{Name: "libvirt_url", Type: "string", Default: "qemu:///system", Description: "libvirt connection URI"},
				{Name: "domain_type", Type: "string", Default: "auto", Description: "auto, kvm or qemu"},
				{Name: "bridge_stp", Type: "bool", Default: "no", Description: "spanning tree on the bridges"},
			}}}},
		// A shadowed copy's (other) settings are not the ones used.
		discovery.Info{Name: "provider-libvirt", Path: "/q/lago-plugin-provider-libvirt", Shadowed: true, Components: []plugininfo.ComponentInfo{{
			Name: "libvirt", Kind: kindProvider, ConfigSchema: []plugininfo.ConfigField{{Name: "stale", Description: "from the shadowed copy"}}}}},
	)
	conf := t.TempDir() + "/lago.conf"
	if err := os.WriteFile(conf, []byte("[provider remote]\nplugin = libvirt\nlibvirt_url = qemu+ssh://h/system\n\n[provider cloud]\nplugin = cloudy\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, host, nil, []string{"LAGO_CONFIG=" + conf}, "generate-config")
	if r.code != 0 {
		t.Fatalf("code %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"[provider local-libvirt]\n",
		"# auto, kvm or qemu (default: auto)\n# domain_type = auto\n",
		"# spanning tree on the bridges (bool; default: no)\n# bridge_stp = no\n",
		"# libvirt connection URI (default: [lago] libvirt_url)\n# libvirt_url = qemu:///system\n",
		"[provider remote]\n",
		"# libvirt connection URI (default: qemu:///system)\nlibvirt_url = qemu+ssh://h/system\n",
		"[provider cloud]\n",
		"# no plugin found describes provider component \"cloudy\"",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("generate-config output lacks %q:\n%s", want, r.stdout)
		}
	}
	if n := strings.Count(r.stdout, "# domain_type = auto\n"); n != 2 {
		t.Errorf("domain_type listed %d times, want under local-libvirt and remote:\n%s", n, r.stdout)
	}
	if strings.Contains(r.stdout, "stale") {
		t.Errorf("the shadowed plugin's settings are listed:\n%s", r.stdout)
	}
	if n := host.started.Load(); n != 0 {
		t.Errorf("%d plugin processes started", n)
	}
}
