package lease

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lago-go/lago/core/lease/flock"
)

// prefix makes a fake prefix folder holding a uuid file and returns its path.
func prefix(t *testing.T, uuid string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "uuid")
	if err := os.WriteFile(p, []byte(uuid), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func newStore(t *testing.T) *Store {
	return &Store{Dir: filepath.Join(t.TempDir(), "subnets"), LockTimeout: 5 * time.Second}
}

func octets(ls []Lease) []int {
	out := make([]int, len(ls))
	for i, l := range ls {
		out[i] = int(l.Subnet.Addr().As4()[2])
	}
	return out
}

func TestAcquireWritesOriginalFormat(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	p := prefix(t, "fe689d3c39d011e5b22b54ee755a00ca")
	l, err := s.Acquire(ctx, p, "fe689d3c39d011e5b22b54ee755a00ca", Request{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Subnet != netip.MustParsePrefix("192.168.200.0/24") || l.Gateway != netip.MustParseAddr("192.168.200.1") {
		t.Fatalf("first lease %v gw %v, want 192.168.200.0/24 gw .1", l.Subnet, l.Gateway)
	}
	data, err := os.ReadFile(filepath.Join(s.Dir, "200.lease"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `["` + p + `", "fe689d3c39d011e5b22b54ee755a00ca"]`; string(data) != want {
		t.Fatalf("lease file %q, want %q", data, want)
	}
	st, err := os.Stat(filepath.Join(s.Dir, LockName))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != LockMode {
		t.Fatalf("lock file mode %o, want %o", st.Mode().Perm(), LockMode)
	}
	// The same prefix asking for its subnet again gets it back.
	again, err := s.Acquire(ctx, p, "fe689d3c39d011e5b22b54ee755a00ca", Request{Gateway: l.Gateway})
	if err != nil || again.Subnet != l.Subnet {
		t.Fatalf("re-acquire own subnet: %v, %v", again.Subnet, err)
	}
	// Another prefix gets the next one.
	q := prefix(t, "other")
	l2, err := s.Acquire(ctx, q, "other", Request{})
	if err != nil || l2.Subnet != netip.MustParsePrefix("192.168.201.0/24") {
		t.Fatalf("second prefix: %v, %v", l2.Subnet, err)
	}
}

func TestAcquireExplicitAndStale(t *testing.T) {
	ctx := context.Background()
	type setup func(t *testing.T, s *Store) // prepares the store before the request
	holdBy := func(uuid string, gone bool, other string) setup {
		return func(t *testing.T, s *Store) {
			p := prefix(t, uuid)
			if _, err := s.Acquire(ctx, p, uuid, Request{Gateway: netip.MustParseAddr("192.168.205.1")}); err != nil {
				t.Fatal(err)
			}
			if gone {
				os.Remove(p)
			}
			if other != "" {
				os.WriteFile(p, []byte(other), 0o644)
			}
		}
	}
	tests := []struct {
		name    string
		setup   setup
		gw      string
		want    int
		wantErr error
		errHas  string
	}{
		{name: "free explicit", gw: "192.168.205.1", want: 205},
		{name: "any address of the subnet", gw: "192.168.230.77", want: 230},
		{name: "last subnet", gw: "192.168.255.1", want: 255},
		{name: "below range", gw: "192.168.199.1", wantErr: ErrOutOfRange},
		{name: "other private net", gw: "10.0.0.1", wantErr: ErrOutOfRange},
		{name: "ipv6", gw: "fd00::1", wantErr: ErrOutOfRange},
		{name: "held by live prefix", setup: holdBy("aaa", false, ""), gw: "192.168.205.1", wantErr: ErrTaken, errHas: "/uuid"},
		{name: "holder uuid file removed", setup: holdBy("aaa", true, ""), gw: "192.168.205.1", want: 205},
		{name: "holder uuid changed", setup: holdBy("aaa", false, "bbb"), gw: "192.168.205.1", want: 205},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			if tt.setup != nil {
				tt.setup(t, s)
			}
			p := prefix(t, "me")
			l, err := s.Acquire(ctx, p, "me", Request{Gateway: netip.MustParseAddr(tt.gw)})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("error %q does not mention %q", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := int(l.Subnet.Addr().As4()[2]); got != tt.want {
				t.Fatalf("got subnet %v, want octet %d", l.Subnet, tt.want)
			}
			entries, err := s.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].UUIDPath != p || !entries[0].Live {
				t.Fatalf("store after takeover: %+v", entries)
			}
		})
	}
}

func TestTakenErrorNamesHolder(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	holder := prefix(t, "aaa")
	if _, err := s.Acquire(ctx, holder, "aaa", Request{Gateway: netip.MustParseAddr("192.168.210.1")}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Acquire(ctx, prefix(t, "bbb"), "bbb", Request{Gateway: netip.MustParseAddr("192.168.210.1")})
	if !errors.Is(err, ErrTaken) || !strings.Contains(err.Error(), holder) {
		t.Fatalf("got %v, want ErrTaken naming %s", err, holder)
	}
}

func TestSkipHook(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	inUse := map[netip.Prefix]string{
		Subnet(200): "route via virbr0",
		Subnet(201): "address on eth1",
	}
	skip := func(p netip.Prefix) (string, bool) { why, ok := inUse[p]; return why, ok }
	l, err := s.Acquire(ctx, prefix(t, "u"), "u", Request{Skip: skip})
	if err != nil {
		t.Fatal(err)
	}
	if l.Subnet != Subnet(202) {
		t.Fatalf("got %v, want 192.168.202.0/24", l.Subnet)
	}
	want := []Skipped{{Subnet(200), "route via virbr0"}, {Subnet(201), "address on eth1"}}
	if len(l.Skipped) != 2 || l.Skipped[0] != want[0] || l.Skipped[1] != want[1] {
		t.Fatalf("skipped %+v, want %+v", l.Skipped, want)
	}
	_, err = s.Acquire(ctx, prefix(t, "v"), "v", Request{Gateway: netip.MustParseAddr("192.168.201.1"), Skip: skip})
	if err == nil || !strings.Contains(err.Error(), "address on eth1") {
		t.Fatalf("explicit gw in a host subnet: got %v", err)
	}
}

func TestAcquireNAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	other := prefix(t, "other")
	// Leave two subnets free.
	reqs := make([]Request, LastOctet-FirstOctet-1)
	if _, err := s.AcquireN(ctx, other, "other", reqs); err != nil {
		t.Fatal(err)
	}
	me := prefix(t, "me")
	_, err := s.AcquireN(ctx, me, "me", make([]Request, 3))
	if !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), s.Dir) {
		t.Fatalf("got %v, want ErrFull naming %s", err, s.Dir)
	}
	entries, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.UUIDPath != other {
			t.Fatalf("failed AcquireN left lease %s held by %s", e.File, e.UUIDPath)
		}
	}
	if len(entries) != LastOctet-FirstOctet-1 {
		t.Fatalf("%d leases, want %d", len(entries), LastOctet-FirstOctet-1)
	}
	ls, err := s.AcquireN(ctx, me, "me", make([]Request, 2))
	if err != nil {
		t.Fatal(err)
	}
	if got := octets(ls); got[0] != 254 || got[1] != 255 {
		t.Fatalf("got %v, want [254 255]", got)
	}
	_, err = s.Acquire(ctx, prefix(t, "x"), "x", Request{})
	if !errors.Is(err, ErrFull) {
		t.Fatalf("full store: got %v", err)
	}
}

