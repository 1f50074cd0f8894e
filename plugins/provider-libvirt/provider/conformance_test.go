package provider

import (
	"testing"

	"github.com/lago-go/lago/sdk/plugintest"
)

// TestConformance runs the sdk's provider conformance suite through the real
// gRPC glue, over the in-memory libvirt.
func TestConformance(t *testing.T) {
	fc := newFakeConn()
	fc.nets["default"] = &fakeNet{xml: `<network><name>default</name><ip address="192.168.122.1" prefix="24"/></network>`}
	p := newTestProvider(t, fc, nil, nil)
	plugintest.ProviderConformance(t, p, plugintest.WithInfo(Info()), plugintest.WithConfig(map[string]string{SettingDomainType: "qemu"}))
}
