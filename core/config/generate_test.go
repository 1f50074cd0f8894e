package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// libvirtSettings is a provider component's described settings, shaped
// like the libvirt provider's.
var libvirtSettings = map[string][]PluginSetting{"libvirt": {
	{Name: "libvirt_url", Type: "string", Default: "qemu:///system", Help: "libvirt connection URI"},
	{Name: "libvirt_user", Type: "string", Help: "user name for libvirt's authentication"},
	{Name: "domain_type", Type: "string", Default: "auto", Help: "auto, kvm or qemu. auto uses kvm only on a local host whose capabilities list kvm AND where a paused probe guest survives 1.5 s; otherwise qemu (TCG) with a warning"},
	{Name: "bridge_stp", Type: "bool", Default: "no", Help: "yes runs the spanning tree protocol on the bridges"},
	{Name: "token", Required: true, Help: "an API token"},
}}

// TestWriteINIPluginSettings: generate-config lists the settings the
// plugins describe under each [provider NAME] section of their component,
// with help and default, commented out unless set, and the file reads
// back to the same configuration.
func TestWriteINIPluginSettings(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "lago.conf")
	if err := os.WriteFile(conf, []byte("[lago]\nlibvirt_url = qemu:///session\n\n"+
		"[provider remote]\nplugin = libvirt\nlibvirt_url = qemu+ssh://h/system\ndomain_type = qemu\nlegacy = 1\n\n"+
		"[provider other]\nplugin = elsewhere\nx = y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c1, err := Load(Options{Files: []string{conf}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c1.WriteINIWith(&buf, INIOptions{ProviderSettings: libvirtSettings}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	section := func(name string) string {
		_, rest, ok := strings.Cut(out, "\n[provider "+name+"]\n")
		if !ok {
			t.Fatalf("no [provider %s] in:\n%s", name, out)
		}
		if i := strings.Index(rest, "\n["); i >= 0 {
			rest = rest[:i]
		}
		return rest
	}
	tests := []struct {
		section string
		want    []string
		notWant []string
	}{
		{"local-libvirt", []string{
			"plugin = libvirt\n",
			"# libvirt connection URI (default: [lago] libvirt_url)\n# libvirt_url = qemu:///session\n",
			"# user name for libvirt's authentication (default: [lago] libvirt_user)\n# libvirt_user =\n",
			"# auto, kvm or qemu. auto uses kvm only on a local host whose capabilities\n# list kvm AND where a paused probe guest survives 1.5 s; otherwise qemu (TCG)\n# with a warning (default: auto)\n# domain_type = auto\n",
			"# yes runs the spanning tree protocol on the bridges (bool; default: no)\n# bridge_stp = no\n",
			"# an API token (required)\n# token =\n",
		}, nil},
		{"remote", []string{
			"# libvirt connection URI (default: qemu:///system)\nlibvirt_url = qemu+ssh://h/system\n",
			"# with a warning (default: auto)\ndomain_type = qemu\n",
			"# libvirt_user =\n",
			"# bridge_stp = no\n",
			"# not a setting provider component \"libvirt\" describes\nlegacy = 1\n",
		}, []string{"[lago] libvirt_url", "qemu:///session"}},
		{"other", []string{
			"plugin = elsewhere\n# no plugin found describes provider component \"elsewhere\"",
			"\nx = y\n",
		}, []string{"not a setting"}},
	}
	for _, tt := range tests {
		t.Run(tt.section, func(t *testing.T) {
			sec := section(tt.section)
			for _, w := range tt.want {
				if !strings.Contains(sec, w) {
					t.Errorf("[provider %s] lacks %q:\n%s", tt.section, w, sec)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(sec, w) {
					t.Errorf("[provider %s] has %q:\n%s", tt.section, w, sec)
				}
			}
		})
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "# ") && len(line) > commentWidth && strings.Contains(line, "probe") {
			t.Errorf("help not wrapped: %q", line)
		}
	}

	// The file reads back to the same configuration, and to the same file.
	gen := filepath.Join(dir, "generated.conf")
	if err := os.WriteFile(gen, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	c2, err := Load(Options{Files: []string{gen}})
	if err != nil {
		t.Fatalf("generated config does not load: %v\n%s", err, out)
	}
	noSource := func(ps map[string]ProviderInstance) map[string]ProviderInstance {
		out := map[string]ProviderInstance{}
		for n, p := range ps {
			p.Source = Source{}
			out[n] = p
		}
		return out
	}
	if !reflect.DeepEqual(noSource(c1.Providers), noSource(c2.Providers)) {
		t.Errorf("round trip changed the providers:\nbefore %+v\nafter  %+v", c1.Providers, c2.Providers)
	}
	var again bytes.Buffer
	if err := c2.WriteINIWith(&again, INIOptions{ProviderSettings: libvirtSettings}); err != nil {
		t.Fatal(err)
	}
	if again.String() != out {
		t.Errorf("generating from the generated file differs:\n%s\nvs\n%s", again.String(), out)
	}
}

// TestWriteINIVerbosePluginSettings: a set plugin setting says where it
// came from.
func TestWriteINIVerbosePluginSettings(t *testing.T) {
	c, err := Load(Options{Environ: []string{"LAGO__PROVIDER_LOCAL_LIBVIRT__DOMAIN_TYPE=qemu"}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.WriteINIWith(&buf, INIOptions{Verbose: true, ProviderSettings: libvirtSettings}); err != nil {
		t.Fatal(err)
	}
	if want := "# with a warning (default: auto)\n# from: environment LAGO__PROVIDER_LOCAL_LIBVIRT__DOMAIN_TYPE\ndomain_type = qemu\n"; !strings.Contains(buf.String(), want) {
		t.Fatalf("output lacks %q:\n%s", want, buf.String())
	}
}

// TestWriteINIWithoutPluginSettings: without described settings only the
// settings that are set appear, as before.
func TestWriteINIWithoutPluginSettings(t *testing.T) {
	c, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.WriteINI(&buf, false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "domain_type") || strings.Contains(buf.String(), "no plugin found") {
		t.Fatalf("settings listed without a schema:\n%s", buf.String())
	}
}
