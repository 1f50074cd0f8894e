package lease

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// syncRecorder stands in for fsyncDir and records, at each call, which
// lease files the folder held: a change is durable only if a sync of the
// store folder came after it.
type syncRecorder struct {
	t     *testing.T
	dir   string
	seen  [][]string // lease files present at each sync
	fail  error      // returned by every sync when set
	other []string   // folders other than dir that were synced
}

func (r *syncRecorder) sync(dir string) error {
	if dir != r.dir {
		r.other = append(r.other, dir)
		return r.fail
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.lease"))
	if err != nil {
		r.t.Fatal(err)
	}
	for i := range names {
		names[i] = filepath.Base(names[i])
	}
	r.seen = append(r.seen, names)
	return r.fail
}

// last is what the folder held at the latest sync, or nil and false when
// there was none.
func (r *syncRecorder) last() ([]string, bool) {
	if len(r.seen) == 0 {
		return nil, false
	}
	return r.seen[len(r.seen)-1], true
}

// Every change of the store is followed by a sync of its folder that sees
// it: granted leases are durable before Acquire returns, released ones
// before Release returns.
func TestStoreSyncsFolderAfterEachChange(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// setup runs before the recorder is reset; op is the change checked.
		setup func(t *testing.T, s *Store, holder string)
		op    func(t *testing.T, s *Store, holder string)
		want  []string // lease files at the last sync
	}{
		{
			name: "acquire",
			op: func(t *testing.T, s *Store, holder string) {
				if _, err := s.Acquire(ctx, holder, "me", Request{}); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"200.lease"},
		},
		{
			name: "acquire several",
			op: func(t *testing.T, s *Store, holder string) {
				if _, err := s.AcquireN(ctx, holder, "me", make([]Request, 3)); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"200.lease", "201.lease", "202.lease"},
		},
		{
			name: "take over a stale lease",
			setup: func(t *testing.T, s *Store, holder string) {
				if err := os.MkdirAll(s.Dir, 0o755); err != nil {
					t.Fatal(err)
				}
				stale := `["` + filepath.Join(t.TempDir(), "gone") + `", "x"]`
				if err := os.WriteFile(filepath.Join(s.Dir, "200.lease"), []byte(stale), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			op: func(t *testing.T, s *Store, holder string) {
				if _, err := s.Acquire(ctx, holder, "me", Request{}); err != nil {
					t.Fatal(err)
				}
				if data, _ := os.ReadFile(filepath.Join(s.Dir, "200.lease")); !strings.Contains(string(data), holder) {
					t.Fatalf("stale lease not taken over: %s", data)
				}
			},
			want: []string{"200.lease"},
		},
		{
			name: "release",
			setup: func(t *testing.T, s *Store, holder string) {
				if _, err := s.AcquireN(ctx, holder, "me", make([]Request, 2)); err != nil {
					t.Fatal(err)
				}
			},
			op: func(t *testing.T, s *Store, holder string) {
				if err := s.Release(ctx, holder, Subnet(200)); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"201.lease"},
		},
		{
			name: "release all",
			setup: func(t *testing.T, s *Store, holder string) {
				if _, err := s.AcquireN(ctx, holder, "me", make([]Request, 2)); err != nil {
					t.Fatal(err)
				}
			},
			op: func(t *testing.T, s *Store, holder string) {
				if _, err := s.ReleaseAll(ctx, holder); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{},
		},
		{
			name: "failed acquisition undone",
			op: func(t *testing.T, s *Store, holder string) {
				other := prefix(t, "other")
				if _, err := s.Acquire(ctx, other, "other", Request{Gateway: Gateway(Subnet(210))}); err != nil {
					t.Fatal(err)
				}
				// Explicit requests go in octet order: 205 is written,
				// then undone when 210 is found taken.
				_, err := s.AcquireN(ctx, holder, "me", []Request{{Gateway: Gateway(Subnet(210))}, {Gateway: Gateway(Subnet(205))}})
				if !errors.Is(err, ErrTaken) {
					t.Fatalf("got %v, want ErrTaken", err)
				}
			},
			want: []string{"210.lease"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			rec := &syncRecorder{t: t, dir: s.Dir}
			s.syncDir = rec.sync
			holder := prefix(t, "me")
			if tt.setup != nil {
				tt.setup(t, s, holder)
			}
			rec.seen = nil
			tt.op(t, s, holder)
			got, ok := rec.last()
			if !ok {
				t.Fatalf("the store folder was never synced after the change")
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("last sync saw leases %q, want %q (a change came after the last sync)", got, tt.want)
			}
			if len(rec.other) > 0 {
				t.Errorf("synced other folders: %q", rec.other)
			}
		})
	}
}

// A lease that cannot be made durable is not granted: Acquire fails,
// naming the store, and leaves no lease file behind.
func TestAcquireFailsWhenFolderSyncFails(t *testing.T) {
	s := newStore(t)
	boom := errors.New("EIO")
	rec := &syncRecorder{t: t, dir: s.Dir, fail: boom}
	s.syncDir = rec.sync
	_, err := s.Acquire(context.Background(), prefix(t, "me"), "me", Request{})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), s.Dir) {
		t.Fatalf("got %v, want the sync error naming %s", err, s.Dir)
	}
	s.syncDir = nil
	if entries := mustList(t, s); len(entries) != 0 {
		t.Fatalf("a lease that was never synced is left: %+v", entries)
	}
}

// The real fsyncDir works on a folder and reports a missing one.
func TestFsyncDir(t *testing.T) {
	if err := fsyncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "none")
	if err := fsyncDir(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing folder: got %v", err)
	}
}

// mustList lists the store and fails the test when that fails, so a check
// that no lease is left cannot pass because List could not look.
func mustList(t *testing.T, s *Store) []Entry {
	t.Helper()
	entries, err := s.List(context.Background())
	if err != nil {
		t.Fatalf("list leases in %s: %v", s.Dir, err)
	}
	return entries
}
