package lease

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

func TestParseRoutes(t *testing.T) {
	table := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n" +
		"eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
		"virbr1\t00C9A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
		"tun0\t0000A8C0\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
	got, err := parseRoutes(strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"192.0.2.0/24", "192.168.201.0/24", "192.168.0.0/16"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v (default route left out)", got, want)
	}
	for i, w := range want {
		if got[i].Prefix.String() != w {
			t.Errorf("route %d: %s, want %s", i, got[i].Prefix, w)
		}
	}
	if _, err := parseRoutes(strings.NewReader("h\neth0 zz 0 0 0 0 0 00FFFFFF\n")); err == nil {
		t.Error("bad destination accepted")
	}
}

func TestHostSkipInAcquire(t *testing.T) {
	nets := []HostNet{
		{Prefix: netip.MustParsePrefix("192.168.200.0/23"), What: "route to 192.168.200.0/23 via tun0"},
		{Prefix: netip.MustParsePrefix("192.168.202.7/32"), What: "address 192.168.202.7/32 on eth1"},
	}
	tests := []struct {
		subnet string
		skip   bool
		why    string
	}{
		{"192.168.200.0/24", true, "tun0"},
		{"192.168.201.0/24", true, "tun0"},
		{"192.168.202.0/24", true, "eth1"},
		{"192.168.203.0/24", false, ""},
	}
	skip := HostSkip(nets)
	for _, tt := range tests {
		why, ok := skip(netip.MustParsePrefix(tt.subnet))
		if ok != tt.skip || !strings.Contains(why, tt.why) {
			t.Errorf("%s: skip=%v %q, want %v %q", tt.subnet, ok, why, tt.skip, tt.why)
		}
	}
	s := newStore(t)
	l, err := s.Acquire(context.Background(), prefix(t, "u"), "u", Request{Skip: skip})
	if err != nil || l.Subnet != Subnet(203) || len(l.Skipped) != 3 {
		t.Fatalf("got %v skipped %v err %v, want 192.168.203.0/24 after 3 skipped", l.Subnet, l.Skipped, err)
	}
}

// LocalHostNets reads this machine's real state; it must at least work and
// leave out loopback and default routes.
func TestLocalHostNets(t *testing.T) {
	nets, err := LocalHostNets()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nets {
		if n.Prefix.Bits() == 0 || n.Prefix.Addr().IsLoopback() || !n.Prefix.Addr().Is4() {
			t.Errorf("unexpected host net %v (%s)", n.Prefix, n.What)
		}
	}
}
