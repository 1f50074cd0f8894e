package provider

import (
	"strings"
	"testing"
)

// pretendIdentity makes new owner tags name host and uid for one test.
func pretendIdentity(t *testing.T, host string, uid int) {
	t.Helper()
	h, u := localHost, localUID
	localHost = func() string { return host }
	localUID = func() int { return uid }
	t.Cleanup(func() { localHost, localUID = h, u })
}

func TestOwnerTagRecordsHostAndUID(t *testing.T) {
	pretendIdentity(t, "build-7", 1234)
	tests := []struct {
		name     string
		tag      ownerTag
		wantHost string
		wantUID  string
	}{
		{"new tags name this host and uid", ownerTag{Prefix: "/p", UUID: "u1", Name: "vm0"}, "build-7", "1234"},
		{"a tag that names its owner keeps it", ownerTag{Prefix: "/p", UUID: "u1", Host: "elsewhere", UID: "0"}, "elsewhere", "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.tag.marshal()
			if err != nil {
				t.Fatal(err)
			}
			o, ok, err := parseOwner(s)
			if err != nil || !ok {
				t.Fatalf("parse %s: %v %v", s, ok, err)
			}
			if o.Host != tt.wantHost || o.UID != tt.wantUID || o.Prefix != "/p" || o.UUID != "u1" {
				t.Fatalf("owner = %+v, want host %q uid %q", o, tt.wantHost, tt.wantUID)
			}
		})
	}
}

func TestOwnerTagUID(t *testing.T) {
	for _, tt := range []struct {
		uid  string
		want int64 // -1: none
	}{{"", -1}, {"0", 0}, {"65534", 65534}, {"x", -1}, {"-1", -1}, {"99999999999", -1}} {
		got := ownerTag{UID: tt.uid}.uid()
		if (got == nil) != (tt.want < 0) || (got != nil && int64(*got) != tt.want) {
			t.Errorf("uid(%q) = %v, want %d", tt.uid, got, tt.want)
		}
	}
}

// ListOwned reports the owner host and uid of every object: those of its
// tag, none for a tag of an older version, and for a remote volume those of
// a domain or network of its environment.
func TestListOwnedReportsOwnerHostAndUID(t *testing.T) {
	pretendIdentity(t, "build-7", 1234)
	fc := newFakeConn()
	p := newTestProvider(t, fc, qemuCfg(), nil)
	vm := testVM()
	vm.SerialLogPath = ""
	if err := p.StartNetwork(ctx, testEnv, mgmtNet()); err != nil {
		t.Fatal(err)
	}
	if err := p.StartVM(ctx, testEnv, vm); err != nil {
		t.Fatal(err)
	}
	legacyUUID := strings.Repeat("e", 32)
	fc.nets["old-net"] = &fakeNet{xml: `<network><name>old-net</name><metadata><owner xmlns="` + OwnerNamespace +
		`" prefix="/old" uuid="` + legacyUUID + `" name="n0"/></metadata></network>`}
	fc.pools["lago"] = &fakePool{vols: map[string]*fakeVol{
		"lago-" + testUUID + "-vm0-root.qcow2":       {},
		"lago-" + legacyUUID + "-vm0-root.qcow2":     {},
		"lago-" + strings.Repeat("f", 32) + "-x.raw": {},
	}}
	owned, err := listOwned(fc, settings{Remote: true, Pool: "lago"})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		prefix, host string
		uid          int64 // -1: none
	}
	wants := map[string]want{
		"1a2b3c4d-vm0":                               {testEnv.PrefixPath, "build-7", 1234},
		"1a2b-n0":                                    {testEnv.PrefixPath, "build-7", 1234},
		"old-net":                                    {"/old", "", -1},
		"lago-" + testUUID + "-vm0-root.qcow2":       {testEnv.PrefixPath, "build-7", 1234},
		"lago-" + legacyUUID + "-vm0-root.qcow2":     {"/old", "", -1},
		"lago-" + strings.Repeat("f", 32) + "-x.raw": {"", "", -1},
	}
	if len(owned) != len(wants) {
		t.Fatalf("owned %v, want %d objects", owned, len(wants))
	}
	for _, r := range owned {
		w, ok := wants[r.Name]
		if !ok {
			t.Fatalf("unexpected %+v", r)
		}
		if r.OwnerPrefix != w.prefix || r.OwnerHost != w.host || (r.OwnerUid == nil) != (w.uid < 0) ||
			(r.OwnerUid != nil && int64(*r.OwnerUid) != w.uid) {
			t.Errorf("%s %s: owner %q host %q uid %v, want %+v", r.Kind, r.Name, r.OwnerPrefix, r.OwnerHost, r.OwnerUid, w)
		}
	}
}