func TestAcquireNExplicitFirst(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	ls, err := s.AcquireN(ctx, prefix(t, "me"), "me", []Request{
		{},
		{Gateway: netip.MustParseAddr("192.168.200.1")},
		{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := octets(ls); got[0] != 201 || got[1] != 200 || got[2] != 202 {
		t.Fatalf("got %v, want [201 200 202]", got)
	}
	_, err = s.AcquireN(ctx, prefix(t, "x"), "x", []Request{
		{Gateway: netip.MustParseAddr("192.168.220.1")},
		{Gateway: netip.MustParseAddr("192.168.220.9")},
	})
	if err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("same subnet twice: got %v", err)
	}
	// A taken explicit subnet undoes the automatic leases of the same call.
	_, err = s.AcquireN(ctx, prefix(t, "y"), "y", []Request{{}, {Gateway: netip.MustParseAddr("192.168.200.1")}})
	if !errors.Is(err, ErrTaken) {
		t.Fatalf("got %v, want ErrTaken", err)
	}
	entries := mustList(t, s)
	if len(entries) != 3 {
		t.Fatalf("%d leases after failed AcquireN, want 3", len(entries))
	}
}

func TestRelease(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	me, other := prefix(t, "me"), prefix(t, "other")
	mine, err := s.AcquireN(ctx, me, "me", make([]Request, 3))
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := s.Acquire(ctx, other, "other", Request{})
	if err != nil {
		t.Fatal(err)
	}
	// Releasing someone else's subnet, or a free one, does nothing.
	if err := s.Release(ctx, me, theirs.Subnet, Subnet(250)); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, me, mine[0].Subnet); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mine[0].File); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("released lease still there: %v", err)
	}
	if err := s.Release(ctx, me, netip.MustParsePrefix("10.0.0.0/24")); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("release outside range: %v", err)
	}
	// ReleaseAll works even when the prefix is already gone from disk.
	os.Remove(me)
	got, err := s.ReleaseAll(ctx, me)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != mine[1].Subnet || got[1] != mine[2].Subnet {
		t.Fatalf("ReleaseAll released %v, want %v %v", got, mine[1].Subnet, mine[2].Subnet)
	}
	entries := mustList(t, s)
	if len(entries) != 1 || entries[0].UUIDPath != other {
		t.Fatalf("store after release: %+v", entries)
	}
	// A missing store is empty, not an error.
	empty := &Store{Dir: filepath.Join(t.TempDir(), "none")}
	if got, err := empty.ReleaseAll(ctx, me); err != nil || got != nil {
		t.Fatalf("ReleaseAll on missing store: %v %v", got, err)
	}
}

