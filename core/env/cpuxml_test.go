package env

import (
	"encoding/xml"
	"testing"
)

// TestCPUCustomXML renders the documentation's cpu_custom example and reads
// it back as XML.
func TestCPUCustomXML(t *testing.T) {
	custom := map[string]any{
		"@mode": "custom", "@match": "exact",
		"model":   map[string]any{"@fallback": "allow", "#text": "Westmere"},
		"feature": map[string]any{"@policy": "optional", "@name": "vmx"},
		"numa": map[string]any{"cell": []any{
			map[string]any{"@id": 0, "@cpus": 0, "@memory": 2048, "@unit": "MiB"},
			map[string]any{"@id": 1, "@cpus": 1, "@memory": 2048, "@unit": "MiB"},
		}},
	}
	got, err := cpuCustomXML(custom)
	if err != nil {
		t.Fatal(err)
	}
	var cpu struct {
		Mode  string `xml:"mode,attr"`
		Match string `xml:"match,attr"`
		Model struct {
			Fallback string `xml:"fallback,attr"`
			Name     string `xml:",chardata"`
		} `xml:"model"`
		Feature struct {
			Policy string `xml:"policy,attr"`
			Name   string `xml:"name,attr"`
		} `xml:"feature"`
		Cells []struct {
			ID     int    `xml:"id,attr"`
			Memory int    `xml:"memory,attr"`
			Unit   string `xml:"unit,attr"`
		} `xml:"numa>cell"`
	}
	if err := xml.Unmarshal([]byte(got), &cpu); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if cpu.Mode != "custom" || cpu.Match != "exact" || cpu.Model.Name != "Westmere" || cpu.Model.Fallback != "allow" ||
		cpu.Feature.Name != "vmx" || cpu.Feature.Policy != "optional" || len(cpu.Cells) != 2 || cpu.Cells[1].ID != 1 ||
		cpu.Cells[0].Memory != 2048 || cpu.Cells[0].Unit != "MiB" {
		t.Errorf("read back %+v from %s", cpu, got)
	}
	if s, _ := cpuCustomXML(map[string]any{"model": "a<b"}); s != "<cpu><model>a&lt;b</model></cpu>" {
		t.Errorf("escaping: %s", s)
	}
	if _, err := cpuCustomXML(map[string]any{"@mode": map[string]any{"x": 1}}); err == nil {
		t.Error("a map as an attribute value must be an error")
	}
	if s, err := cpuCustomXML(nil); s != "" || err != nil {
		t.Errorf("no cpu_custom = %q, %v", s, err)
	}
}

// TestNatNetsHaveTheOriginalsIPv6 checks the ULA /64 every nat net gets.
func TestNatNetsHaveTheOriginalsIPv6(t *testing.T) {
	f := newFixture(t)
	e, err := f.m.Load(f.prefix)
	if err != nil {
		t.Fatal(err)
	}
	pn := toProviderNet(e, e.Net("n1"))
	if pn.GetIpv6Gateway() != "fd8f:1391:3a82:201::1" || pn.GetIpv6PrefixLength() != 64 {
		t.Errorf("n1 ipv6 = %s/%d, want fd8f:1391:3a82:201::1/64", pn.GetIpv6Gateway(), pn.GetIpv6PrefixLength())
	}
}