func TestReadsOriginalAndBrokenLeases(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	os.MkdirAll(s.Dir, 0o755)
	p := prefix(t, "abc")
	// As Python's json.dump writes it, and a file a killed writer left.
	os.WriteFile(filepath.Join(s.Dir, "200.lease"), []byte(`["`+p+`", "abc"]`), 0o644)
	os.WriteFile(filepath.Join(s.Dir, "201.lease"), []byte(`["`+p), 0o644)
	os.WriteFile(filepath.Join(s.Dir, "202.lease"), nil, 0o644)
	l, err := s.Acquire(ctx, prefix(t, "me"), "me", Request{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Subnet != Subnet(201) {
		t.Fatalf("got %v, want the broken lease 201 taken over", l.Subnet)
	}
	entries := mustList(t, s)
	if len(entries) != 3 || !entries[0].Live || entries[2].Err == nil {
		t.Fatalf("entries %+v", entries)
	}
}

func TestStoreErrorsNamePaths(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "afile")
	os.WriteFile(file, nil, 0o644)
	s := &Store{Dir: filepath.Join(file, "subnets")}
	_, err := s.Acquire(ctx, prefix(t, "me"), "me", Request{})
	if err == nil || !strings.Contains(err.Error(), s.Dir) {
		t.Fatalf("store under a file: got %v, want error naming %s", err, s.Dir)
	}

	s = newStore(t)
	os.MkdirAll(s.Dir, 0o755)
	lock := filepath.Join(s.Dir, LockName)
	held, err := flock.Acquire(ctx, lock, 0o660, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	s.LockTimeout = 50 * time.Millisecond
	_, err = s.Acquire(ctx, prefix(t, "me"), "me", Request{})
	if !errors.Is(err, flock.ErrTimeout) || !strings.Contains(err.Error(), lock) {
		t.Fatalf("lock timeout: got %v, want ErrTimeout naming %s", err, lock)
	}
}

func TestSubnetOf(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"192.168.200.1", "192.168.200.0/24", true},
		{"192.168.255.254", "192.168.255.0/24", true},
		{"::ffff:192.168.201.1", "192.168.201.0/24", true},
		{"192.168.199.1", "", false},
		{"192.169.200.1", "", false},
		{"172.16.0.1", "", false},
	}
	for _, tt := range tests {
		got, err := SubnetOf(netip.MustParseAddr(tt.in))
		if (err == nil) != tt.ok || (tt.ok && got.String() != tt.want) {
			t.Errorf("SubnetOf(%s) = %v, %v; want %s ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestAcquireNeedsHolderFile(t *testing.T) {
	s := newStore(t)
	p := prefix(t, "real")
	for _, uuid := range []string{"other", ""} {
		if _, err := s.Acquire(context.Background(), p, uuid, Request{}); err == nil {
			t.Errorf("uuid %q: leased for a holder file holding %q", uuid, "real")
		}
	}
	missing := filepath.Join(t.TempDir(), "uuid")
	_, err := s.Acquire(context.Background(), missing, "x", Request{})
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing holder file: %v", err)
	}
	if entries := mustList(t, s); len(entries) != 0 {
		t.Fatalf("refused acquisitions left leases: %+v", entries)
	}
}

// A lease whose holder cannot be checked is passed over by automatic
// picks, and refused, with the reason, to an explicit request.
func TestUncheckableHolderCountsAsHeld(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	os.MkdirAll(s.Dir, 0o755)
	// A holder "file" that is a folder cannot be read.
	holder := t.TempDir()
	os.WriteFile(filepath.Join(s.Dir, "200.lease"), []byte(`["`+holder+`", "u"]`), 0o644)
	l, err := s.Acquire(ctx, prefix(t, "me"), "me", Request{})
	if err != nil || l.Subnet != Subnet(201) {
		t.Fatalf("got %v %v, want 192.168.201.0/24", l.Subnet, err)
	}
	_, err = s.Acquire(ctx, prefix(t, "me2"), "me2", Request{Gateway: netip.MustParseAddr("192.168.200.1")})
	if err == nil || !strings.Contains(err.Error(), holder) {
		t.Fatalf("explicit request on an uncheckable lease: %v", err)
	}
}
